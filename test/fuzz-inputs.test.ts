/**
 * Fuzzing every file the `clayflow` command reads: CSV, IDX (raw and gzip), safetensors, a
 * run's config.json (and the model config in both run files) and train-loglik.json, each
 * malformed in seeded ways (test/helpers/fuzz-inputs.ts; no binaries are committed). In process, the readers see thousands of cases cheaply; end to end, the real
 * command runs on the cases that must fail and, for each, must: exit non-zero, print one line
 * under 300 characters with no stack trace, finish in bounded time and memory, and leave every
 * file it was given as it was.
 */
import "./helpers/setup.js";
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  mkdtempSync,
  writeFileSync,
  readFileSync,
  existsSync,
  cpSync,
  mkdirSync,
  readdirSync,
  statSync,
  rmSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { tree } from "@jax-js/jax";
import { parseCsv } from "../src/data/csv.js";
import { parseIdx } from "../src/data/idx.js";
import { decodeSafetensors, encodeSafetensors } from "../src/io/safetensors.js";
import { decodeRun } from "../src/io/checkpoint.js";
import { resolveFlowConfig, type FlowConfig } from "../src/models/index.js";
import { readLogLikSummary } from "../src/eval/loglik-quantiles.js";
import {
  rng,
  validCsv,
  malformedCsvs,
  mutateCsv,
  idxBytes,
  malformedIdx,
  malformedSafetensors,
  mutateJson,
} from "./helpers/fuzz-inputs.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = join(HERE, "..", "src", "cli", "main.js");
const PROBE = pathToFileURL(join(HERE, "helpers", "rss-probe.js")).href;
/** Per command: generous for a loaded 2-core machine, far below what a hang would take. */
const TIME_LIMIT_MS = 30_000;
/** Peak resident memory of one command on a malformed file (a bare failing start is about 60 MB). */
const MEMORY_LIMIT_KB = 600_000;

/** A clean failure: an Error (not a TypeError from code that met an unexpected value), one printable line under 300 characters. */
function assertCleanError(err: unknown, label: string, names?: RegExp): void {
  assert.ok(err instanceof Error, `${label}: threw ${String(err)}`);
  assert.equal(
    err.constructor,
    Error,
    `${label}: ${err.constructor.name}: ${err.message.slice(0, 300)}`,
  );
  assert.ok(
    err.message.length < 300,
    `${label}: ${err.message.length} characters: ${err.message.slice(0, 400)}`,
  );
  assert.doesNotMatch(
    err.message,
    /[\u0000-\u001f\u007f\ufffd]/,
    `${label}: unprintable: ${JSON.stringify(err.message.slice(0, 300))}`,
  );
  if (names) assert.match(err.message, names, `${label}: names the file`);
}

function attempt<T>(label: string, f: () => T, names?: RegExp): T | undefined {
  try {
    return f();
  } catch (err) {
    assertCleanError(err, label, names);
    return undefined;
  }
}

const noPollution = () => {
  assert.equal(
    ({} as Record<string, unknown>).polluted,
    undefined,
    "Object.prototype was polluted",
  );
  assert.equal(
    typeof ({} as Record<string, unknown>).toString,
    "function",
    "Object.prototype.toString was replaced",
  );
};

let tmp: string;
let run: string;
let runConfig: string;
let runWeights: Uint8Array;
let validImages: Uint8Array;
let validLabels: Uint8Array;

interface Result {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  rssKB: number;
}

function clayflow(args: string[]): Promise<Result> {
  const rssFile = join(tmp, `rss-${Math.random().toString(36).slice(2)}`);
  const env = {
    ...process.env,
    CLAYFLOW_THREADS: "1",
    CLAYFLOW_RSS_FILE: rssFile,
    CLAYFLOW_DATA_DIR: join(tmp, "no-data"),
  };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--max-old-space-size=256", "--import", PROBE, CLI, ...args],
      { env, timeout: TIME_LIMIT_MS, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: unknown; signal?: string | null }) | null;
        const rssKB = existsSync(rssFile) ? Number(readFileSync(rssFile, "utf8")) : NaN;
        resolve({
          code: e ? (typeof e.code === "number" ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout,
          stderr,
          rssKB,
        });
      },
    );
  });
}

