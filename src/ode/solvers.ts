/**
 * Ordinary differential equation solvers over jax-js arrays: dy/dt = f(t, y) from t0 to t1
 * (t1 < t0 integrates backwards), where the state y is a list of arrays (e.g. [x, logDet]).
 *
 *   const { y, nfe } = odeint((t, [x]) => [x.mul(a)], [x0], 0, 1, { solver: "rk4", steps: 20 });
 *
 * Fixed-step solvers: "euler" (order 1), "midpoint" (order 2), "rk4" (classic Runge-Kutta,
 * order 4), with `steps` equal steps. The adaptive "dopri5" (Dormand & Prince 1980, the 5(4)
 * pair with the first-same-as-last property) controls its step size so that the RMS over all
 * components of err / (atol + rtol * max(|y|, |y_new|)) stays below 1 (Hairer, Norsett &
 * Wanner, "Solving ODEs I", section II.4: the error norm, the step-size rule with safety 0.9
 * and factors in [0.2, 10], and the initial step-size heuristic). It reads each step's error
 * back to decide, so it runs eagerly, not under `jit`; the fixed-step solvers unroll under
 * `jit` as under eager evaluation.
 *
 * Every result reports `nfe`, the number of evaluations of f.
 *
 * Ownership: `f` consumes the state passed to it and returns fresh arrays; `odeint` consumes
 * `y0` and returns fresh arrays.
 */
import type { Array } from "@jax-js/jax";
import { numpy as np } from "@jax-js/jax";

/** The right-hand side f(t, y) of dy/dt = f(t, y). Consumes `y`; returns one array per state array. */
export type OdeFunction = (t: number, y: Array[]) => Array[];

/** The solvers `odeint` knows. */
export const ODE_SOLVERS = ["euler", "midpoint", "rk4", "dopri5"] as const;
/** One of `ODE_SOLVERS`. */
export type OdeSolver = (typeof ODE_SOLVERS)[number];

/** Options of `odeint`. */
export interface OdeOptions {
  /** Default "dopri5". */
  solver?: OdeSolver;
  /** Fixed-step solvers: the number of equal steps. Default 100. */
  steps?: number;
  /** dopri5: relative tolerance. Default 1e-5. */
  rtol?: number;
  /** dopri5: absolute tolerance. Default 1e-5. */
  atol?: number;
  /** dopri5: at most this many steps (accepted and rejected); more is an error. Default 10000. */
  maxSteps?: number;
  /** dopri5: first step size (magnitude); default chosen by Hairer's heuristic (one extra evaluation). */
  firstStep?: number;
}

/** What `odeint` returns: the state at t1 and the work it took. */
export interface OdeResult {
  /** The state at t1 (fresh arrays, one per state array). */
  y: Array[];
  /** Number of evaluations of f. */
  nfe: number;
  /** Accepted steps. */
  steps: number;
  /** Rejected steps (dopri5; 0 for the fixed-step solvers). */
  rejected: number;
}

const refs = (y: Array[]) => y.map((a) => a.ref);
const disposeAll = (...lists: Array[][]) => {
  for (const l of lists) for (const a of l) a.dispose();
};

/** y + h * sum_i c_i k_i, per state array (c_i = 0 terms skipped). Does not consume anything. */
function combine(y: Array[], h: number, ks: Array[][], cs: number[]): Array[] {
  return y.map((yj, j) => {
    let acc = yj.ref;
    cs.forEach((c, i) => {
      if (c !== 0) acc = acc.add(ks[i][j].ref.mul(h * c));
    });
    return acc;
  });
}

function checkOptions(where: string, o: OdeOptions, t0: number, t1: number): void {
  if (!Number.isFinite(t0) || !Number.isFinite(t1))
    throw new Error(`${where}: t0 and t1 must be finite numbers, got ${t0} and ${t1}`);
  const solver = o.solver ?? "dopri5";
  if (!ODE_SOLVERS.includes(solver))
    throw new Error(
      `${where}: unknown solver ${JSON.stringify(solver)}; expected one of ${ODE_SOLVERS.join(", ")}`,
    );
  if (o.steps !== undefined && !(Number.isInteger(o.steps) && o.steps >= 1))
    throw new Error(`${where}: steps must be a positive integer, got ${o.steps}`);
  if (o.maxSteps !== undefined && !(Number.isInteger(o.maxSteps) && o.maxSteps >= 1))
    throw new Error(`${where}: maxSteps must be a positive integer, got ${o.maxSteps}`);
  for (const k of ["rtol", "atol"] as const) {
    const v = o[k];
    if (v !== undefined && !(v >= 0 && Number.isFinite(v)))
      throw new Error(`${where}: ${k} must be a finite number >= 0, got ${v}`);
  }
  if ((o.rtol ?? 1e-5) === 0 && (o.atol ?? 1e-5) === 0)
    throw new Error(`${where}: rtol and atol cannot both be 0`);
  if (o.firstStep !== undefined && !(o.firstStep > 0 && Number.isFinite(o.firstStep)))
    throw new Error(`${where}: firstStep must be a positive number, got ${o.firstStep}`);
}

