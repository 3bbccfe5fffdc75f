/**
 * A synthetic table with labelled anomalies, generated reproducibly from a seed: the benchmark
 * for tabular anomaly detection (bench/anomaly-tabular.ts, docs/ANOMALY.md). It is SYNTHETIC:
 * its structure is invented to be hard for a single Gaussian, not measured from any real system.
 *
 * Normal rows (8 columns x1..x8) come from a fixed generative process with a known density:
 *
 *   1. z ~ a mixture of 4 Gaussians in R^8 with diagonal covariances (weights .3/.3/.25/.15):
 *      the even coordinates z0, z2, z4, z6 carry the spread (std 0.5 to 1.2), the odd ones are
 *      thin (std 0.3), and the four means sit 3 to 6 apart, so the clusters are separated;
 *   2. shears bend the thin coordinates along functions of the others (a banana, a sine wave,
 *      a slope whose sign flips with z0, a parabola):
 *        z1 += 0.35 z0^2 - 1.5;  z3 += 1.5 sin(0.9 z2);  z5 += 0.8 tanh(z0) z4;  z7 += 0.25 z6^2 - 0.6 z2
 *      so each cluster is a curved, thin 4-D sheet in 8-D, and the dependence is nonlinear;
 *   3. y = Q z with a fixed random rotation Q (every column mixes all coordinates), then two
 *      mild shears y0 += 0.15 y1^2 and y6 += 0.5 sin(y3);
 *   4. x = offset + scale * y per column (units from 0.1 to 100, as in a real table).
 *
 * Shears and rotations have Jacobian determinant 1, so the exact log-density of a normal row is
 * log p(x) = log GMM(z) - sum(log scale), with z recovered by undoing steps 4 to 1
 * (`anomalyTableLogDensity`): the best any detector can do is known.
 *
 * Anomalies come from four other processes (all defined here, none from any detector's scores):
 *   1 between  (35%): z on the segment between two cluster means (t ~ U(0.35, 0.65)) with half
 *                     the clusters' spread, then the same map: points in the empty space BETWEEN
 *                     the curved clusters, near the overall mean, where a single Gaussian is dense;
 *   2 halo     (25%): a cluster's Gaussian with 2x its spread, then the same map: points AROUND
 *                     the normal structure (a noisy sensor, a drifted process);
 *   3 broken   (25%): a normal z mapped with one of the four step-2 shears reversed (the
 *                     nonlinear relation between columns fails while each column's range stays
 *                     plausible);
 *   4 gross    (15%): a normal row with one column moved by 5 to 9 of its standard deviations.
 * A candidate is kept only if its true normal log-density is below the 1% quantile of normal
 * rows' (a reference sample of 20,000 normal rows of a fixed seed), i.e. only points the normal
 * process rarely produces count as anomalies; rejected candidates are redrawn from the same
 * process, so the mix above holds exactly (counts by largest remainder). Labels therefore follow from the generative process alone.
 *
 * Splits: train = normal rows only (what a detector is fitted on); test = normal rows plus a
 * fraction (default 8%) of anomalies at shuffled positions. Train and test use separate random
 * streams derived from the seed, so changing one split's size leaves the other unchanged.
 */
import { node } from "../core/node-builtins.js";
import { makeRng, type Rng } from "../core/prng.js";
import { writeFileAtomic } from "../io/atomic-write.js";

export const ANOMALY_TABLE_DIM = 8;
export const ANOMALY_TABLE_COLUMNS = Array.from(
  { length: ANOMALY_TABLE_DIM },
  (_, j) => `x${j + 1}`,
);
export const ANOMALY_KINDS = ["normal", "between", "halo", "broken", "gross"] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

const D = ANOMALY_TABLE_DIM;
const WEIGHTS = [0.3, 0.3, 0.25, 0.15];
const MEANS = [
  [3, 0, 0, 0, 0, 0, 0, 0],
  [-3, 0, 0, 0, 0, 0, 0, 0],
  [0, 0, 3, 0, 0, 0, -2, 0],
  [0, 0, -3, 0, 2, 0, 2, 0],
];
const STDS = [
  [0.5, 0.3, 1.2, 0.3, 0.8, 0.3, 0.6, 0.3],
  [0.5, 0.3, 0.6, 0.3, 1.2, 0.3, 0.8, 0.3],
  [1.2, 0.3, 0.5, 0.3, 0.6, 0.3, 0.8, 0.3],
  [0.8, 0.3, 0.5, 0.3, 0.6, 0.3, 1.2, 0.3],
];
const SCALE = [1, 10, 0.1, 5, 100, 2, 0.5, 20];
const OFFSET = [0, 50, 1, -20, 500, 10, 3, 100];
/** Share of each anomaly process among the anomalies (between, halo, broken, gross). */
const KIND_SHARES = [0.35, 0.25, 0.25, 0.15];
/** Fixed seeds of the structure (rotation) and of the reference sample behind the 1% cut. */
const ROTATION_SEED = 20240611;
const REFERENCE_SEED = 7;
const REFERENCE_ROWS = 20000;
const CUT_QUANTILE = 0.01;

