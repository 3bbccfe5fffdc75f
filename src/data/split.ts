/** Seeded train/validation/test splits of row indices, and row gathering. */
import { makeRng } from "../core/prng.js";
import type { FloatData } from "./standardize.js";

/** Options of `splitRows`. */
export interface SplitOptions {
  /** Fraction of rows for validation, in [0, 1). Default 0. */
  valid?: number;
  /** Fraction of rows for test, in [0, 1). Default 0. */
  test?: number;
  /** Seed of the shuffle. Default 0. */
  seed?: number;
}

/** Row indices of the train, validation and test parts. */
export interface RowSplit {
  train: Int32Array;
  valid: Int32Array;
  test: Int32Array;
}

/**
 * Shuffles 0..n-1 with a seeded generator and cuts it into test (round(test*n) rows), valid
 * (round(valid*n)) and train (the rest). Each part is sorted ascending so rows keep file order;
 * batches are shuffled later. Same n, fractions and seed give the same split.
 */
export function splitRows(n: number, options: SplitOptions = {}): RowSplit {
  const { valid = 0, test = 0, seed = 0 } = options;
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`splitRows: n must be a non-negative integer, got ${n}`);
  for (const [name, f] of [
    ["valid", valid],
    ["test", test],
  ] as const) {
    if (!(f >= 0 && f < 1))
      throw new Error(`splitRows: ${name} must be a fraction in [0, 1), got ${f}`);
  }
  const nTest = Math.round(test * n);
  const nValid = Math.round(valid * n);
  if (n - nTest - nValid <= 0) {
    throw new Error(`splitRows: no training rows left (n=${n}, valid=${nValid}, test=${nTest})`);
  }
  const order = makeRng(seed).shuffle(Int32Array.from({ length: n }, (_, i) => i));
  const part = (a: number, b: number) => order.slice(a, b).sort();
  return {
    test: part(0, nTest),
    valid: part(nTest, nTest + nValid),
    train: part(nTest + nValid, n),
  };
}

/** The rows `indices` of row-major `data` with `cols` columns, as a new array of the same type. */
export function takeRows<T extends FloatData>(
  data: T,
  cols: number,
  indices: ArrayLike<number>,
): T {
  const out = (
    data instanceof Float32Array
      ? new Float32Array(indices.length * cols)
      : new Float64Array(indices.length * cols)
  ) as T;
  const rows = data.length / cols;
  for (let k = 0; k < indices.length; k++) {
    const r = indices[k];
    if (!Number.isInteger(r) || r < 0 || r >= rows)
      throw new Error(`takeRows: row index ${r} out of range [0, ${rows})`);
    out.set(data.subarray(r * cols, (r + 1) * cols), k * cols);
  }
  return out;
}
