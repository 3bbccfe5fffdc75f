import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  evenRows,
  readLogLikSummary,
  sortedQuantile,
  summarizeLogLik,
  summaryQuantile,
  writeLogLikSummary,
  LOGLIK_FILE,
  LOGLIK_LEVELS,
} from "../src/eval/loglik-quantiles.js";

const META = { source: "training rows", step: 10, paramsStep: 8 };

test("loglik quantiles: type-7 sample quantiles (R's default) by hand", () => {
  const s = Float64Array.from([1, 2, 3, 4, 5]);
  assert.equal(sortedQuantile(s, 0), 1);
  assert.equal(sortedQuantile(s, 1), 5);
  assert.equal(sortedQuantile(s, 0.5), 3);
  assert.equal(sortedQuantile(s, 0.1), 1.4); // h = 4 * 0.1 = 0.4
  assert.equal(sortedQuantile(Float64Array.from([-Infinity, 0, 1]), 0.25), -Infinity);
  assert.throws(() => sortedQuantile(new Float64Array(0), 0.5), /empty/);
  assert.throws(() => sortedQuantile(s, 1.5), /\[0, 1\]/);
});

test("loglik quantiles: the summary's grid reproduces the sample quantiles", () => {
  const n = 2001; // (n - 1) is a multiple of the grid: exact at every level
  const logp = Float64Array.from({ length: n }, (_, i) => Math.sin(i) * 10 - i / 100);
  const sorted = Float64Array.from(logp).sort();
  const s = summarizeLogLik(logp, { ...META, ofRows: 5000 });
  assert.equal(s.quantiles.length, LOGLIK_LEVELS + 1);
  assert.equal(s.rows, n);
  assert.equal(s.ofRows, 5000);
  for (const q of [0.001, 0.01, 0.05, 0.2, 0.5, 0.99]) {
    assert.ok(Math.abs(summaryQuantile(s, q) - sortedQuantile(sorted, q)) < 1e-9, `q=${q}`);
  }
  // Between grid points: within the neighbouring grid values.
  const q = 0.0105;
  const v = summaryQuantile(s, q);
  assert.ok(v >= s.quantiles[10] && v <= s.quantiles[11]);
  assert.throws(() => summaryQuantile(s, 0), /\(0, 1\)/);
  assert.throws(() => summarizeLogLik([1, NaN], META), /NaN/);
});

test("loglik quantiles: written and read back, -Infinity included; malformed files are refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "clayflow-loglik-"));
  assert.equal(await readLogLikSummary(dir), null);
  const logp = Float64Array.from({ length: 300 }, (_, i) => (i === 0 ? -Infinity : i / 7));
  const s = summarizeLogLik(logp, META);
  await writeLogLikSummary(dir, s);
  const back = await readLogLikSummary(dir);
  assert.deepEqual(back, s);
  assert.equal(back!.quantiles[0], -Infinity);
  assert.equal(back!.mean, -Infinity);

  const path = join(dir, LOGLIK_FILE);
  const good = JSON.parse(readFileSync(path, "utf8"));
  const expectError = async (json: unknown, pattern: RegExp) => {
    writeFileSync(path, typeof json === "string" ? json : JSON.stringify(json));
    await assert.rejects(readLogLikSummary(dir), pattern);
  };
  await expectError("{ truncated", /not valid JSON/);
  await expectError({ ...good, format: "other" }, /format is "other"/);
  await expectError({ ...good, version: 99 }, /newer/);
  await expectError({ ...good, step: -1 }, /step must be a non-negative integer/);
  await expectError({ ...good, quantiles: good.quantiles.slice(1) }, /1001 non-decreasing numbers/);
  await expectError({ ...good, quantiles: [...good.quantiles].reverse() }, /non-decreasing/);
});

test("loglik quantiles: evenRows keeps small sets and spreads a subsample over large ones", () => {
  const x = Float32Array.from({ length: 20 }, (_, i) => i); // 10 rows of width 2
  assert.equal(evenRows(x, 2, 10), x);
  assert.deepEqual([...evenRows(x, 2, 4)], [0, 1, 4, 5, 10, 11, 14, 15]);
});
