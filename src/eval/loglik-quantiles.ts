/**
 * Quantiles of a run's training log-likelihood, stored beside the run so `clayflow score
 * --flag-quantile Q` can flag new rows that are less likely than all but a fraction Q of the
 * training rows (docs/CHECKPOINTS.md, "train-loglik.json").
 *
 * The summary is the quantile function on a grid: quantiles[k] = Q(k / 1000), k = 0..1000, with
 * Q the sample quantile of type 7 (linear interpolation between order statistics; Hyndman & Fan
 * 1996, R's default). Between grid points it is interpolated linearly again, which is exact at
 * the grid points and within one grid step of the sample's own interpolation elsewhere: 1001
 * numbers (about 20 kB of JSON) instead of every row's value.
 *
 * Training rows score higher than fresh rows from the same distribution (the flow was fitted to
 * them), so a threshold at the training Q-quantile flags somewhat more than Q of new normal rows.
 */
import { node } from "../core/node-builtins.js";
import { writeFileAtomic } from "../io/atomic-write.js";
import { jsonExcerpt } from "../core/excerpt.js";

export const LOGLIK_FILE = "train-loglik.json";
export const LOGLIK_FORMAT = "clayflow-loglik-quantiles";
export const LOGLIK_VERSION = 1;
/** Grid resolution: quantiles at k / LOGLIK_LEVELS. */
export const LOGLIK_LEVELS = 1000;
/** At most this many training rows are scored (evenly spaced through the split when there are more). */
export const LOGLIK_MAX_ROWS = 20000;

/** Quantiles of the training rows' log-likelihoods, kept in a run to flag unusual rows later. */
export interface LogLikSummary {
  format: typeof LOGLIK_FORMAT;
  version: number;
  /** Log-likelihoods are in nats, in the data's own units (the standardisation's log-det added). */
  units: "nats";
  /** What was scored: "training rows", or the CSV file given to `score --train-data`. */
  source: string;
  /** Rows scored, and rows available (more than `rows` when subsampled). */
  rows: number;
  ofRows: number;
  /** The run's training step, and the step of the parameters scored (the best validation step, or the last). */
  step: number;
  paramsStep: number;
  mean: number;
  /** LOGLIK_LEVELS + 1 non-decreasing values: quantiles[k] = Q(k / LOGLIK_LEVELS). */
  quantiles: number[];
}