/** Hashes of every file under the given paths (files or folders). */
function snapshot(paths: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (p: string) => {
    if (!existsSync(p)) return;
    if (statSync(p).isDirectory()) for (const f of readdirSync(p)) walk(join(p, f));
    else out.set(p, createHash("sha256").update(readFileSync(p)).digest("hex"));
  };
  paths.forEach(walk);
  return out;
}

/**
 * Runs the command on a malformed input and checks every promise of the suite; `inputs` are
 * the files and folders it was given (unchanged afterwards), `absent` the outputs it must not
 * leave behind.
 */
async function expectCleanFailure(
  label: string,
  args: string[],
  inputs: string[],
  absent: string[] = [],
  memoryLimitKB = MEMORY_LIMIT_KB,
): Promise<void> {
  const before = snapshot(inputs);
  const r = await clayflow(args);
  const where = `${label} (clayflow ${args.join(" ")})`;
  assert.equal(r.signal, null, `${where}: killed by ${r.signal} (over ${TIME_LIMIT_MS} ms?)`);
  assert.ok(
    r.code !== 0 && r.code !== null,
    `${where}: exit ${r.code}; stdout ${r.stdout.slice(-300)}`,
  );
  const lines = r.stderr
    .trimEnd()
    .split("\n")
    .filter((l) => l !== "(run with --verbose for details)");
  assert.equal(
    lines.length,
    1,
    `${where}: one line of error, got ${JSON.stringify(r.stderr.slice(0, 1500))}`,
  );
  assert.ok(lines[0].length < 300, `${where}: ${lines[0].length} characters`);
  assert.match(lines[0], /^clayflow: /, `${where}: ${lines[0]}`);
  assert.doesNotMatch(
    r.stderr,
    /^\s+at .+:\d+:\d+\)?$|\n\s+at |TypeError|RangeError|ReferenceError|FATAL ERROR|heap out of memory/m,
    `${where}: internals shown: ${r.stderr.slice(0, 600)}`,
  );
  assert.doesNotMatch(
    lines[0],
    /[\u0000-\u001f\u007f\ufffd]/,
    `${where}: raw bytes in ${JSON.stringify(lines[0])}`,
  );
  assert.ok(r.rssKB < memoryLimitKB, `${where}: peak memory ${r.rssKB} kB, over ${memoryLimitKB}`);
  assert.deepEqual(snapshot(inputs), before, `${where}: an input file changed`);
  for (const p of absent) assert.ok(!existsSync(p), `${where}: left ${p} behind`);
}

/** Runs `jobs` two at a time (the command mostly waits on start-up; two keep the time down on 2 cores). */
async function inPairs(jobs: (() => Promise<void>)[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]();
  };
  await Promise.all([worker(), worker()]);
}

function write(path: string, bytes: Uint8Array): string {
  writeFileSync(path, bytes);
  return path;
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "clayflow-fuzz-"));
  run = join(tmp, "run");
  const args = [
    "train",
    "--data",
    "moons",
    "--out",
    run,
    "--steps",
    "4",
    "--layers",
    "2",
    "--hidden",
    "8",
    "--samples",
    "400",
    "--eval-every",
    "2",
    "--no-plots",
  ];
  const r = await clayflow(args);
  assert.equal(r.code, 0, r.stderr);
  runConfig = readFileSync(join(run, "config.json"), "utf8");
  runWeights = new Uint8Array(readFileSync(join(run, "weights.safetensors"))); // a copy: a Buffer's slice() is a view
  const g = rng(11);
  const n = 6;
  validImages = idxBytes([n, 28, 28], g.bytes(n * 784));
  validLabels = idxBytes(
    [n],
    Uint8Array.from({ length: n }, () => g.int(10)),
  );
});

after(() => rmSync(tmp, { recursive: true, force: true }));

