/**
 * Base distributions for flows. Like bijectors, a distribution is plain
 * configuration plus a parameter tree, and every method consumes its array
 * arguments (params included): pass `tree.ref(params)` to keep them.
 */
import { numpy as np, type Array, type DType } from "@jax-js/jax";
import type { Params } from "../core/types.js";
import { assertPositiveInt, checkInput } from "../core/checks.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** Options of `Distribution.init`. */
export interface DistributionInitOptions {
  dtype?: DType;
}

/** Options of `Distribution.sample`. */
export interface SampleOptions {
  /**
   * Scales the spread: for a normal, z = mu + temperature * sigma * eps.
   * Default 1; 0 gives the location (the mode of a normal). Must be >= 0.
   */
  temperature?: number;
  /**
   * dtype of the samples for distributions without parameters to take it from
   * (the standard normal). Default float32. Ignored when params fix the dtype.
   */
  dtype?: DType;
}

/** A base distribution: plain configuration plus a parameter tree; every method consumes its array arguments. */
export interface Distribution<P extends Params = Params> {
  /** A short, stable name of the kind of distribution, e.g. "diagNormal". */
  readonly kind: string;
  /** Shape of one event (without the batch axis). */
  readonly eventShape: number[];
  /** Consumes `key`. Parameters are created in `options.dtype ?? float32`. */
  init(key: Array, options?: DistributionInitOptions): P;
  /** log-density of each row of `z` ([batch, ...eventShape]): shape [batch]. */
  logProb(params: P, z: Array): Array;
  /** `n` samples: shape [n, ...eventShape]. */
  sample(params: P, key: Array, n: number, options?: SampleOptions): Array;
}

/** 0.5 * log(2 pi): the normal's log-normaliser, subtracted once per dimension. */
export const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * A scalar constant in `dtype`. Plain JS numbers in arithmetic are rounded to
 * float32 inside jit (jax-js 0.1.25), which breaks float64 exactness for values
 * such as log(2 pi); a typed constant keeps full precision.
 */
export function constant(value: number, dtype: DType): Array {
  return np.array(value, { dtype });
}

/** Validate `z` as [batch, ...eventShape] (does not consume it). */
export function checkEvent(where: string, eventShape: readonly number[], z: Array): void {
  checkInput(where, eventShape, 0, z);
}

/** Validate the sample count and temperature; returns the temperature. */
export function checkSample(where: string, n: unknown, options: SampleOptions = {}): number {
  assertPositiveInt(where, "the number of samples n", n);
  const t = options.temperature ?? 1;
  if (typeof t !== "number" || !Number.isFinite(t) || t < 0) {
    throw new Error(`${where}: temperature must be a finite number >= 0, got ${jsonExcerpt(t)}`);
  }
  return t;
}
