/**
 * Invertible linear map of the last axis, LU-parametrised (Kingma & Dhariwal
 * 2018, "Glow", §3.2, the LU form of the invertible 1x1 convolution):
 *   W = P L (U + diag(sign * exp(logS))),
 *   forward: y = W x  (x a vector of the last axis),
 *   log|det J| = positions * sum(logS),
 * with P a fixed permutation, L unit lower-triangular, U strictly upper, and
 * positions = H * W for an [H, W, C] event (the 1x1 convolution) or 1 for [D].
 * The log-determinant is O(D); the inverse is two triangular solves
 * (`lax.linalg.triangularSolve`, which has forward- and reverse-mode rules)
 * after undoing P, never a general matrix inverse.
 *
 * Initialisation, as in Glow, is a random rotation: Q from the QR decomposition
 * of a Gaussian matrix (signs fixed so Q is Haar-distributed), factored as
 * Q = P L U with partial pivoting. jax-js has no QR and `init` cannot read
 * device arrays synchronously, so both factorisations run on the host in plain
 * JS from `mulberry32(seed)`; `init`'s key is not used.
 *
 * P and sign are NOT parameters: they are derived from the JSON option `seed`
 * (or are the identity with `init: "identity"`), so they are reproducible from
 * the configuration alone, never seen by the optimizer, and cannot be broken by
 * training (a gradient step could not flip a sign or move a permutation anyway).
 * The trainable parameters are `lower` and `upper` (full [C, C] matrices of
 * which only the strictly lower / strictly upper parts are used) and `logS`.
 * Layers stacked in one flow should get different seeds.
 */
import { numpy as np, lax, type Array } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { checkInput, assertPositiveInt } from "../core/checks.js";
import { mulberry32 } from "../core/prng.js";
import { discardInitInputs } from "../core/util.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** Parameters of `luLinear`: the strictly lower and upper triangles and the log-magnitudes of U's diagonal. */
export type LuLinearParams = { lower: Array; upper: Array; logS: Array };

/** Options of `luLinear`. */
export interface LuLinearOptions {
  /** Seed of the initial rotation (and so of P and sign). Default 0. */
  seed?: number;
  /** "rotation" (default, Glow) or "identity" (P = L = U = I). */
  init?: "rotation" | "identity";
}

/** The fixed and initial parts of P L U. `perm[r]` is the row of L U that becomes row r of W. */
interface Factors {
  perm: number[];
  sign: number[];
  lower: number[][];
  upper: number[][];
  logS: number[];
}