describe("fuzz: the readers, in process", () => {
  it("parseCsv refuses every malformed CSV and takes random edits of a valid one cleanly", () => {
    const r = rng(1);
    for (const c of malformedCsvs(r)) {
      assert.throws(
        () => parseCsv(new TextDecoder().decode(c.bytes), { file: "f.csv" }),
        (e) => (assertCleanError(e, c.name, /^f\.csv/), true),
        c.name,
      );
    }
    const base = validCsv(r);
    for (let i = 0; i < 3000; i++) {
      const c = mutateCsv(r, base);
      const table = attempt(
        c.name,
        () => parseCsv(new TextDecoder().decode(c.bytes), { file: "f.csv" }),
        /^f\.csv/,
      );
      if (table) {
        assert.equal(table.data.length, table.rows * table.cols, c.name);
        assert.ok(table.data.every(Number.isFinite), `${c.name}: every value finite`);
        assert.equal(new Set(table.columns).size, table.cols, `${c.name}: unique column names`);
      }
    }
  });

  it("parseIdx refuses every malformed IDX file (raw and gzip) and takes random header edits cleanly", () => {
    const r = rng(2);
    const gzip = (b: Uint8Array) => new Uint8Array(gzipSync(b));
    for (const c of malformedIdx(r, validImages, gzip)) {
      if (c.name === "images of the wrong size" || c.name === "only two dimensions") continue; // valid IDX, wrong for images: the dataset loader's check
      assert.throws(
        () => parseIdx(c.bytes, { file: "f.idx" }),
        (e) => (assertCleanError(e, c.name, /^f\.idx/), true),
        c.name,
      );
    }
    // A gzip bomb: 64 MiB of zeros in 64 kB, under a bound of 1 MiB of values, is stopped while inflating.
    const bomb = gzip(idxBytes([64, 1024, 1024], new Uint8Array(64 * 1024 * 1024)));
    assert.throws(
      () => parseIdx(bomb, { file: "bomb.gz", maxElements: 1 << 20 }),
      (e) => (assertCleanError(e, "bomb", /^bomb\.gz: decompresses to more than/), true),
    );
    for (let i = 0; i < 2000; i++) {
      const b = (i % 2 ? gzip(validImages) : validImages).slice();
      const edits = 1 + r.int(3);
      for (let k = 0; k < edits; k++) b[r.int(Math.min(b.length, i % 2 ? 40 : 16))] = r.int(256);
      const parsed = attempt(
        `case ${i}`,
        () => parseIdx(b, { file: "f.idx", maxElements: 1 << 20 }),
        /^f\.idx/,
      );
      if (parsed)
        assert.equal(
          parsed.data.length,
          parsed.dims.reduce((a, d) => a * d, 1),
        );
    }
  });

  it("decodeSafetensors refuses every malformed file and takes random header edits cleanly", () => {
    const r = rng(3);
    for (const c of malformedSafetensors(r, runWeights)) {
      // Valid files that are wrong for a run (a tensor short, one named __proto__ kept as a Map key): the run loader's checks.
      if (c.name === "a tensor missing" || c.name === "__proto__ as a tensor name") continue;
      assert.throws(
        () => decodeSafetensors(c.bytes),
        (e) => (assertCleanError(e, c.name, /^safetensors: /), true),
        c.name,
      );
    }
    const headerEnd =
      8 + Number(new DataView(runWeights.buffer, runWeights.byteOffset).getBigUint64(0, true));
    for (let i = 0; i < 1500; i++) {
      const b = runWeights.slice();
      for (let k = 1 + r.int(3); k > 0; k--)
        b[r.int(headerEnd)] = r.pick([
          0x22,
          0x2c,
          0x5b,
          0x5d,
          0x7b,
          0x7d,
          0x30,
          0x39,
          0x2d,
          0x00,
          r.int(256),
        ]);
      attempt(`case ${i}`, () => decodeSafetensors(b), /^safetensors: /);
    }
  });

  it("decodeRun takes random edits of config.json cleanly, prototype keys included, and refuses every malformed weights file", () => {
    const r = rng(4);
    const config = JSON.parse(runConfig);
    let loaded = 0;
    for (let i = 0; i < 400; i++) {
      const m = mutateJson(r, config);
      const run = attempt(
        m.name,
        () => decodeRun({ config: m.text, weights: runWeights }),
        /config\.json|weights\.safetensors/,
      );
      if (run) {
        loaded++;
        tree.dispose([run.params, run.bestParams]);
      }
      noPollution();
    }
    assert.ok(loaded < 400, "some edits are refused");
    for (const c of malformedSafetensors(r, runWeights)) {
      assert.throws(
        () => decodeRun({ config: runConfig, weights: c.bytes }),
        (e) => (assertCleanError(e, c.name, /^weights\.safetensors/), true),
        c.name,
      );
    }
    noPollution();
  });

  it("resolveFlowConfig takes random edits of vector and image model configs cleanly (nothing is built)", () => {
    const r = rng(12);
    const models: FlowConfig[] = [
      JSON.parse(runConfig).model,
      {
        model: "nsf-ar",
        dim: 3,
        layers: 2,
        hidden: [8, 8],
        bins: 4,
        tailBound: 3,
        base: { kind: "mixture", components: 3 },
      },
      {
        model: "glow",
        shape: [8, 8, 1],
        levels: 2,
        steps: 2,
        hidden: 8,
        blocks: 1,
        classes: 0,
        context: { kind: "downsample", factor: 2 },
      },
      {
        model: "realnvp",
        shape: [8, 8, 3],
        levels: 2,
        steps: 1,
        hidden: 8,
        blocks: 0,
        classes: 10,
        dequantization: "variational",
      },
    ];
    for (let i = 0; i < 3000; i++) {
      const m = mutateJson(r, models[i % models.length]);
      attempt(m.name, () => resolveFlowConfig(JSON.parse(m.text)));
      noPollution();
    }
  });
});