/** The step-2 shears: z[target] += sign * f(z). Applied in this order; undone in reverse. */
const SHEARS: { target: number; f: (z: Float64Array) => number }[] = [
  { target: 1, f: (z) => 0.35 * z[0] * z[0] - 1.5 },
  { target: 3, f: (z) => 1.5 * Math.sin(0.9 * z[2]) },
  { target: 5, f: (z) => 0.8 * Math.tanh(z[0]) * z[4] },
  { target: 7, f: (z) => 0.25 * z[6] * z[6] - 0.6 * z[2] },
];
/** The step-3 shears after the rotation. */
const OUTER_SHEARS: { target: number; f: (y: Float64Array) => number }[] = [
  { target: 0, f: (y) => 0.15 * y[1] * y[1] },
  { target: 6, f: (y) => 0.5 * Math.sin(y[3]) },
];

let rotation: Float64Array | null = null;
/** A fixed random rotation: Gram-Schmidt on a Gaussian matrix of a fixed seed (row-major). */
function rotationMatrix(): Float64Array {
  if (rotation) return rotation;
  const rng = makeRng(ROTATION_SEED);
  const q = new Float64Array(D * D);
  for (let i = 0; i < D; i++) {
    for (let j = 0; j < D; j++) q[i * D + j] = rng.normal();
    for (let k = 0; k < i; k++) {
      let dot = 0;
      for (let j = 0; j < D; j++) dot += q[i * D + j] * q[k * D + j];
      for (let j = 0; j < D; j++) q[i * D + j] -= dot * q[k * D + j];
    }
    let norm = 0;
    for (let j = 0; j < D; j++) norm += q[i * D + j] ** 2;
    for (let j = 0; j < D; j++) q[i * D + j] /= Math.sqrt(norm);
  }
  return (rotation = q);
}

/** z -> x (steps 2 to 4); `reversed` negates one step-2 shear (the "broken" anomalies). */
function toData(z: Float64Array, out: Float64Array, offset: number, reversed = -1): void {
  const w = Float64Array.from(z);
  SHEARS.forEach((s, i) => (w[s.target] += (i === reversed ? -1 : 1) * s.f(w)));
  const q = rotationMatrix();
  const y = new Float64Array(D);
  for (let i = 0; i < D; i++) {
    let v = 0;
    for (let j = 0; j < D; j++) v += q[i * D + j] * w[j];
    y[i] = v;
  }
  for (const s of OUTER_SHEARS) y[s.target] += s.f(y);
  for (let j = 0; j < D; j++) out[offset + j] = OFFSET[j] + SCALE[j] * y[j];
}

/** x -> z (undo steps 4 to 2). */
function toLatent(x: ArrayLike<number>, offset: number): Float64Array {
  const y = new Float64Array(D);
  for (let j = 0; j < D; j++) y[j] = (x[offset + j] - OFFSET[j]) / SCALE[j];
  for (let i = OUTER_SHEARS.length - 1; i >= 0; i--)
    y[OUTER_SHEARS[i].target] -= OUTER_SHEARS[i].f(y);
  const q = rotationMatrix();
  const z = new Float64Array(D);
  for (let j = 0; j < D; j++) {
    let v = 0;
    for (let i = 0; i < D; i++) v += q[i * D + j] * y[i]; // Q^T y
    z[j] = v;
  }
  for (let i = SHEARS.length - 1; i >= 0; i--) z[SHEARS[i].target] -= SHEARS[i].f(z);
  return z;
}

const LOG_2PI = Math.log(2 * Math.PI);
const LOG_SCALE = SCALE.reduce((a, s) => a + Math.log(s), 0);

/** Exact log-density (nats) of the NORMAL process at every row of `x` ([rows, 8] row-major). */
export function anomalyTableLogDensity(x: ArrayLike<number>): Float64Array {
  if (x.length % D !== 0)
    throw new Error(
      `anomalyTableLogDensity: ${x.length} values is not a whole number of rows of width ${D}`,
    );
  const rows = x.length / D;
  const out = new Float64Array(rows);
  const terms = new Float64Array(WEIGHTS.length);
  for (let r = 0; r < rows; r++) {
    const z = toLatent(x, r * D);
    for (let k = 0; k < WEIGHTS.length; k++) {
      let t = Math.log(WEIGHTS[k]) - (D / 2) * LOG_2PI;
      for (let j = 0; j < D; j++) {
        const u = (z[j] - MEANS[k][j]) / STDS[k][j];
        t -= 0.5 * u * u + Math.log(STDS[k][j]);
      }
      terms[k] = t;
    }
    const m = Math.max(...terms);
    out[r] = m + Math.log(terms.reduce((a, t) => a + Math.exp(t - m), 0)) - LOG_SCALE;
  }
  return out;
}

