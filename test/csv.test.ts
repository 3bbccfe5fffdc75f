import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCsv, readCsvFile, CsvReader, MAX_RECORD_CHARS } from "../src/data/csv.js";
import { rng, validCsv, malformedCsvs, mutateCsv } from "./helpers/fuzz-inputs.js";
import {
  fitStandardizer,
  standardizeInverse,
  standardizeTransform,
  standardizerFromJSON,
  standardizerLogDet,
} from "../src/data/standardize.js";
import { splitRows, takeRows } from "../src/data/split.js";

test("csv: header detected, values row-major, trailing newline and blank lines ignored", () => {
  const t = parseCsv("a,b\n1,2\n\n3.5,-4e-1\n   \n");
  assert.equal(t.hasHeader, true);
  assert.deepEqual(t.columns, ["a", "b"]);
  assert.equal(t.rows, 2);
  assert.equal(t.cols, 2);
  assert.deepEqual([...t.data], [1, 2, 3.5, -0.4]);
});

test("csv: no header when the first row is numeric; CRLF, BOM, whitespace around numbers", () => {
  const t = parseCsv("\ufeff1, 2\r\n3 ,4\r\n");
  assert.equal(t.hasHeader, false);
  assert.deepEqual(t.columns, ["col1", "col2"]);
  assert.deepEqual([...t.data], [1, 2, 3, 4]);
});

test("csv: header option forces the choice", () => {
  const t = parseCsv("1,2\n3,4\n", { header: true });
  assert.deepEqual(t.columns, ["1", "2"]);
  assert.deepEqual([...t.data], [3, 4]);
});

test("csv: semicolon and tab are detected; quoted fields with delimiters, quotes and newlines", () => {
  assert.deepEqual([...parseCsv("x;y\n1;2\n").data], [1, 2]);
  assert.equal(parseCsv("x;y\n1;2\n").delimiter, ";");
  assert.deepEqual([...parseCsv("x\ty\n1\t2\n").data], [1, 2]);
  const t = parseCsv('"a, the ""first""","b\nsecond"\n"1.5",2\n');
  assert.deepEqual(t.columns, ['a, the "first"', "b\nsecond"]);
  assert.deepEqual([...t.data], [1.5, 2]);
  assert.equal(parseCsv("5\n6\n").cols, 1);
});

test("csv: errors name file, line and column", () => {
  const opts = { file: "d.csv" };
  assert.throws(() => parseCsv("a,b\n1,2\n3,x\n", opts), {
    message: 'd.csv:3: column 2 (b): "x" is not a number',
  });
  assert.throws(() => parseCsv("a,b\n1,\n", opts), {
    message: "d.csv:2: column 2 (b): missing value",
  });
  assert.throws(() => parseCsv("a,b\n\n1,2\n,2\n", opts), {
    message: "d.csv:4: column 1 (a): missing value",
  });
  assert.throws(
    () => parseCsv("a,b\n1,NaN\n", opts),
    /d\.csv:2: column 2 \(b\): "NaN" is not allowed/,
  );
  assert.throws(
    () => parseCsv("a,b\n-Infinity,1\n", opts),
    /d\.csv:2: column 1 \(a\): "-Infinity" is not allowed/,
  );
  assert.throws(
    () => parseCsv("a,b\n1e999,1\n", opts),
    /d\.csv:2: column 1 \(a\): "1e999" overflows/,
  );
  assert.throws(() => parseCsv("a,b\n0x10,1\n", opts), /"0x10" is not a number/);
  assert.throws(() => parseCsv("a,b\n1,2\n3,4,5\n", opts), {
    message: "d.csv:3: expected 2 columns (as in line 1), got 3",
  });
  assert.throws(() => parseCsv("1,2\n3\n", opts), {
    message: "d.csv:2: expected 2 columns (as in line 1), got 1",
  });
  assert.throws(() => parseCsv("", opts), { message: "d.csv: empty CSV file (no rows)" });
  assert.throws(() => parseCsv("\n \n", opts), /empty CSV file/);
  assert.throws(() => parseCsv("a,b\n", opts), {
    message: "d.csv: header on line 1 but no data rows",
  });
  assert.throws(() => parseCsv('a,b\n"1,2\n', opts), {
    message: "d.csv:2: unterminated quoted field",
  });
});