describe("fuzz: a run's train-loglik.json (read by score --flag-quantile)", () => {
  it("readLogLikSummary takes random edits cleanly, and score refuses the damaged ones in one line", async () => {
    const r = rng(13);
    const dir = join(tmp, "loglik");
    mkdirSync(dir);
    const valid = JSON.parse(readFileSync(join(run, "train-loglik.json"), "utf8"));
    const refused: { name: string; text: string }[] = [];
    for (let i = 0; i < 300; i++) {
      const m = mutateJson(r, valid);
      writeFileSync(join(dir, "train-loglik.json"), m.text);
      try {
        await readLogLikSummary(dir);
      } catch (e) {
        assertCleanError(e, m.name, /train-loglik\.json: /);
        if (refused.length < 10) refused.push(m);
      }
      noPollution();
    }
    assert.equal(refused.length, 10, "edits that break the file are made");
    const rows = write(join(tmp, "rows3.csv"), new TextEncoder().encode(validCsv(rng(14), 20)));
    const jobs = [
      ...refused,
      { name: "random bytes", text: new TextDecoder().decode(r.bytes(2000)) },
    ].map((m, i) => {
      const d = join(tmp, `loglik${i}`);
      cpSync(run, d, { recursive: true });
      writeFileSync(join(d, "train-loglik.json"), m.text);
      return () =>
        expectCleanFailure(
          `train-loglik.json ${m.name}`,
          [
            "score",
            "--run",
            d,
            "--data",
            rows,
            "--out",
            join(d, "s.csv"),
            "--flag-quantile",
            "0.01",
          ],
          [d, rows],
          [join(d, "s.csv")],
        );
    });
    await inPairs(jobs);
  });
});