function pick(rng: Rng, weights: readonly number[]): number {
  let u = rng.uniform();
  for (let k = 0; k < weights.length - 1; k++) {
    if ((u -= weights[k]) < 0) return k;
  }
  return weights.length - 1;
}

function normalLatent(rng: Rng, k: number, spread = 1): Float64Array {
  return Float64Array.from(
    { length: D },
    (_, j) => MEANS[k][j] + spread * STDS[k][j] * rng.normal(),
  );
}

/** `rows` normal rows into `out` from row `start`. */
function drawNormal(rng: Rng, out: Float64Array, start: number, rows: number): void {
  for (let r = start; r < start + rows; r++)
    toData(normalLatent(rng, pick(rng, WEIGHTS)), out, r * D);
}

interface Reference {
  /** The 1% quantile of the normal log-density: anomalies must lie below it. */
  cut: number;
  /** Per-column standard deviation of normal rows (sizes the gross outliers' shifts). */
  std: Float64Array;
}
let reference: Reference | null = null;
function referenceStats(): Reference {
  if (reference) return reference;
  const x = new Float64Array(REFERENCE_ROWS * D);
  drawNormal(makeRng(REFERENCE_SEED), x, 0, REFERENCE_ROWS);
  const logp = anomalyTableLogDensity(x).sort();
  const std = new Float64Array(D);
  for (let j = 0; j < D; j++) {
    let m = 0;
    for (let r = 0; r < REFERENCE_ROWS; r++) m += x[r * D + j];
    m /= REFERENCE_ROWS;
    let v = 0;
    for (let r = 0; r < REFERENCE_ROWS; r++) v += (x[r * D + j] - m) ** 2;
    std[j] = Math.sqrt(v / REFERENCE_ROWS);
  }
  return (reference = { cut: logp[Math.floor(CUT_QUANTILE * REFERENCE_ROWS)], std });
}

/** One anomaly candidate of `kind` (1..4) into `out` at `offset`. */
function candidate(rng: Rng, kind: number, out: Float64Array, offset: number): void {
  if (kind === 1) {
    const a = rng.int(WEIGHTS.length);
    const b = (a + 1 + rng.int(WEIGHTS.length - 1)) % WEIGHTS.length;
    const t = 0.35 + 0.3 * rng.uniform();
    const z = Float64Array.from(
      { length: D },
      (_, j) =>
        (1 - t) * MEANS[a][j] + t * MEANS[b][j] + 0.25 * (STDS[a][j] + STDS[b][j]) * rng.normal(),
    );
    toData(z, out, offset);
  } else if (kind === 2) {
    toData(normalLatent(rng, pick(rng, WEIGHTS), 2), out, offset);
  } else if (kind === 3) {
    const z = normalLatent(rng, pick(rng, WEIGHTS));
    toData(z, out, offset, rng.int(SHEARS.length));
  } else {
    toData(normalLatent(rng, pick(rng, WEIGHTS)), out, offset);
    const j = rng.int(D);
    const shift = (5 + 4 * rng.uniform()) * referenceStats().std[j];
    out[offset + j] += rng.uniform() < 0.5 ? -shift : shift;
  }
}

/** Options of `makeAnomalyTable`. */
export interface AnomalyTableOptions {
  /** Normal training rows. Default 20,000. */
  trainRows?: number;
  /** Test rows in all (normal + anomalies). Default 5,000. */
  testRows?: number;
  /** Fraction of the test rows that are anomalies, in (0, 1). Default 0.08. */
  anomalyFraction?: number;
}

/** A synthetic table with labelled anomalies (see the module comment). */
export interface AnomalyTable {
  dim: number;
  columns: string[];
  /** Normal rows only, [trainRows, dim] row-major. */
  train: Float64Array;
  trainRows: number;
  /** Normal rows and anomalies, [testRows, dim] row-major. */
  test: Float64Array;
  testRows: number;
  /** 1 for an anomaly, per test row. */
  labels: Uint8Array;
  /** Index into ANOMALY_KINDS (0 = normal), per test row. */
  kinds: Uint8Array;
  /** Candidates drawn per anomaly kind (index into ANOMALY_KINDS) before the density cut kept enough. */
  attempts: number[];
  /** The true normal log-density below which anomalies lie (the normal rows' 1% quantile). */
  densityCut: number;
}

