/**
 * A class-conditional image flow read the other way: log p(x | c) for every class c, the
 * marginal density p(x) = (1/K) sum_c p(x | c) under a uniform class prior (the unconditional
 * likelihood that out-of-distribution scores need), and the posterior p(c | x) by Bayes' rule.
 * Each image is dequantised once (seeded) and the same noisy image is scored under every class,
 * so the K figures differ only by the class.
 */
import type { Flow, FlowParams } from "../distributions/flow.js";
import { logProbRows } from "./log-prob-rows.js";
import { IMAGE_CHUNK } from "./chunk-rows.js";
import { dequantizeOnce, nllBitsPerDim, scaledPixels } from "./image-bits.js";

/** What `classScores` gives per image: log p(x | c) for each class, bits/dim under the class mixture, p(c | x). */
export interface ClassScores {
  classes: number;
  /** log p(x | c) in nats, [images, classes] row-major. */
  logLik: Float64Array;
  /** -log2 p(x) / D of the discrete pixels, with p(x) the uniform mixture over classes. */
  bitsPerDim: Float64Array;
  /** p(c | x), [images, classes] row-major; each row sums to 1. */
  posterior: Float64Array;
}

/** Scores of the first `count` images of `pixels` ([n, D], 0..255). Does not consume `params`. */
export async function classScores(
  flow: Flow<any, any>,
  params: FlowParams,
  pixels: Uint8Array,
  count: number,
  seed: number,
): Promise<ClassScores> {
  const classes = flow.contextDim;
  if (classes < 2)
    throw new Error(
      `classScores: needs a class-conditional flow (a one-hot context of 2 or more classes); this flow's context has ${classes} values`,
    );
  const dims = flow.eventShape.reduce((a, d) => a * d, 1);
  const n = Math.min(count, Math.floor(pixels.length / dims));
  if (n < 1)
    throw new Error(`classScores: no whole image of ${dims} pixels in ${pixels.length} bytes`);
  const x = dequantizeOnce(scaledPixels(pixels, 0, n, dims), seed);
  const rows = new Float32Array(n * classes * dims);
  const cond = new Float32Array(n * classes * classes);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < classes; c++) {
      rows.set(x.subarray(i * dims, (i + 1) * dims), (i * classes + c) * dims);
      cond[(i * classes + c) * classes + c] = 1;
    }
  }
  const logLik = await logProbRows(flow, params, rows, {
    batch: Math.min(IMAGE_CHUNK, n * classes),
    cond,
  });
  const bitsPerDim = new Float64Array(n);
  const posterior = new Float64Array(n * classes);
  for (let i = 0; i < n; i++) {
    const row = logLik.subarray(i * classes, (i + 1) * classes);
    const top = row.reduce((m, v) => Math.max(m, v), -Infinity);
    if (!Number.isFinite(top)) {
      // Outside the model's support under every class: no density, no evidence for any class.
      bitsPerDim[i] = Infinity;
      posterior.fill(1 / classes, i * classes, (i + 1) * classes);
      continue;
    }
    let sum = 0;
    for (const v of row) sum += Math.exp(v - top);
    const logMarginal = top + Math.log(sum) - Math.log(classes);
    bitsPerDim[i] = nllBitsPerDim(-logMarginal, dims);
    for (let c = 0; c < classes; c++) posterior[i * classes + c] = Math.exp(row[c] - top) / sum;
  }
  return { classes, logLik, bitsPerDim, posterior };
}
