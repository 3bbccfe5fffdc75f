/**
 * Fixed permutations of the last (feature / channel) axis:
 *   forward: y[..., i] = x[..., perm[i]],   inverse: x[..., perm[i]] = y[..., i],
 *   log|det J| = 0 (a permutation matrix has determinant ±1).
 * Placed between coupling layers so every coordinate gets transformed
 * (Dinh et al. 2016, "Density estimation using Real NVP"; Kingma & Dhariwal
 * 2018, "Glow", where the reverse and the random shuffle are the baselines of
 * the 1x1 convolution).
 *
 * The permutation is configuration (plain JSON), not a parameter: there is
 * nothing to train, and `randomPermutation` is reproducible from its seed.
 */
import { numpy as np, type Array } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { assertPositiveInt } from "../core/checks.js";
import { mulberry32 } from "../core/prng.js";
import { parameterFree } from "./parameter-free.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** No trainable parameters. */
export type PermuteParams = Record<string, never>;

/** Options of `permute`. */
export interface PermuteOptions {
  /**
   * Event shape, for permuting the channels of images: the last axis must have
   * perm.length entries. Default [perm.length].
   */
  eventShape?: number[];
}

function validatePermutation(where: string, perm: unknown): asserts perm is number[] {
  if (!globalThis.Array.isArray(perm) || perm.length === 0) {
    throw new Error(`${where}: perm must be a non-empty list of indices, got ${jsonExcerpt(perm)}`);
  }
  const seen = new Set<number>();
  for (const i of perm) {
    if (!Number.isInteger(i) || i < 0 || i >= perm.length || seen.has(i)) {
      throw new Error(
        `${where}: perm must contain each of 0..${perm.length - 1} exactly once, got ${jsonExcerpt(perm)}`,
      );
    }
    seen.add(i);
  }
}

/** Permute the last axis by `perm` (a permutation of 0..n-1). */
export function permute(perm: number[], options: PermuteOptions = {}): Bijector<PermuteParams> {
  const where = "permute";
  validatePermutation(where, perm);
  const n = perm.length;
  const eventShape = options.eventShape ?? [n];
  if (eventShape.length === 0 || eventShape[eventShape.length - 1] !== n) {
    throw new Error(
      `${where}: the last axis of eventShape ${JSON.stringify(eventShape)} must have ${n} entries`,
    );
  }
  const perm0 = [...perm];
  const inv = new globalThis.Array<number>(n);
  perm0.forEach((p, i) => (inv[p] = i));
  const apply = (x: Array, order: number[]): [Array, Array] => {
    // The index array is created per call: under jit it becomes a constant of the trace.
    const logDet = np.zeros([x.shape[0]], { dtype: x.dtype });
    return [np.take(x, np.array(order, { dtype: np.int32 }), -1), logDet];
  };
  return parameterFree({
    kind: "permute",
    eventShape,
    forward: (x) => apply(x, perm0),
    inverse: (y) => apply(y, inv),
  });
}

/** Reverse the order of the last axis (RealNVP / Glow's "reverse"). */
export function reversePermutation(
  dim: number,
  options: PermuteOptions = {},
): Bijector<PermuteParams> {
  assertPositiveInt("reversePermutation", "dim", dim);
  return permute(
    globalThis.Array.from({ length: dim }, (_, i) => dim - 1 - i),
    options,
  );
}

/**
 * A uniformly random permutation of the last axis, drawn by Fisher-Yates from
 * mulberry32(seed): the same seed gives the same permutation everywhere.
 */
export function randomPermutation(
  dim: number,
  seed: number,
  options: PermuteOptions = {},
): Bijector<PermuteParams> {
  assertPositiveInt("randomPermutation", "dim", dim);
  if (!Number.isInteger(seed))
    throw new Error(`randomPermutation: seed must be an integer, got ${jsonExcerpt(seed)}`);
  const rand = mulberry32(seed);
  const perm = globalThis.Array.from({ length: dim }, (_, i) => i);
  for (let i = dim - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  return permute(perm, options);
}