/** Haar-random orthogonal C x C matrix: Gram-Schmidt QR of a Gaussian matrix, R's diagonal made positive. */
function randomRotation(c: number, seed: number): number[][] {
  const rand = mulberry32(seed);
  const normal = () => {
    // Box-Muller; 1 - u keeps the log argument in (0, 1].
    const u = 1 - rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  // Columns of a Gaussian matrix, orthonormalised in order (modified Gram-Schmidt, two passes for stability).
  const cols: number[][] = [];
  for (let j = 0; j < c; j++) {
    let v = globalThis.Array.from({ length: c }, normal);
    for (let pass = 0; pass < 2; pass++) {
      for (const q of cols) {
        const d = q.reduce((s, qi, i) => s + qi * v[i], 0);
        v = v.map((vi, i) => vi - d * q[i]);
      }
    }
    const n = Math.hypot(...v);
    cols.push(v.map((vi) => vi / n));
  }
  return globalThis.Array.from({ length: c }, (_, i) => cols.map((col) => col[i]));
}

/** A = P L U with partial pivoting. */
function luFactor(a: number[][]): Factors {
  const c = a.length;
  const m = a.map((row) => [...row]);
  const order = globalThis.Array.from({ length: c }, (_, i) => i); // row i of L U = row order[i] of A
  for (let k = 0; k < c; k++) {
    let p = k;
    for (let i = k + 1; i < c; i++) if (Math.abs(m[i][k]) > Math.abs(m[p][k])) p = i;
    [m[k], m[p]] = [m[p], m[k]];
    [order[k], order[p]] = [order[p], order[k]];
    for (let i = k + 1; i < c; i++) {
      m[i][k] /= m[k][k];
      for (let j = k + 1; j < c; j++) m[i][j] -= m[i][k] * m[k][j];
    }
  }
  // Row order[i] of A is row i of L U, so row r of A is row perm[r] of L U.
  const perm = new globalThis.Array<number>(c);
  order.forEach((r, i) => (perm[r] = i));
  const diag = m.map((row, i) => row[i]);
  return {
    perm,
    sign: diag.map((d) => (d < 0 ? -1 : 1)),
    lower: m.map((row, i) => row.map((v, j) => (j < i ? v : 0))),
    upper: m.map((row, i) => row.map((v, j) => (j > i ? v : 0))),
    logS: diag.map((d) => Math.log(Math.abs(d))),
  };
}

function identityFactors(c: number): Factors {
  const zeros = () =>
    globalThis.Array.from({ length: c }, () => new globalThis.Array<number>(c).fill(0));
  return {
    perm: globalThis.Array.from({ length: c }, (_, i) => i),
    sign: new globalThis.Array<number>(c).fill(1),
    lower: zeros(),
    upper: zeros(),
    logS: new globalThis.Array<number>(c).fill(0),
  };
}

/** Invertible linear map of the last axis, LU-parametrised (Glow's invertible 1x1 convolution). */
export function luLinear(
  eventShape: number[],
  options: LuLinearOptions = {},
): Bijector<LuLinearParams> {
  const where = "luLinear";
  if (eventShape.length === 0) throw new Error(`${where}: eventShape must have at least one axis`);
  eventShape.forEach((d) => assertPositiveInt(where, "each eventShape entry", d));
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed))
    throw new Error(`${where}: seed must be an integer, got ${jsonExcerpt(seed)}`);
  const mode = options.init ?? "rotation";
  if (mode !== "rotation" && mode !== "identity") {
    throw new Error(`${where}: init must be "rotation" or "identity", got ${jsonExcerpt(mode)}`);
  }
  const c = eventShape[eventShape.length - 1];
  const positions = eventShape.slice(0, -1).reduce((a, d) => a * d, 1);
  const f = mode === "rotation" ? luFactor(randomRotation(c, seed)) : identityFactors(c);
  const invPerm = new globalThis.Array<number>(c);
  f.perm.forEach((p, i) => (invPerm[p] = i));
  const reversal = globalThis.Array.from({ length: c }, (_, i) => c - 1 - i);
  const revInvPerm = reversal.map((i) => invPerm[i]);

  /** U with its signed diagonal, in `x`'s dtype. */
  const upperFactor = (upper: Array, logS: Array, x: Array) => {
    const dtype = x.dtype;
    return np.triu(upper, 1).add(np.diag(np.exp(logS).mul(np.array(f.sign, { dtype }))));
  };
  const total = (logS: Array, x: Array) =>
    np.ones([x.shape[0]], { dtype: x.dtype }).mul(logS.sum().mul(positions));
  // Gathers with constant indices (under jit the index array becomes a constant of the trace).
  const gather = (x: Array, order: number[]) =>
    np.take(x, np.array(order, { dtype: np.int32 }), -1);
  /**
   * The same reordering as a product with a one-hot matrix: its gradient is a
   * matmul, where a gather's is a scatter, which jax-js 0.1.25 cannot jit here.
   */
  const permuteColumns = (x: Array, order: number[]) => {
    const onehot = x.dtype === np.float64 ? new Float64Array(c * c) : new Float32Array(c * c);
    order.forEach((from, to) => (onehot[from * c + to] = 1));
    return np.matmul(x, np.array(onehot, { shape: [c, c], dtype: x.dtype }));
  };

  return {
    kind: "luLinear",
    eventShape,
    contextDim: 0,
    init(key, initOptions = {}) {
      discardInitInputs(key, initOptions);
      const dtype = initOptions.dtype ?? np.float32;
      return {
        lower: np.array(f.lower, { dtype }),
        upper: np.array(f.upper, { dtype }),
        logS: np.array(f.logS, { dtype }),
      };
    },
    forward({ lower, upper, logS }, x, cond) {
      checkInput(where, eventShape, 0, x);
      cond?.dispose();
      const shape = x.shape;
      const logDet = total(logS.ref, x);
      const L = np.tril(lower, -1).add(np.eye(c, undefined, { dtype: x.dtype }));
      const U = upperFactor(upper, logS, x);
      // Rows are vectors: (L U x)^T = x^T U^T L^T, then P reorders the entries.
      const rows = x.reshape([-1, c]);
      const z = np.matmul(np.matmul(rows, U.transpose()), L.transpose());
      return [permuteColumns(z, f.perm).reshape(shape), logDet];
    },
    inverse({ lower, upper, logS }, y, cond) {
      checkInput(where, eventShape, 0, y);
      cond?.dispose();
      const shape = y.shape;
      const dtype = y.dtype;
      const logDet = total(logS.ref, y).neg();
      // Solve L w = P^T y, then U x = w (in row-vector form). jax-js's jit only
      // accepts materialised (non-view) inputs to triangular_solve, and its
      // lower-triangular path flips them (a view) internally, so L w = z is
      // solved as the upper system (J L J)(J w) = J z, J the reversal, with
      // J L J built by non-view ops and the reversals of z and J w done by gathers.
      const Lrev = np.triu(np.flip(lower, [0, 1]), 1).add(np.eye(c, undefined, { dtype }));
      const U = upperFactor(upper, logS, y);
      const jz = gather(y.reshape([-1, c]), revInvPerm);
      const jw = lax.linalg.triangularSolve(Lrev, jz, {
        leftSide: false,
        transposeA: true,
        unitDiagonal: true,
      });
      const w = gather(jw, reversal);
      const x = lax.linalg.triangularSolve(U, w, { leftSide: false, transposeA: true });
      return [x.reshape(shape), logDet];
    },
  };
}
