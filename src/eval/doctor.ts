/**
 * Health checks for a trained flow, with a verdict a user can act on:
 * - invertibility: decode(encode(x)) = x on data rows, encode(decode(z)) = z on base samples;
 * - log-determinants: the model's forward log-det against log|det| of the exact Jacobian
 *   (jacfwd + slogdet) in float64 on the "cpu" device (the wasm kernels compute exp/log to
 *   float32 accuracy even on float64 arrays, too coarse for this comparison);
 * - finiteness of log-densities on the data and of samples.
 * A conditional flow is checked at given contexts, one per row.
 */
import { numpy as np, random, tree, jacfwd, defaultDevice, type Array } from "@jax-js/jax";
import type { Flow, FlowParams } from "../distributions/flow.js";
import { logProbRows } from "./log-prob-rows.js";

/** Options of `diagnose`. */
export interface DoctorOptions {
  /** Data rows ([rows, dim] row-major, in the model's units). Default: the model's own samples. */
  data?: Float32Array;
  /**
   * Contexts ([rows, contextDim] row-major) of a conditional flow, required for one: row i is the
   * context of data row i (or of sample i). The checks use as many rows as both have.
   */
  cond?: Float32Array;
  /** Rows for the round-trip checks. Default 64. */
  samples?: number;
  /** Rows for the exact-Jacobian check (each costs one Jacobian). Default 8. */
  jacobianSamples?: number;
  seed?: number;
  /**
   * Largest acceptable round-trip error relative to the data scale. Default 1e-3: float32
   * carries 7 digits, and a deep flow loses a few of them; beyond this the model is unstable.
   */
  roundTripTolerance?: number;
  /** Largest acceptable |log-det - exact| in nats, in float64. Default 1e-6. */
  logDetTolerance?: number;
}

/** The outcome of a check, or of all of them. */
export type Verdict = "healthy" | "warning" | "broken";

/** One health check: its measured value, the limit it is held to and what to do when it fails. */
export interface DoctorCheck {
  name: string;
  value: number;
  limit: number;
  verdict: Verdict;
  /** One sentence saying what it means and what to do (empty when healthy). */
  advice: string;
}

/** What `diagnose` found: each check and the overall verdict. */
export interface DoctorReport {
  verdict: Verdict;
  checks: DoctorCheck[];
  /** Checks that do not apply to this flow, each with the reason. */
  skipped: string[];
}

const rank: Record<Verdict, number> = { healthy: 0, warning: 1, broken: 2 };

const host = async (x: Array) => Float64Array.from((await x.data()) as Float32Array);

/** A float64 copy of `params` on the cpu device (does not consume `params`). */
async function toCpu64(params: FlowParams<any, any>): Promise<FlowParams<any, any>> {
  const [leaves, def] = tree.flatten(tree.ref(params) as FlowParams<any, any>) as unknown as [
    Array[],
    Parameters<typeof tree.unflatten>[0],
  ];
  const copies: Array[] = [];
  for (const leaf of leaves) {
    const shape = leaf.shape;
    copies.push(np.array(await host(leaf), { shape, dtype: np.float64, device: "cpu" }));
  }
  return tree.unflatten(def, copies) as FlowParams<any, any>;
}

/** The first n rows as a [n, ...eventShape] batch: image flows take images, not flat rows. */
function rowsArray(rows: Float32Array, eventShape: number[], n: number): Array {
  const width = eventShape.reduce((a, d) => a * d, 1);
  return np.array(rows.subarray(0, n * width)).reshape([n, ...eventShape]);
}

async function roundTrip(
  flow: Flow<any, any>,
  params: FlowParams<any, any>,
  x: Array,
  cond?: Array,
): Promise<{ error: number; scale: number }> {
  const scaleValues = await host(x.ref);
  const back = flow.decode(tree.ref(params), flow.encode(tree.ref(params), x.ref, cond?.ref), cond);
  const diff = await host(back.sub(x));
  let error = 0;
  for (const v of diff) error = Math.max(error, Number.isNaN(v) ? Infinity : Math.abs(v));
  const scale = Math.max(1, ...scaleValues.map(Math.abs));
  return { error, scale };
}

/**
 * A Jacobian whose largest entry dwarfs |det J|^(1/D) by more than e^18 is too
 * ill-conditioned for float64 slogdet to be trusted: such points are skipped
 * (and counted) rather than reported as a bijector bug.
 */
const MAX_LOG_CONDITION = 18;

