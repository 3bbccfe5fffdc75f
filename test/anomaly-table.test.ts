import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  anomalyTableLogDensity,
  makeAnomalyTable,
  writeAnomalyTable,
  ANOMALY_KINDS,
  ANOMALY_TABLE_COLUMNS,
} from "../src/data/anomaly-table.js";
import { readCsvFile } from "../src/data/csv.js";

const SMALL = { trainRows: 500, testRows: 400 };

test("anomaly table: same seed, same table; other seed, other table", () => {
  const a = makeAnomalyTable(3, SMALL);
  const b = makeAnomalyTable(3, SMALL);
  assert.deepEqual(a.train, b.train);
  assert.deepEqual(a.test, b.test);
  assert.deepEqual(a.labels, b.labels);
  const c = makeAnomalyTable(4, SMALL);
  assert.notDeepEqual(c.train, a.train);
  assert.notDeepEqual(c.test, a.test);
  // The splits use separate streams: a bigger test split leaves the training rows alone.
  assert.deepEqual(makeAnomalyTable(3, { trainRows: 500, testRows: 600 }).train, a.train);
});

test("anomaly table: shapes, exact label rate and kind mix, finite values", () => {
  const t = makeAnomalyTable(0, { trainRows: 300, testRows: 1000, anomalyFraction: 0.08 });
  assert.equal(t.dim, 8);
  assert.deepEqual(t.columns, ANOMALY_TABLE_COLUMNS);
  assert.equal(t.train.length, 300 * 8);
  assert.equal(t.test.length, 1000 * 8);
  assert.equal(t.labels.length, 1000);
  assert.equal(
    t.labels.reduce((a, v) => a + v, 0),
    80,
  );
  const perKind = ANOMALY_KINDS.map((_, k) => t.kinds.filter((v) => v === k).length);
  assert.deepEqual(perKind, [920, 28, 20, 20, 12]); // 35/25/25/15 % of 80
  assert.ok(t.kinds.every((k, i) => k > 0 === (t.labels[i] === 1)));
  assert.ok(t.train.every(Number.isFinite) && t.test.every(Number.isFinite));
  // Anomalies are spread over the split, not stacked at one end.
  const firstHalf = t.labels.subarray(0, 500).reduce((a, v) => a + v, 0);
  assert.ok(firstHalf > 20 && firstHalf < 60, `${firstHalf} of 80 anomalies in the first half`);
});

test("anomaly table: anomalies lie below the normal rows' 1% density quantile, by construction", () => {
  const t = makeAnomalyTable(1, { trainRows: 2000, testRows: 500 });
  const logp = anomalyTableLogDensity(t.test);
  t.labels.forEach((l, i) => {
    if (l) assert.ok(logp[i] < t.densityCut, `anomaly ${i}: ${logp[i]} >= ${t.densityCut}`);
  });
  const trainLogp = anomalyTableLogDensity(t.train);
  const below = trainLogp.filter((v) => v < t.densityCut).length / t.trainRows;
  assert.ok(below > 0.003 && below < 0.02, `${below} of normal rows below the 1% cut`);
});

test("anomaly table: -mean log-density of normal rows matches the process's entropy", () => {
  // The clusters barely overlap, so the entropy is that of a mixture of disjoint Gaussians:
  // H = -sum w log w + sum_k w_k sum_j log(s_kj sqrt(2 pi e)) + sum_j log scale_j (shears and the
  // rotation keep volume). A wrong inverse map, Jacobian or normaliser would move -E[log p].
  const w = [0.3, 0.3, 0.25, 0.15];
  const stds = [
    [0.5, 0.3, 1.2, 0.3, 0.8, 0.3, 0.6, 0.3],
    [0.5, 0.3, 0.6, 0.3, 1.2, 0.3, 0.8, 0.3],
    [1.2, 0.3, 0.5, 0.3, 0.6, 0.3, 0.8, 0.3],
    [0.8, 0.3, 0.5, 0.3, 0.6, 0.3, 1.2, 0.3],
  ];
  const scale = [1, 10, 0.1, 5, 100, 2, 0.5, 20];
  const entropy =
    -w.reduce((a, v) => a + v * Math.log(v), 0) +
    w.reduce(
      (a, v, k) =>
        a + v * stds[k].reduce((b, s) => b + Math.log(s * Math.sqrt(2 * Math.PI * Math.E)), 0),
      0,
    ) +
    scale.reduce((a, v) => a + Math.log(v), 0);
  const logp = anomalyTableLogDensity(makeAnomalyTable(5, { trainRows: 6000, testRows: 1 }).train);
  const nll = -logp.reduce((s, x) => s + x, 0) / logp.length;
  // Monte Carlo standard error is about 0.03 (the log-density's spread is about 2 nats).
  assert.ok(Math.abs(nll - entropy) < 0.12, `-E[log p] ${nll} vs entropy ${entropy}`);
});

test("anomaly table: writeAnomalyTable writes train.csv and test.csv with headers that read back", async () => {
  const dir = mkdtempSync(join(tmpdir(), "clayflow-anomaly-table-"));
  const { table, train, test } = await writeAnomalyTable(dir, 2, SMALL);
  const tr = readCsvFile(train);
  assert.deepEqual(tr.columns, ANOMALY_TABLE_COLUMNS);
  assert.equal(tr.rows, 500);
  const te = readCsvFile(test);
  assert.deepEqual(te.columns, [...ANOMALY_TABLE_COLUMNS, "anomaly"]);
  assert.equal(te.rows, 400);
  for (let r = 0; r < te.rows; r++) {
    assert.equal(te.data[r * 9 + 8], table.labels[r]);
    for (let j = 0; j < 8; j++) {
      const v = table.test[r * 8 + j];
      assert.ok(Math.abs(te.data[r * 9 + j] - v) <= 1e-6 * Math.abs(v) + 1e-12);
    }
  }
  assert.ok(readFileSync(train, "utf8").endsWith("\n"));
});

test("anomaly table: clear errors for bad options", () => {
  assert.throws(
    () => makeAnomalyTable(0, { anomalyFraction: 0 }),
    /anomalyFraction must be in \(0, 1\)/,
  );
  assert.throws(
    () => makeAnomalyTable(0, { trainRows: 0 }),
    /trainRows must be a positive integer/,
  );
  assert.throws(() => makeAnomalyTable(NaN), /seed must be a finite number/);
  assert.throws(() => anomalyTableLogDensity([1, 2, 3]), /whole number of rows/);
});
