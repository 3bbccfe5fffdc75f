/**
 * Bits per dimension of 8-bit images under an image flow, one figure per image:
 * the pixels are scaled to the 1/256 grid in [0, 1), dequantised once with seeded
 * uniform noise, and scored in fixed chunks. bits/dim = (NLL / D + ln 256) / ln 2,
 * the discrete 256-level convention of RealNVP and Glow (see train/losses.ts).
 */
import { makeRng } from "../core/prng.js";
import type { Flow, FlowParams } from "../distributions/flow.js";
import { logProbRows } from "./log-prob-rows.js";
import { IMAGE_CHUNK } from "./chunk-rows.js";

export { IMAGE_CHUNK } from "./chunk-rows.js";

/** Bits per dimension of the discrete pixels from the NLL (nats) of x = (pixel + u) / 256. */
export const nllBitsPerDim = (nll: number, dims: number) => (nll / dims + Math.log(256)) / Math.LN2;

/** Pixels [from, from + count) of [n, D] (0..255) to floats in [0, 1) on the 1/256 grid. */
export function scaledPixels(
  pixels: Uint8Array,
  from: number,
  count: number,
  dims: number,
): Float32Array {
  const out = new Float32Array(count * dims);
  for (let i = 0; i < out.length; i++) out[i] = pixels[from * dims + i] / 256;
  return out;
}

/** x + u / 256 with u ~ U[0, 1) from a seeded generator (fixed noise for evaluation). */
export function dequantizeOnce(x: Float32Array, seed: number): Float32Array {
  const rng = makeRng(seed);
  return x.map((v) => v + rng.uniform() / 256);
}

/** One-hot rows [count, classes] of labels[from, from + count). */
export function oneHotRows(
  labels: Uint8Array,
  from: number,
  count: number,
  classes: number,
): Float32Array {
  const out = new Float32Array(count * classes);
  for (let i = 0; i < count; i++) out[i * classes + labels[from + i]] = 1;
  return out;
}

/**
 * Bits/dim of each of the first `count` images of `pixels` ([n, D], 0..255). A conditional
 * flow is given `cond`: one context row per image (a one-hot label, a context image), and the
 * figure is then -log2 p(x | context) per dimension. Does not consume `params`.
 */
export async function imageBitsPerDim(
  flow: Flow<any, any>,
  params: FlowParams,
  pixels: Uint8Array,
  count: number,
  seed: number,
  cond?: Float32Array,
): Promise<Float64Array> {
  const dims = flow.eventShape.reduce((a, d) => a * d, 1);
  const n = Math.min(count, Math.floor(pixels.length / dims));
  if (flow.contextDim > 0 && cond?.length !== n * flow.contextDim) {
    throw new Error(
      `imageBitsPerDim: this flow is conditional and needs ${flow.contextDim} context values per image`,
    );
  }
  const x = dequantizeOnce(scaledPixels(pixels, 0, n, dims), seed);
  const logp = await logProbRows(flow, params, x, {
    batch: Math.min(IMAGE_CHUNK, n),
    cond: flow.contextDim > 0 ? cond : undefined,
  });
  return Float64Array.from(logp, (v) => nllBitsPerDim(-v, dims));
}