/**
 * The largest |forward log-det - log|det J|| over the rows, in float64 on the
 * cpu device, and how many rows were too ill-conditioned to check.
 */
async function logDetError(
  flow: Flow<any, any>,
  params: FlowParams<any, any>,
  rows: Float32Array,
  n: number,
  contexts?: Float32Array,
): Promise<{ worst: number; illConditioned: number }> {
  const dim = flow.eventShape.reduce((a, d) => a * d, 1);
  const k = flow.contextDim;
  const previous = defaultDevice();
  const p64 = await toCpu64(params);
  defaultDevice("cpu");
  try {
    let worst = 0;
    let illConditioned = 0;
    for (let i = 0; i < n; i++) {
      const xi = np.array(Float64Array.from(rows.subarray(i * dim, (i + 1) * dim)), {
        dtype: np.float64,
      });
      // The context is held fixed: the Jacobian is with respect to x alone.
      const ci = contexts
        ? np
            .array(Float64Array.from(contexts.subarray(i * k, (i + 1) * k)), { dtype: np.float64 })
            .reshape([1, k])
        : undefined;
      const [, ld] = flow.bijector.forward(
        tree.ref(p64.bijector),
        xi.ref.reshape([1, ...flow.eventShape]),
        ci?.ref,
      );
      const f = (v: Array) => {
        const [y, l] = flow.bijector.forward(
          tree.ref(p64.bijector),
          v.reshape([1, ...flow.eventShape]),
          ci?.ref,
        );
        l.dispose();
        return y.reshape([dim]);
      };
      const J = jacfwd(f)(xi);
      ci?.dispose();
      const entries = await host(J.ref);
      const [, exact] = np.linalg.slogdet(J);
      const a = (await host(ld))[0];
      const b = (await host(exact))[0];
      const largest = entries.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      if (Number.isFinite(b) && Math.log(largest) - b / dim > MAX_LOG_CONDITION) {
        illConditioned++;
        continue;
      }
      const err = Number.isFinite(a) && Number.isFinite(b) ? Math.abs(a - b) : Infinity;
      worst = Math.max(worst, err);
    }
    return { worst, illConditioned };
  } finally {
    tree.dispose(p64);
    defaultDevice(previous);
  }
}