/** Integrate dy/dt = f(t, y) from t0 to t1 starting at `y0`; see the module comment. Consumes `y0`. */
export function odeint(
  f: OdeFunction,
  y0: Array[],
  t0: number,
  t1: number,
  options: OdeOptions = {},
): OdeResult {
  try {
    checkOptions("odeint", options, t0, t1);
  } catch (e) {
    disposeAll(y0);
    throw e;
  }
  const solver = options.solver ?? "dopri5";
  f = settled(f);
  if (solver === "dopri5") return dopri5(f, y0, t0, t1, options);
  const n = options.steps ?? 100;
  const h = (t1 - t0) / n;
  let y = y0;
  let nfe = 0;
  for (let s = 0; s < n; s++) {
    const t = t0 + s * h;
    let next: Array[];
    if (solver === "euler") {
      const k1 = f(t, refs(y));
      next = combine(y, h, [k1], [1]);
      disposeAll(k1);
      nfe += 1;
    } else if (solver === "midpoint") {
      const k1 = f(t, refs(y));
      const mid = combine(y, h, [k1], [0.5]);
      const k2 = f(t + h / 2, mid);
      next = combine(y, h, [k2], [1]);
      disposeAll(k1, k2);
      nfe += 2;
    } else {
      const k1 = f(t, refs(y));
      const k2 = f(t + h / 2, combine(y, h, [k1], [0.5]));
      const k3 = f(t + h / 2, combine(y, h, [k2], [0.5]));
      const k4 = f(t + h, combine(y, h, [k3], [1]));
      next = combine(y, h, [k1, k2, k3, k4], [1 / 6, 1 / 3, 1 / 3, 1 / 6]);
      disposeAll(k1, k2, k3, k4);
      nfe += 4;
    }
    disposeAll(y);
    y = next;
  }
  return { y, nfe, steps: n, rejected: 0 };
}

/**
 * Computes the pending work behind `y` now (by reading one value of each array). Eagerly,
 * jax-js queues operations until something reads them, and queued evaluations of a compiled
 * field each hold all their intermediate buffers at once: seven queued evaluations of a
 * U-Net field on 16 images (one dopri5 step) asked for 4 GiB, and a queue of fixed steps ran
 * about 10x slower than the same steps settled one by one. Returns false, doing nothing,
 * under a trace (jit), where there is nothing to read.
 */
function settle(y: Array[]): boolean {
  try {
    for (const a of y) a.ref.reshape([-1]).slice([0, 1]).item();
    return true;
  } catch (e) {
    // Asynchronous work still pending (the caller should await its inputs first, see
    // core/maybe-jit.ts readyForEager): try again after the next evaluation.
    return /pending async/.test(String((e as Error)?.message));
  }
}

/** `f`, each evaluation settled before the next one is queued (see `settle`). */
function settled(f: OdeFunction): OdeFunction {
  let eager = true;
  return (t, y) => {
    const out = f(t, y);
    if (eager) eager = settle(out);
    return out;
  };
}

