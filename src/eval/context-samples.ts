/**
 * Samples of an image-conditional flow given real contexts: the picture (context |
 * real image | samples) and the agreement metric, the quantitative form of "the
 * samples agree with their context".
 *
 * Agreement: for contexts c_1..c_n of n test images and one sample x_i ~ p(x | c_i)
 * each, with ctx(x) the sample's own context (its pixels floor(256 x), then
 * downsampled or cut in half exactly as the data's contexts are),
 *   matched  = mean_i mean_d |ctx(x_i)_d - c_{i,d}|,
 *   shuffled = mean_{i != j} mean_d |ctx(x_i)_d - c_{j,d}|,
 * the second being the matched figure's expectation when the samples are paired
 * with a random wrong context (every wrong pairing, so no shuffle's luck). Context
 * values are pixel / 255, so both are mean absolute errors on a [0, 1] scale. A flow
 * that ignores its context gives matched ~ shuffled; one that honours it gives
 * matched << shuffled.
 */
import { numpy as np, random, tree } from "@jax-js/jax";
import type { Flow, FlowParams } from "../distributions/flow.js";
import type { ResolvedImageFlowConfig } from "../models/image.js";
import {
  contextPreview,
  contextSize,
  imageContext,
  samplePixels,
  type ImageContextSpec,
} from "../data/image-context.js";
import { composePanels, imageGrid } from "../io/plot.js";
import type { Canvas } from "../io/canvas.js";

/** Images per sampling call (as train-image.ts: a jitted Glow on 100 images peaks near 2 GB). */
const CHUNK = 16;

/** How well samples agree with the contexts they were drawn from (see the module comment). */
export interface ContextAgreement {
  images: number;
  temperature: number;
  /** Mean absolute error between each sample's own context and the context it was drawn from. */
  matchedMAE: number;
  /** The same against the other images' contexts (wrong pairings). */
  shuffledMAE: number;
}

/** The context spec and image shape of an image-conditional flow; throws for any other flow. */
export function contextOf(flow: Flow<any, any>): { spec: ImageContextSpec; shape: number[] } {
  const c = flow.config as ResolvedImageFlowConfig | undefined;
  if (!c?.context)
    throw new Error("this flow is not image-conditional (its config has no context)");
  return { spec: c.context, shape: c.shape };
}

/**
 * One sample for each context row ([count, contextDim]) at `temperature`, in [0, 1]
 * (clamped), [count, H * W * C] row-major. Does not consume `params`.
 */
export async function sampleGivenContexts(
  flow: Flow<any, any>,
  params: FlowParams,
  cond: Float32Array,
  count: number,
  seed: number,
  temperature: number,
): Promise<Float32Array> {
  const k = flow.contextDim;
  const dims = flow.eventShape.reduce((a, d) => a * d, 1);
  if (k === 0 || cond.length !== count * k)
    throw new Error(
      `sampleGivenContexts: expected ${count} context rows of ${k} values, got ${cond.length} values`,
    );
  const out = new Float32Array(count * dims);
  const keys = [...random.split(random.key(seed), Math.ceil(count / CHUNK))];
  for (let at = 0, j = 0; at < count; at += CHUNK, j++) {
    const m = Math.min(CHUNK, count - at);
    const c = np.array(cond.slice(at * k, (at + m) * k)).reshape([m, k]);
    const x = flow.sample(tree.ref(params), keys[j], m, { temperature, cond: c });
    out.set(
      ((await x.data()) as Float32Array).map((v) => Math.min(1, Math.max(0, v))),
      at * dims,
    );
  }
  return out;
}

/** [matched, shuffled] mean absolute errors of sample contexts against given contexts (rows of `size`). */
export function agreementErrors(
  given: Float32Array,
  own: Float32Array,
  count: number,
  size: number,
): [number, number] {
  let matched = 0;
  let wrong = 0;
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < count; j++) {
      let s = 0;
      for (let d = 0; d < size; d++) s += Math.abs(own[i * size + d] - given[j * size + d]);
      if (i === j) matched += s;
      else wrong += s;
    }
  }
  return [matched / (count * size), count > 1 ? wrong / (count * (count - 1) * size) : NaN];
}

/**
 * The agreement of samples with the contexts of the first `count` images
 * (pixels 0..255, [n, H, W, C]). Does not consume `params`.
 */
export async function contextAgreement(
  flow: Flow<any, any>,
  params: FlowParams,
  images: Uint8Array,
  count: number,
  seed: number,
  temperature: number,
): Promise<ContextAgreement> {
  const { spec, shape } = contextOf(flow);
  const dims = shape.reduce((a, d) => a * d, 1);
  const n = Math.min(count, Math.floor(images.length / dims));
  const given = imageContext(images, n, spec, shape);
  const x = await sampleGivenContexts(flow, params, given, n, seed, temperature);
  const own = imageContext(samplePixels(x), n, spec, shape);
  const [matchedMAE, shuffledMAE] = agreementErrors(given, own, n, contextSize(spec, shape));
  return { images: n, temperature, matchedMAE, shuffledMAE };
}

/**
 * A picture of samples given real contexts: one row per image in `picks` (indices
 * into `images`), showing the context (drawn full size), the real image, then
 * `perTemperature` samples at each temperature. Does not consume `params`.
 */
export async function contextGrid(
  flow: Flow<any, any>,
  params: FlowParams,
  images: Uint8Array,
  picks: number[],
  seed: number,
  temperatures: number[],
  perTemperature = 3,
): Promise<Canvas> {
  const { spec, shape } = contextOf(flow);
  const [h, w] = shape;
  const dims = shape.reduce((a, d) => a * d, 1);
  const rows = picks.length;
  const real = new Uint8Array(rows * dims);
  picks.forEach((p, r) => real.set(images.subarray(p * dims, (p + 1) * dims), r * dims));
  const given = imageContext(real, rows, spec, shape);
  const k = contextSize(spec, shape);
  // Each row's context repeated perTemperature times, so one call draws a row's samples side by side.
  const repeated = new Float32Array(rows * perTemperature * k);
  for (let r = 0; r < rows; r++)
    for (let s = 0; s < perTemperature; s++)
      repeated.set(given.subarray(r * k, (r + 1) * k), (r * perTemperature + s) * k);
  const panels = [
    imageGrid(contextPreview(given, rows, spec, shape), rows, h, w, { cols: 1, scale: 2 }),
    imageGrid(
      Float32Array.from(real, (v) => v / 255),
      rows,
      h,
      w,
      { cols: 1, scale: 2 },
    ),
  ];
  for (const [i, t] of temperatures.entries()) {
    const x = await sampleGivenContexts(flow, params, repeated, rows * perTemperature, seed + i, t);
    panels.push(imageGrid(x, rows * perTemperature, h, w, { cols: perTemperature, scale: 2 }));
  }
  return composePanels(panels, 8);
}