/** Run every check. Does not consume `params`. */
export async function diagnose(
  flow: Flow<any, any>,
  params: FlowParams<any, any>,
  options: DoctorOptions = {},
): Promise<DoctorReport> {
  const {
    jacobianSamples = 8,
    seed = 0,
    roundTripTolerance = 1e-3,
    logDetTolerance = 1e-6,
  } = options;
  const dim = flow.eventShape.reduce((a, d) => a * d, 1);
  const k = flow.contextDim;
  const contexts = options.cond;
  if (k > 0 && !contexts)
    throw new Error(
      `diagnose: this flow is conditional: pass cond, a context of ${k} values for each row checked`,
    );
  if (k === 0 && contexts)
    throw new Error("diagnose: cond was given, but this flow takes no context");
  if (contexts && (contexts.length === 0 || contexts.length % k !== 0)) {
    throw new Error(
      `diagnose: cond has ${contexts.length} values, not a whole, non-zero number of contexts of ${k}`,
    );
  }
  const samples = Math.min(options.samples ?? 64, contexts ? contexts.length / k : Infinity);
  const [kData, kBase] = [...random.split(random.key(seed), 2)];
  /** The first m contexts as an array (undefined for an unconditional flow). */
  const condOf = (m: number) =>
    contexts ? np.array(contexts.subarray(0, m * k)).reshape([m, k]) : undefined;

  // Data rows (or the model's own samples when none are given).
  let rows = options.data;
  const generated = await host(
    flow.sample(tree.ref(params), kData, samples, { cond: condOf(samples) }),
  );
  if (!rows) rows = Float32Array.from(generated);
  if (rows.length % dim !== 0)
    throw new Error(
      `diagnose: data has ${rows.length} values, not a whole number of rows of ${dim}`,
    );
  const n = Math.min(samples, rows.length / dim);
  const checks: DoctorCheck[] = [];
  const add = (name: string, value: number, limit: number, bad: Verdict, advice: string) =>
    checks.push({
      name,
      value,
      limit,
      verdict: value <= limit ? "healthy" : bad,
      advice: value <= limit ? "" : advice,
    });

  const samplesFinite = generated.every(Number.isFinite);
  add(
    "sample() is finite",
    samplesFinite ? 0 : 1,
    0,
    "broken",
    "sampling produced NaN or infinite values: the parameters are corrupt or the model diverged; retrain from an earlier checkpoint with a lower learning rate",
  );

  const logp = await logProbRows(flow, params, rows.subarray(0, n * dim), {
    cond: contexts?.subarray(0, n * k),
  });
  const nonFinite = logp.filter((v) => !Number.isFinite(v)).length / n;
  add(
    "log-density finite on data (fraction not)",
    nonFinite,
    0,
    options.data ? "warning" : "broken",
    `${(nonFinite * 100).toFixed(1)}% of rows get log-density -Infinity or NaN: they lie outside the model's support or overflow it; check the data's preprocessing matches training`,
  );

  const fwd = await roundTrip(flow, params, rowsArray(rows, flow.eventShape, n), condOf(n));
  add(
    "decode(encode(x)) error, relative",
    fwd.error / fwd.scale,
    roundTripTolerance,
    "broken",
    `decode(encode(x)) differs from x by ${(fwd.error / fwd.scale).toExponential(1)} (relative): the model is numerically unstable at this scale; train with a lower learning rate or a smaller scale bound`,
  );

  const z = flow.base.sample(tree.ref(params.base), kBase, n, { dtype: np.float32 });
  const zRows = Float32Array.from(await host(z.ref));
  const zCond = condOf(n);
  const back = flow.encode(
    tree.ref(params),
    flow.decode(tree.ref(params), z.ref, zCond?.ref),
    zCond,
  );
  const diff = await host(back.sub(z));
  const inv =
    diff.reduce((m, v) => Math.max(m, Number.isNaN(v) ? Infinity : Math.abs(v)), 0) /
    Math.max(1, ...zRows.map(Math.abs));
  add(
    "encode(decode(z)) error, relative",
    inv,
    roundTripTolerance,
    "broken",
    `encode(decode(z)) differs from z by ${inv.toExponential(1)} (relative): sampling is not the exact inverse of the density; the model is numerically unstable`,
  );

  // Rows (and their contexts) with a finite log-density; the exact Jacobian is taken at the first few.
  const finite = (values: Float32Array, width: number) =>
    values.subarray(0, n * width).filter((_, i) => Number.isFinite(logp[Math.floor(i / width)]));
  const finiteRows = finite(rows, dim);
  const m = Math.min(jacobianSamples, finiteRows.length / dim);
  const skipped: string[] = [];
  // An adaptive ODE solve reads its error back to choose steps, which jacfwd cannot trace.
  if (!flow.jittable)
    skipped.push(
      `log-det vs exact Jacobian: not run for a continuous flow (jacfwd cannot trace an adaptive solve, which reads values back, and would take one ODE solve per dimension); the integrated divergence is tested against the Jacobian of a fixed-step solve in clayflow's own tests`,
    );
  else if (m > 0) {
    const { worst, illConditioned } = await logDetError(
      flow,
      params,
      finiteRows,
      m,
      contexts ? finite(contexts, k) : undefined,
    );
    add(
      "log-det vs exact Jacobian (nats, float64)",
      worst,
      logDetTolerance,
      "broken",
      `the log-determinant differs from the exact Jacobian's by ${worst.toExponential(1)} nats: this is a bug in a bijector; please report it with this output`,
    );
    add(
      "ill-conditioned Jacobians (fraction)",
      illConditioned / m,
      0,
      "warning",
      `${illConditioned} of ${m} points have Jacobians too ill-conditioned to check in float64: the model is numerically extreme there; retrain with a lower learning rate or a smaller scale bound`,
    );
  }
  const verdict = checks.reduce<Verdict>(
    (v, c) => (rank[c.verdict] > rank[v] ? c.verdict : v),
    "healthy",
  );
  return { verdict, checks, skipped };
}

/** A doctor report as aligned text lines, one per check, then the verdict. */
export function formatReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = report.checks.map((c) => {
    const value = c.value === 0 ? "0" : c.value.toExponential(2);
    return `  ${c.verdict === "healthy" ? "ok  " : c.verdict === "warning" ? "WARN" : "FAIL"}  ${c.name.padEnd(width)}  ${value.padStart(9)}  (limit ${c.limit.toExponential(0)})`;
  });
  const advice = report.checks.filter((c) => c.advice).map((c) => `- ${c.advice}`);
  const skipped = (report.skipped ?? []).map((s) => `  skip  ${s}`);
  return [
    `verdict: ${report.verdict}`,
    ...lines,
    ...skipped,
    ...(advice.length ? ["", ...advice] : []),
  ].join("\n");
}