/** Split `n` into counts proportional to `shares` (largest remainder), so the mix is exact. */
function apportion(n: number, shares: readonly number[]): number[] {
  const raw = shares.map((s) => s * n);
  const counts = raw.map(Math.floor);
  const order = raw
    .map((v, k) => [v - Math.floor(v), k] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let i = 0; counts.reduce((a, c) => a + c, 0) < n; i++) counts[order[i][1]]++;
  return counts;
}

/** A seed and a stream number -> an independent 32-bit seed (a murmur3-style mix). */
function streamSeed(seed: number, stream: number): number {
  let h = (Math.trunc(seed) ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Generate the table (see the module comment). Same seed and options, same table. */
export function makeAnomalyTable(seed: number, options: AnomalyTableOptions = {}): AnomalyTable {
  const { trainRows = 20000, testRows = 5000, anomalyFraction = 0.08 } = options;
  if (!Number.isFinite(seed))
    throw new Error(`makeAnomalyTable: seed must be a finite number, got ${seed}`);
  for (const [name, v] of [
    ["trainRows", trainRows],
    ["testRows", testRows],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new Error(`makeAnomalyTable: ${name} must be a positive integer, got ${v}`);
  }
  if (!(anomalyFraction > 0 && anomalyFraction < 1)) {
    throw new Error(`makeAnomalyTable: anomalyFraction must be in (0, 1), got ${anomalyFraction}`);
  }
  const train = new Float64Array(trainRows * D);
  drawNormal(makeRng(streamSeed(seed, 0)), train, 0, trainRows);

  const rng = makeRng(streamSeed(seed, 1));
  const anomalies = Math.round(testRows * anomalyFraction);
  const kinds = new Uint8Array(testRows);
  let next = 0;
  apportion(anomalies, KIND_SHARES).forEach((count, k) => kinds.fill(k + 1, next, (next += count)));
  rng.shuffle(kinds);
  const test = new Float64Array(testRows * D);
  const attempts = ANOMALY_KINDS.map(() => 0);
  const { cut } = referenceStats();
  for (let r = 0; r < testRows; r++) {
    const kind = kinds[r];
    if (kind === 0) {
      drawNormal(rng, test, r, 1);
      continue;
    }
    for (;;) {
      attempts[kind]++;
      candidate(rng, kind, test, r * D);
      if (anomalyTableLogDensity(test.subarray(r * D, (r + 1) * D))[0] < cut) break;
      if (attempts[kind] > 1000 * testRows)
        throw new Error(
          `makeAnomalyTable: anomaly process ${ANOMALY_KINDS[kind]} never falls below the density cut`,
        );
    }
  }
  return {
    dim: D,
    columns: [...ANOMALY_TABLE_COLUMNS],
    train,
    trainRows,
    test,
    testRows,
    labels: kinds.map((k) => (k > 0 ? 1 : 0)),
    kinds,
    attempts,
    densityCut: cut,
  };
}

/** Seven significant digits: float32 reads them back exactly enough, and files stay small. */
const cell = (v: number) => String(Number(v.toPrecision(7)));

function csvText(columns: string[], data: Float64Array, dim: number, labels?: Uint8Array): string {
  const lines = [[...columns, ...(labels ? ["anomaly"] : [])].join(",")];
  const rows = data.length / dim;
  for (let r = 0; r < rows; r++) {
    const cells = Array.from(data.subarray(r * dim, (r + 1) * dim), cell);
    if (labels) cells.push(String(labels[r]));
    lines.push(cells.join(","));
  }
  return lines.join("\n") + "\n";
}

/**
 * Write `train.csv` (columns x1..x8, normal rows) and `test.csv` (x1..x8 and the label column
 * `anomaly`, 0/1) into `dir` (created if needed). Returns the table and the two paths.
 */
export async function writeAnomalyTable(
  dir: string,
  seed: number,
  options: AnomalyTableOptions = {},
): Promise<{ table: AnomalyTable; train: string; test: string }> {
  const { join } = node.path("writeAnomalyTable");
  node.fs("writeAnomalyTable").mkdirSync(dir, { recursive: true });
  const table = makeAnomalyTable(seed, options);
  const train = join(dir, "train.csv");
  const test = join(dir, "test.csv");
  await writeFileAtomic(train, csvText(table.columns, table.train, table.dim));
  await writeFileAtomic(test, csvText(table.columns, table.test, table.dim, table.labels));
  return { table, train, test };
}