// Dormand-Prince 5(4) tableau (Hairer, Norsett & Wanner, Table II.5.2).
const C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1];
const A: number[][] = [
  [],
  [1 / 5],
  [3 / 40, 9 / 40],
  [44 / 45, -56 / 15, 32 / 9],
  [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
  [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
  [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
];
/** Fifth-order weights (= the last row of A: first same as last). */
const B5 = A[6];
/** Fourth-order weights. */
const B4 = [5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40];
/** B5 - B4: the error estimate's weights (of the 7 stages, the 7th being f(y_new)). */
const E = [...B5, 0].map((b, i) => b - B4[i]);

/**
 * RMS over every component of `v` / (atol + rtol * max(|a|, |b|)) (b optional), read back to
 * a number. Does not consume anything.
 */
function scaledRms(v: Array[], a: Array[], b: Array[] | null, rtol: number, atol: number): number {
  let sum = 0;
  let count = 0;
  v.forEach((vj, j) => {
    const mag = b ? np.maximum(np.abs(a[j].ref), np.abs(b[j].ref)) : np.abs(a[j].ref);
    const r = vj.ref.div(mag.mul(rtol).add(atol));
    sum += r.ref.mul(r).sum().item() as number;
    count += vj.size;
  });
  return count === 0 ? 0 : Math.sqrt(sum / count);
}

function dopri5(f: OdeFunction, y0: Array[], t0: number, t1: number, o: OdeOptions): OdeResult {
  const rtol = o.rtol ?? 1e-5;
  const atol = o.atol ?? 1e-5;
  const maxSteps = o.maxSteps ?? 10000;
  const span = Math.abs(t1 - t0);
  const dir = t1 >= t0 ? 1 : -1;
  let y = y0;
  let nfe = 0;
  if (span === 0) return { y, nfe, steps: 0, rejected: 0 };
  let k1 = f(t0, refs(y));
  nfe++;
  let h: number;
  if (o.firstStep !== undefined) h = Math.min(o.firstStep, span);
  else {
    // Hairer's starting step: h0 from the sizes of y and f, refined by one Euler trial step.
    const d0 = scaledRms(y, y, null, rtol, atol);
    const d1 = scaledRms(k1, y, null, rtol, atol);
    const h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : (0.01 * d0) / d1;
    const yTry = combine(y, dir * h0, [k1], [1]);
    const f1 = f(t0 + dir * h0, refs(yTry));
    nfe++;
    const diff = f1.map((a, j) => a.ref.sub(k1[j].ref));
    const d2 = scaledRms(diff, y, null, rtol, atol) / h0;
    disposeAll(yTry, f1, diff);
    const h1 =
      Math.max(d1, d2) <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : (0.01 / Math.max(d1, d2)) ** (1 / 5);
    h = Math.min(100 * h0, h1, span);
  }
  let t = t0;
  let steps = 0;
  let rejected = 0;
  while (dir * (t1 - t) > 0) {
    if (steps + rejected >= maxSteps) {
      disposeAll(y, k1);
      throw new Error(
        `odeint (dopri5): reached maxSteps = ${maxSteps} steps at t = ${t} before t1 = ${t1} ` +
          `(step size ${h.toExponential(2)}): the problem may be stiff or the tolerances ` +
          `(rtol ${rtol}, atol ${atol}) too tight; loosen them, raise maxSteps, or use a fixed-step solver`,
      );
    }
    // Land exactly on t1 (and do not leave a sliver of a step behind).
    if (h >= dir * (t1 - t) * (1 - 1e-12)) h = dir * (t1 - t);
    const hs = dir * h;
    const ks: Array[][] = [k1];
    for (let i = 1; i < 6; i++) {
      ks.push(f(t + C[i] * hs, combine(y, hs, ks, A[i])));
      nfe++;
    }
    const yNew = combine(y, hs, ks, B5);
    const k7 = f(t + hs, refs(yNew));
    nfe++;
    ks.push(k7);
    const errVec = combine(
      y.map((a) => np.zerosLike(a.ref)),
      hs,
      ks,
      E,
    );
    const err = scaledRms(errVec, y, yNew, rtol, atol);
    disposeAll(errVec);
    const accept = err <= 1 && Number.isFinite(err);
    // Step-size rule: safety 0.9, growth at most 10x, shrink at most 5x (Hairer II.4).
    const factor = !Number.isFinite(err)
      ? 0.2
      : err === 0
        ? 10
        : Math.min(10, Math.max(0.2, 0.9 * err ** (-1 / 5)));
    disposeAll(...ks.slice(1, 6));
    if (accept) {
      disposeAll(y, k1);
      y = yNew;
      k1 = k7;
      t = hs === t1 - t ? t1 : t + hs;
      steps++;
      h *= factor;
    } else {
      disposeAll(yNew, k7);
      rejected++;
      h *= Math.min(1, factor);
    }
    if (!(h > 0) || h < 1e-14 * Math.max(1, Math.abs(t))) {
      disposeAll(y, k1);
      throw new Error(
        `odeint (dopri5): the step size fell to ${h} at t = ${t}: the right-hand side is not finite or too stiff there`,
      );
    }
  }
  disposeAll(k1);
  return { y, nfe, steps, rejected };
}