test("csv: readCsvFile names the path in errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "clayflow-csv-"));
  try {
    const p = join(dir, "t.csv");
    writeFileSync(p, "u,v\n1,2\n3,oops\n");
    assert.throws(() => readCsvFile(p), {
      message: `${p}:3: column 2 (v): "oops" is not a number`,
    });
    writeFileSync(p, "u,v\n1,2\n");
    assert.deepEqual([...readCsvFile(p).data], [1, 2]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("standardizer: fitted on given rows, round trip, log-det, constant column note, JSON", () => {
  // Columns: (1, 3, 5 | 100), (2, 2, 2 | -7); row 3 is held out and must not affect the fit.
  const data = new Float64Array([1, 2, 3, 2, 5, 2, 100, -7]);
  const s = fitStandardizer(data, 2, [0, 1, 2], ["a", "b"]);
  assert.deepEqual(s.mean, [3, 2]);
  assert.ok(Math.abs(s.std[0] - Math.sqrt(8 / 3)) < 1e-12);
  assert.equal(s.std[1], 1);
  assert.equal(s.notes.length, 1);
  assert.match(s.notes[0], /column 2 \(b\) is constant \(2\).*std is set to 1/);
  const z = standardizeTransform(s, data);
  assert.ok(z instanceof Float64Array);
  assert.ok(Math.abs(z[0] + 2 / Math.sqrt(8 / 3)) < 1e-12);
  const back = standardizeInverse(s, z);
  back.forEach((v, i) => assert.ok(Math.abs(v - data[i]) < 1e-12));
  assert.ok(Math.abs(standardizerLogDet(s) + 0.5 * Math.log(8 / 3)) < 1e-12);
  // log-det equals log|det dz/dx| by finite differences on one coordinate.
  const eps = 1e-6;
  const z2 = standardizeTransform(s, new Float64Array([1 + eps, 2]));
  assert.ok(Math.abs(Math.log((z2[0] - z[0]) / eps) - standardizerLogDet(s)) < 1e-6);
  const s2 = standardizerFromJSON(JSON.parse(JSON.stringify(s)));
  assert.deepEqual(s2, s);
  assert.throws(
    () => standardizerFromJSON({ kind: "standardizer", mean: [0], std: [0] }),
    /positive/,
  );
  assert.ok(standardizeTransform(s, new Float32Array([1, 2])) instanceof Float32Array);
  assert.throws(() => standardizeTransform(s, new Float64Array(3)), /not a multiple of 2 columns/);
  assert.throws(() => fitStandardizer(data, 2, []), /no rows/);
  assert.throws(() => fitStandardizer(data, 2, [4]), /row index 4 out of range/);
});

test("splitRows: sizes, disjoint cover, deterministic by seed, sorted; takeRows gathers", () => {
  const s = splitRows(100, { valid: 0.1, test: 0.2, seed: 5 });
  assert.equal(s.train.length, 70);
  assert.equal(s.valid.length, 10);
  assert.equal(s.test.length, 20);
  const all = [...s.train, ...s.valid, ...s.test].sort((a, b) => a - b);
  assert.deepEqual(
    all,
    Array.from({ length: 100 }, (_, i) => i),
  );
  for (const part of [s.train, s.valid, s.test])
    for (let i = 1; i < part.length; i++) assert.ok(part[i - 1] < part[i]);
  assert.deepEqual(splitRows(100, { valid: 0.1, test: 0.2, seed: 5 }), s);
  assert.notDeepEqual(splitRows(100, { valid: 0.1, test: 0.2, seed: 6 }).test, s.test);
  assert.equal(splitRows(10).train.length, 10);
  assert.throws(
    () => splitRows(10, { valid: 1.5 }),
    /valid must be a fraction in \[0, 1\), got 1.5/,
  );
  assert.throws(() => splitRows(2, { valid: 0.5, test: 0.5 }), /no training rows left/);
  const data = new Float32Array([0, 1, 10, 11, 20, 21]);
  assert.deepEqual([...takeRows(data, 2, [2, 0])], [20, 21, 0, 1]);
  assert.throws(() => takeRows(data, 2, [3]), /row index 3 out of range/);
});

test("csv: duplicate and empty column names are errors that name the columns", () => {
  assert.throws(() => parseCsv("a,b,a\n1,2,3\n"), /columns 1 and 3 are both named "a"/);
  assert.throws(() => parseCsv("a,\n1,2\n"), /leaves column 2 without a name/);
  assert.throws(() => parseCsv(",x,\n1,2,3\n"), /leaves columns 1, 3 without a name/);
  assert.deepEqual(parseCsv("a,b\n1,2\n").columns, ["a", "b"]);
});

test("csv: a huge field stops the parse with a short, printable excerpt", () => {
  const huge = "x,y\n1," + "\u0001\u0002z".repeat(400_000) + "\n";
  let message = "";
  assert.throws(
    () => parseCsv(huge, { file: "big.csv" }),
    (e: Error) => ((message = e.message), true),
  );
  assert.match(message, /^big\.csv:2: a field longer than 65536 characters/);
  assert.ok(message.length < 300, `message of ${message.length} characters`);
  assert.doesNotMatch(message, /[\u0000-\u001f]/, "control characters are escaped");
  assert.match(message, /\\u0001\\u0002z/);
});

test("csv: a non-number quotes the field escaped and cut", () => {
  assert.throws(
    () => parseCsv(`a,b\n1,"${"\u0001".repeat(3)}${"q".repeat(500)}\n"\n`),
    (e: Error) => {
      assert.ok(e.message.length < 200, e.message);
      assert.ok(!e.message.includes("\n"), "no raw newline");
      assert.match(e.message, /"\\u0001\\u0001\\u0001q+\.\.\." \(503 characters\) is not a number/);
      return true;
    },
  );
});

/** The outcome of parsing `text` pushed in pieces cut at `cuts`: the table, or the error's message. */
function parsePieces(text: string, cuts: number[]): unknown {
  try {
    const reader = new CsvReader({ file: "p.csv" });
    let from = 0;
    for (const at of [...cuts, text.length]) {
      reader.push(text.slice(from, at));
      from = at;
    }
    return reader.end();
  } catch (e) {
    return (e as Error).message;
  }
}

test('csv: text pushed in pieces of any size parses as the whole text does, quotes, CRLF and "" split between pieces', () => {
  const r = rng(21);
  const tricky = [
    '\ufeffa;"b\r\nc";d\r\n1;"2""5";3\r\n\r\n4;5;6\r\n',
    'x,y\r1,2\r3,"4"\r',
    'x\ty\n"1"\t""\n',
    '"a""",b\n1,2\n"3\n4",5\n',
    ...malformedCsvs(r)
      .map((c) => new TextDecoder().decode(c.bytes))
      .filter((t) => t.length < 10_000),
  ];
  const base = validCsv(r, 12);
  const texts = [
    ...tricky,
    ...Array.from({ length: 400 }, () => new TextDecoder().decode(mutateCsv(r, base).bytes)),
  ];
  let tables = 0;
  for (const text of texts) {
    const whole = parsePieces(text, []);
    if (typeof whole !== "string") tables++;
    const everyChar = Array.from({ length: text.length }, (_, i) => i);
    assert.deepEqual(
      parsePieces(text, everyChar),
      whole,
      `one character at a time: ${JSON.stringify(text.slice(0, 80))}`,
    );
    const cuts = Array.from({ length: 1 + r.int(6) }, () => r.int(text.length + 1)).sort(
      (a, b) => a - b,
    );
    assert.deepEqual(
      parsePieces(text, cuts),
      whole,
      `cut at ${cuts}: ${JSON.stringify(text.slice(0, 80))}`,
    );
  }
  // CRLF is one line end, however it is split: line numbers count it once.
  assert.equal(
    parsePieces("a,b\r\n1,2\r\n3,x\r\n", [4, 8, 9]),
    'p.csv:3: column 2 (b): "x" is not a number',
  );
  assert.equal(
    parsePieces("a,b\r1,2\r\r3,x\r", [4]),
    'p.csv:4: column 2 (b): "x" is not a number',
    "lone CRs are line ends",
  );
  assert.ok(
    tables > 20 && tables < texts.length,
    `both outcomes are exercised (${tables} tables of ${texts.length})`,
  );
});

test("csv: readCsvFile reads in chunks: a character split between two chunks, and a file of many chunks", () => {
  const dir = mkdtempSync(join(tmpdir(), "clayflow-csv-chunks-"));
  try {
    // "é" is 2 bytes in UTF-8; put its first byte last in the first 64 KiB chunk.
    const p = join(dir, "split.csv");
    writeFileSync(p, `${"a".repeat(65534)},\u00e9\n1,2\n`);
    assert.deepEqual(readCsvFile(p).columns, ["a".repeat(65534), "\u00e9"]);
    // 300 kB of rows (5 chunks) gives the same table as the text parsed whole.
    const rows = Array.from({ length: 30_000 }, (_, i) => `${i},${(i * 0.25).toFixed(2)}`);
    const text = `i,q\r\n${rows.join("\r\n")}\r\n`;
    const big = join(dir, "big.csv");
    writeFileSync(big, text);
    const t = readCsvFile(big);
    assert.equal(t.rows, 30_000);
    assert.equal(t.data[2 * 29_999 + 1], 29_999 * 0.25);
    assert.deepEqual(t, parseCsv(text));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("csv: a line longer than MAX_RECORD_CHARS stops the parse with a short message", () => {
  const line = "1,".repeat(MAX_RECORD_CHARS / 2 + 10);
  assert.throws(
    () => parseCsv(`x\n1\n${line}\n`, { file: "w.csv" }),
    (e: Error) => {
      assert.match(
        e.message,
        /^w\.csv:3: a line longer than 4194304 characters; this is not a CSV of numbers/,
      );
      assert.ok(e.message.length < 200);
      return true;
    },
  );
});
