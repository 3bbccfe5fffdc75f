/**
 * Coupling masks as plain JS boolean lists. An entry `true` means "this
 * coordinate is passed through unchanged and conditions the transform"; `false`
 * means "this coordinate is transformed". Both parts must be non-empty.
 *
 * Masks of images are flat, in row-major order over the event shape [H, W, C],
 * so they index a flattened event directly.
 */
import { numpy as np, type Array } from "@jax-js/jax";
import { assertPositiveInt } from "../core/checks.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** A coupling mask over a flat event: `true` passes through and conditions, `false` is transformed. */
export type Mask = boolean[];

function checkParity(where: string, parity: unknown): asserts parity is 0 | 1 {
  if (parity !== 0 && parity !== 1)
    throw new Error(`${where}: parity must be 0 or 1, got ${jsonExcerpt(parity)}`);
}

/**
 * Throw unless `mask` is a list of `dim` booleans with at least one `true`
 * (conditioning) and one `false` (transformed) entry.
 */
export function validateMask(where: string, mask: unknown, dim: number): asserts mask is Mask {
  if (!globalThis.Array.isArray(mask) || !mask.every((m) => typeof m === "boolean")) {
    throw new Error(`${where}: mask must be a list of booleans`);
  }
  if (mask.length !== dim)
    throw new Error(`${where}: mask has ${mask.length} entries, expected ${dim}`);
  if (!mask.includes(true))
    throw new Error(`${where}: mask has no pass-through (true) entry: nothing to condition on`);
  if (!mask.includes(false))
    throw new Error(`${where}: mask has no transformed (false) entry: the layer would do nothing`);
}

/**
 * The first ceil(dim / 2) coordinates pass through, the rest are transformed;
 * `flip` swaps the roles.
 */
export function halfMask(dim: number, flip = false): Mask {
  assertPositiveInt("halfMask", "dim", dim);
  const k = Math.ceil(dim / 2);
  const mask = globalThis.Array.from({ length: dim }, (_, i) => i < k !== flip);
  validateMask("halfMask", mask, dim);
  return mask;
}

/** Coordinate i passes through when i % 2 === parity. */
export function alternatingMask(dim: number, parity: 0 | 1): Mask {
  assertPositiveInt("alternatingMask", "dim", dim);
  checkParity("alternatingMask", parity);
  const mask = globalThis.Array.from({ length: dim }, (_, i) => i % 2 === parity);
  validateMask("alternatingMask", mask, dim);
  return mask;
}

/**
 * RealNVP's spatial checkerboard: pixel (i, j) passes through when
 * (i + j) % 2 === parity. Returned flat in row-major order over
 * [height, width, channels] (every channel of a pixel shares its entry), so
 * it masks a flattened [H, W, C] event; `channels` defaults to 1 (an [H, W] mask).
 */
export function checkerboardMask(height: number, width: number, parity: 0 | 1, channels = 1): Mask {
  const where = "checkerboardMask";
  assertPositiveInt(where, "height", height);
  assertPositiveInt(where, "width", width);
  assertPositiveInt(where, "channels", channels);
  checkParity(where, parity);
  const mask: Mask = [];
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      for (let c = 0; c < channels; c++) mask.push((i + j) % 2 === parity);
    }
  }
  validateMask(where, mask, height * width * channels);
  return mask;
}

/**
 * RealNVP's channel-wise mask: with parity 0 the first ceil(C / 2) channels pass
 * through, with parity 1 the others do. `pixels` (default 1) repeats the
 * pattern for each of H * W pixels, giving a flat mask of a flattened [H, W, C]
 * event.
 */
export function channelMask(channels: number, parity: 0 | 1, pixels = 1): Mask {
  const where = "channelMask";
  assertPositiveInt(where, "channels", channels);
  assertPositiveInt(where, "pixels", pixels);
  checkParity(where, parity);
  const k = Math.ceil(channels / 2);
  const one = globalThis.Array.from({ length: channels }, (_, c) => c < k === (parity === 0));
  const mask = globalThis.Array.from({ length: pixels }, () => one).flat();
  validateMask(where, mask, channels * pixels);
  return mask;
}

/** Gathers that split an input [batch, dim] by a mask and put it back together. */
export interface MaskSplit {
  /** Indices of the pass-through (true) and transformed (false) coordinates. */
  readonly passIndices: number[];
  readonly transformIndices: number[];
  /** x [batch, dim] -> [x_pass, x_transform]. Consumes `x`. */
  split(x: Array): [Array, Array];
  /** Inverse of `split`. Consumes both. */
  merge(pass: Array, transformed: Array): Array;
}

/**
 * Build the split/merge pair for a validated mask. Gathers copy values, so the
 * pass-through coordinates come out bit-for-bit; contiguous parts (half masks)
 * use slices and a plain concatenation instead of gathers.
 */
export function maskSplit(mask: Mask): MaskSplit {
  const dim = mask.length;
  const passIndices = mask.flatMap((m, i) => (m ? [i] : []));
  const transformIndices = mask.flatMap((m, i) => (m ? [] : [i]));
  const contiguous = (idx: number[]) => idx.every((v, k) => v === idx[0] + k);
  const indexArray = (idx: number[], like: Array) =>
    np.array(idx, { dtype: np.int32, device: like.device });
  const pick = (x: Array, idx: number[]): Array =>
    contiguous(idx)
      ? x.slice([], [idx[0], idx[0] + idx.length])
      : np.take(x, indexArray(idx, x), 1);

  // Where each coordinate lands in [pass, transformed]; merge undoes that permutation.
  const order = [...passIndices, ...transformIndices];
  const position = new globalThis.Array<number>(dim);
  order.forEach((coord, k) => (position[coord] = k));
  const identity = position.every((p, i) => p === i);
  const swapped = [...transformIndices, ...passIndices].every((coord, i) => coord === i);

  return {
    passIndices,
    transformIndices,
    split(x) {
      return [pick(x.ref, passIndices), pick(x, transformIndices)];
    },
    merge(pass, transformed) {
      if (identity) return np.concatenate([pass, transformed], 1);
      if (swapped) return np.concatenate([transformed, pass], 1);
      const joined = np.concatenate([pass, transformed], 1);
      return np.take(joined, indexArray(position, joined), 1);
    },
  };
}