/** Type-7 sample quantile of ascending `sorted` at q in [0, 1]. */
export function sortedQuantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new Error("quantile of an empty sample");
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile level must be in [0, 1], got ${q}`);
  return interpolate(sorted, (n - 1) * q);
}

/** Linear interpolation of `values` at fractional index h; an infinite end point wins (no NaN). */
function interpolate(values: ArrayLike<number>, h: number): number {
  const lo = Math.floor(h);
  const frac = h - lo;
  const a = values[lo];
  if (frac === 0 || lo + 1 >= values.length) return a;
  const b = values[lo + 1];
  if (a === b) return a;
  // a + frac (b - a) with an infinite end is that end (0 < frac < 1); the formula would give NaN.
  if (a === -Infinity) return a;
  if (b === Infinity) return b;
  return a + frac * (b - a);
}

/** The stored summary of log-likelihoods `logp` (any order; NaN is an error). */
export function summarizeLogLik(
  logp: ArrayLike<number>,
  meta: { source: string; ofRows?: number; step: number; paramsStep: number },
): LogLikSummary {
  const sorted = Float64Array.from(logp).sort();
  if (sorted.length === 0) throw new Error("summarizeLogLik: no log-likelihoods to summarise");
  if (Number.isNaN(sorted[sorted.length - 1]))
    throw new Error("summarizeLogLik: a log-likelihood is NaN (the model is broken)");
  const quantiles = Array.from({ length: LOGLIK_LEVELS + 1 }, (_, k) =>
    sortedQuantile(sorted, k / LOGLIK_LEVELS),
  );
  const finite = sorted.filter(Number.isFinite);
  return {
    format: LOGLIK_FORMAT,
    version: LOGLIK_VERSION,
    units: "nats",
    source: meta.source,
    rows: sorted.length,
    ofRows: meta.ofRows ?? sorted.length,
    step: meta.step,
    paramsStep: meta.paramsStep,
    mean:
      finite.length === sorted.length
        ? finite.reduce((a, v) => a + v, 0) / finite.length
        : -Infinity,
    quantiles,
  };
}

/** The Q-quantile (Q in (0, 1)) of the summarised log-likelihoods. */
export function summaryQuantile(summary: LogLikSummary, q: number): number {
  if (!(q > 0 && q < 1)) throw new Error(`quantile level must be in (0, 1), got ${q}`);
  return interpolate(summary.quantiles, q * LOGLIK_LEVELS);
}

/** Evenly spaced rows (at most `max`) of row-major `x`, so a subsample covers the whole split. */
export function evenRows(x: Float32Array, dim: number, max = LOGLIK_MAX_ROWS): Float32Array {
  const rows = x.length / dim;
  if (rows <= max) return x;
  const out = new Float32Array(max * dim);
  for (let i = 0; i < max; i++) {
    const r = Math.floor((i * rows) / max);
    out.set(x.subarray(r * dim, (r + 1) * dim), i * dim);
  }
  return out;
}

/** JSON cannot hold -Infinity (a row outside the support): it is written as the string "-Infinity". */
const encode = (v: number): number | string => (Number.isFinite(v) ? v : String(v));

export async function writeLogLikSummary(dir: string, summary: LogLikSummary): Promise<void> {
  const json = { ...summary, mean: encode(summary.mean), quantiles: summary.quantiles.map(encode) };
  await writeFileAtomic(
    node.path("writeLogLikSummary").join(dir, LOGLIK_FILE),
    JSON.stringify(json) + "\n",
  );
}

/** The run's summary, or null when the run has none (trained before summaries existed). */
export async function readLogLikSummary(dir: string): Promise<LogLikSummary | null> {
  const path = node.path("readLogLikSummary").join(dir, LOGLIK_FILE);
  let text: string;
  try {
    text = await node.fsp("readLogLikSummary").readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  const bad = (what: string): never => {
    throw new Error(
      `${path}: ${what}; delete the file and pass --threshold NATS or --train-data FILE.csv instead`,
    );
  };
  let raw: Record<string, unknown> = {};
  try {
    raw = JSON.parse(text);
  } catch {
    bad("not valid JSON (corrupt or truncated)");
  }
  if (raw === null || typeof raw !== "object") bad("expected a JSON object");
  if (raw.format !== LOGLIK_FORMAT)
    bad(`format is ${jsonExcerpt(raw.format)}, expected "${LOGLIK_FORMAT}"`);
  if (!Number.isInteger(raw.version) || (raw.version as number) < 1)
    bad("version must be a positive integer");
  if ((raw.version as number) > LOGLIK_VERSION)
    bad(`version ${raw.version} is newer than this clayflow reads (${LOGLIK_VERSION})`);
  for (const key of ["rows", "ofRows", "step", "paramsStep"]) {
    if (!Number.isSafeInteger(raw[key]) || (raw[key] as number) < 0)
      bad(`${key} must be a non-negative integer`);
  }
  const decode = (v: unknown) => (v === "-Infinity" ? -Infinity : v === "Infinity" ? Infinity : v);
  const quantiles = Array.isArray(raw.quantiles) ? raw.quantiles.map(decode) : [];
  if (
    quantiles.length !== LOGLIK_LEVELS + 1 ||
    !quantiles.every(
      (v, k) =>
        typeof v === "number" && !Number.isNaN(v) && (k === 0 || v >= (quantiles[k - 1] as number)),
    )
  ) {
    bad(`quantiles must be ${LOGLIK_LEVELS + 1} non-decreasing numbers`);
  }
  const mean = decode(raw.mean);
  if (typeof mean !== "number") bad("mean must be a number");
  return {
    format: LOGLIK_FORMAT,
    version: raw.version as number,
    units: "nats",
    source: typeof raw.source === "string" ? raw.source : "training rows",
    rows: raw.rows as number,
    ofRows: raw.ofRows as number,
    step: raw.step as number,
    paramsStep: raw.paramsStep as number,
    mean: mean as number,
    quantiles: quantiles as number[],
  };
}