describe("fuzz: the clayflow command on malformed files", () => {
  it("train and score on malformed CSVs", async () => {
    const dir = join(tmp, "csv");
    mkdirSync(dir);
    const jobs = malformedCsvs(rng(5)).flatMap((c, i) => {
      const file = write(join(dir, `case${i}.csv`), c.bytes);
      const out = join(tmp, `csv-train-${i}`);
      // train reads every case; score (the same reader, beside a run that must stay intact) every other one, to save time.
      return [
        () =>
          expectCleanFailure(
            `CSV ${c.name}`,
            ["train", "--data", file, "--out", out, "--steps", "2", "--no-plots"],
            [file],
            [out],
          ),
        ...(i % 2
          ? [
              () =>
                expectCleanFailure(
                  `CSV ${c.name}`,
                  ["score", "--run", run, "--data", file, "--out", join(dir, `scores${i}.csv`)],
                  [file, run],
                  [join(dir, `scores${i}.csv`)],
                ),
            ]
          : []),
      ];
    });
    await inPairs(jobs);
  });

  it("sample --context on malformed CSVs of contexts", async () => {
    const r = rng(16);
    const rows = Array.from(
      { length: 60 },
      () => `${r.next().toFixed(3)},${r.next().toFixed(3)},${r.int(3)}`,
    );
    const data = write(
      join(tmp, "conditional.csv"),
      new TextEncoder().encode(`x,y,c\n${rows.join("\n")}\n`),
    );
    const conditional = join(tmp, "conditional-run");
    const t = await clayflow([
      "train",
      "--data",
      data,
      "--context-columns",
      "c",
      "--out",
      conditional,
      "--steps",
      "2",
      "--layers",
      "2",
      "--hidden",
      "8",
      "--eval-every",
      "2",
      "--no-plots",
    ]);
    assert.equal(t.code, 0, t.stderr);
    const dir = join(tmp, "contexts");
    mkdirSync(dir);
    // Contexts are one column named c: the cases' x,y header is renamed so that each reaches its own flaw.
    const jobs = malformedCsvs(rng(17))
      .filter((_, i) => i % 3 === 0)
      .map((c, i) => {
        const text = new TextDecoder().decode(c.bytes).replace(/^(\ufeff?)x,y/, "$1c,y");
        const file = write(join(dir, `context${i}.csv`), new TextEncoder().encode(text));
        return () =>
          expectCleanFailure(
            `context CSV ${c.name}`,
            ["sample", "--run", conditional, "--context", file, "--out", join(dir, `s${i}.csv`)],
            [file, conditional],
            [join(dir, `s${i}.csv`)],
          );
      });
    await inPairs(jobs);
  });

  it("train on a 22 MB CSV whose last row is bad reads it in bounded memory", async () => {
    // 1.2 million rows, 2.4 million values (19 MB as float64). Read whole, the text and its field strings took 495 MB.
    const rows = Array.from(
      { length: 1_200_000 },
      (_, i) => `${((i % 1000) / 7).toFixed(5)},${((i % 777) / 3).toFixed(5)}`,
    );
    const file = join(tmp, "big.csv");
    writeFileSync(file, `x,y\n${rows.join("\n")}\n1,oops\n`);
    const out = join(tmp, "big-run");
    await expectCleanFailure(
      "a large CSV",
      ["train", "--data", file, "--out", out],
      [file],
      [out],
      250_000,
    );
  });

  it("train on image datasets with one malformed IDX file", async () => {
    const gzip = (b: Uint8Array) => new Uint8Array(gzipSync(b));
    const files = [
      "train-images-idx3-ubyte",
      "train-labels-idx1-ubyte",
      "t10k-images-idx3-ubyte",
      "t10k-labels-idx1-ubyte",
    ];
    const jobs = malformedIdx(rng(6), validImages, gzip).map((c, i) => {
      const dir = join(tmp, `idx${i}`);
      mkdirSync(dir);
      const bad = i % files.length;
      // The labels' cases come from an image file: wrong for labels too.
      files.forEach((f, j) =>
        write(join(dir, f), j === bad ? c.bytes : f.includes("images") ? validImages : validLabels),
      );
      const out = join(tmp, `idx-train-${i}`);
      return () =>
        expectCleanFailure(
          `IDX ${c.name} as ${files[bad]}`,
          ["train", "--data", "mnist", "--data-dir", dir, "--out", out, "--steps", "1"],
          [dir],
          [out],
        );
    });
    await inPairs(jobs);
  });

  it("eval, interpolate and ood of an image run on test images with one malformed IDX file", async () => {
    const gzip = (b: Uint8Array) => new Uint8Array(gzipSync(b));
    const files = [
      "train-images-idx3-ubyte",
      "train-labels-idx1-ubyte",
      "t10k-images-idx3-ubyte",
      "t10k-labels-idx1-ubyte",
    ];
    const good = join(tmp, "idx-good");
    mkdirSync(good);
    files.forEach((f) => write(join(good, f), f.includes("images") ? validImages : validLabels));
    // The smallest image run (the files are not the official MNIST, which only a download would verify).
    const imageRun = join(tmp, "image-run");
    const t = await clayflow([
      "train",
      "--data",
      "mnist",
      "--data-dir",
      good,
      "--out",
      imageRun,
      "--steps",
      "2",
      "--levels",
      "1",
      "--flow-steps",
      "1",
      "--blocks",
      "0",
      "--hidden",
      "4",
      "--batch-size",
      "4",
      "--eval-every",
      "2",
      "--dequantization",
      "uniform",
      "--no-plots",
    ]);
    assert.equal(t.code, 0, t.stderr);
    const commands = [
      (dir: string) => ["eval", "--run", imageRun, "--data-dir", dir],
      (dir: string) => [
        "interpolate",
        "--run",
        imageRun,
        "--data-dir",
        dir,
        "--out",
        join(dir, "i.png"),
      ],
      (dir: string) => [
        "ood",
        "--run",
        imageRun,
        "--in",
        "mnist:test",
        "--out",
        "mnist:train",
        "--data-dir",
        dir,
        "--score",
        "raw",
      ],
    ];
    // Half the cases (the other command above reads them all), a test-split file each, which all three commands read.
    const cases = malformedIdx(rng(15), validImages, gzip).filter((_, i) => i % 2 === 0);
    const jobs = cases.map((c, i) => {
      const dir = join(tmp, `idx-test${i}`);
      cpSync(good, dir, { recursive: true });
      const bad = files[2 + (i % 2)];
      write(join(dir, bad), c.bytes);
      return () =>
        expectCleanFailure(
          `IDX ${c.name} as ${bad}`,
          commands[i % commands.length](dir),
          [dir, imageRun],
          [join(dir, "i.png")],
        );
    });
    // The image run's own files damaged: a few malformed weights files and refused config edits.
    const weights = new Uint8Array(readFileSync(join(imageRun, "weights.safetensors")));
    const config = JSON.parse(readFileSync(join(imageRun, "config.json"), "utf8"));
    const r = rng(18);
    const damaged: [string, string, Uint8Array | string][] = malformedSafetensors(r, weights)
      .filter((_, i) => i % 6 === 0)
      .map((c) => [`weights ${c.name}`, "weights.safetensors", c.bytes]);
    while (damaged.length < 10) {
      const m = mutateJson(r, config);
      try {
        const loaded = decodeRun({ config: m.text, weights });
        tree.dispose([loaded.params, loaded.bestParams]);
      } catch {
        damaged.push([`config ${m.name}`, "config.json", m.text]);
      }
    }
    jobs.push(
      ...damaged.map(([name, file, bytes], i) => {
        const dir = join(tmp, `image-run${i}`);
        cpSync(imageRun, dir, { recursive: true });
        writeFileSync(join(dir, file), bytes);
        const args =
          i % 2
            ? ["interpolate", "--run", dir, "--data-dir", good, "--out", join(dir, "i.png")]
            : ["eval", "--run", dir, "--data-dir", good];
        return () =>
          expectCleanFailure(`image run ${name}`, args, [dir, good], [join(dir, "i.png")]);
      }),
    );
    await inPairs(jobs);
  });

  it("sample, score, doctor and train --resume on a run with a malformed weights file", async () => {
    const rows = write(join(tmp, "rows.csv"), new TextEncoder().encode(validCsv(rng(7), 20)));
    const commands = [
      (dir: string) => ["sample", "--run", dir, "-n", "5", "--out", join(dir, "s.csv")],
      (dir: string) => ["score", "--run", dir, "--data", rows, "--out", join(dir, "s.csv")],
      (dir: string) => ["doctor", "--run", dir, "--samples", "16", "--jacobians", "2"],
      (dir: string) => ["train", "--resume", dir, "--steps", "6"],
    ];
    const jobs = malformedSafetensors(rng(8), runWeights).map((c, i) => {
      const dir = join(tmp, `st${i}`);
      cpSync(run, dir, { recursive: true });
      write(join(dir, "weights.safetensors"), c.bytes);
      return () =>
        expectCleanFailure(
          `safetensors ${c.name}`,
          commands[i % commands.length](dir),
          [dir, rows],
          [join(dir, "s.csv")],
        );
    });
    await inPairs(jobs);
  });

  it("sample, score, doctor and train --resume on a run with a damaged config.json", async () => {
    const rows = write(join(tmp, "rows2.csv"), new TextEncoder().encode(validCsv(rng(9), 20)));
    const r = rng(10);
    const config = JSON.parse(runConfig);
    const refused: { name: string; text: string }[] = [];
    // The edits decodeRun refuses (some edits, of the data's name say, are harmless).
    while (refused.length < 24) {
      const m = mutateJson(r, config);
      try {
        const loaded = decodeRun({ config: m.text, weights: runWeights });
        tree.dispose([loaded.params, loaded.bestParams]);
      } catch {
        refused.push(m);
      }
    }
    const garbage = [
      { name: "random bytes", text: new TextDecoder().decode(r.bytes(3000)) },
      { name: "empty", text: "" },
      { name: "deeply nested", text: "[".repeat(200_000) },
      { name: "a huge string", text: JSON.stringify("x".repeat(2_000_000)) },
    ];
    const commands = [
      (dir: string) => ["sample", "--run", dir, "-n", "5", "--out", join(dir, "s.csv")],
      (dir: string) => ["score", "--run", dir, "--data", rows, "--out", join(dir, "s.csv")],
      (dir: string) => ["doctor", "--run", dir, "--samples", "16", "--jacobians", "2"],
      (dir: string) => ["train", "--resume", dir, "--steps", "6"],
    ];
    const jobs = [...refused, ...garbage].map((m, i) => {
      const dir = join(tmp, `cfg${i}`);
      cpSync(run, dir, { recursive: true });
      writeFileSync(join(dir, "config.json"), m.text);
      return () =>
        expectCleanFailure(
          `config.json ${m.name}`,
          commands[i % commands.length](dir),
          [dir, rows],
          [join(dir, "s.csv")],
        );
    });
    await inPairs(jobs);
  });

  it("sample, score, doctor and train --resume on a run whose two files agree on a model far too large to build", async () => {
    // Both files edited alike and the checksum dropped (as in a run written before checksums): only the model's own bounds stop these.
    const edits: [string, unknown][] = [
      ["layers", 1e9],
      ["layers", 100_000],
      ["dim", 1e8],
      ["hidden", [1e9]],
      ["hidden", Array.from({ length: 100_000 }, () => 8)],
      ["contextDim", 1e9],
      ["base", { kind: "mixture", components: 1e9 }],
      ["base", { kind: "nonsense" }],
      ["model", "x".repeat(100_000)],
      ["dim", 2 ** 53],
    ];
    const commands = [
      (dir: string) => ["sample", "--run", dir, "-n", "5", "--out", join(dir, "s.csv")],
      (dir: string) => ["doctor", "--run", dir, "--samples", "16", "--jacobians", "2"],
      (dir: string) => ["train", "--resume", dir, "--steps", "6"],
    ];
    const jobs = edits.map(([key, value], i) => {
      const dir = join(tmp, `model${i}`);
      cpSync(run, dir, { recursive: true });
      const { tensors, metadata } = decodeSafetensors(runWeights);
      const model = { ...JSON.parse(metadata.model), [key]: value };
      write(
        join(dir, "weights.safetensors"),
        encodeSafetensors(tensors, { ...metadata, model: JSON.stringify(model) }),
      );
      const config = JSON.parse(runConfig);
      delete config.weightsSha256;
      writeFileSync(
        join(dir, "config.json"),
        JSON.stringify({ ...config, model: { ...config.model, [key]: value } }),
      );
      return () =>
        expectCleanFailure(
          `model ${key} = ${JSON.stringify(value).slice(0, 30)}`,
          commands[i % commands.length](dir),
          [dir],
          [join(dir, "s.csv")],
        );
    });
    await inPairs(jobs);
  });
});
