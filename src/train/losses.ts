/**
 * Training objectives for flows. Each consumes its arrays and returns a scalar.
 *
 * Bits per dimension for 8-bit images (the convention of RealNVP, Glow and
 * their successors). Pixels x in {0, ..., 255}^D are dequantised with uniform
 * noise and scaled to an interval of width w:  y = (x + u) / 256 * w + b,
 * u ~ U[0, 1)^D. A density p(y) is then a density of z = x + u on [0, 256)^D
 * via p_z(z) = p(y) * (w / 256)^D, and the discrete model P(x) = ∫ p_z(x + u) du
 * satisfies -log P(x) <= E_u[-log p_z(x + u)] (Theis et al. 2016). So
 *   bits/dim = (NLL_y + D * ln(256 / w)) / (D * ln 2)
 *            = NLL_y / (D ln 2) + log2(256 / w),
 * with NLL_y = -log p(y) in nats averaged over the batch: +8 bits for data in
 * [0, 1] (w = 1), +7 for [-1, 1] (w = 2). `dequantOffset(levels, width)` gives
 * the per-dimension term ln(levels / width) in nats. Preprocessing bijections
 * applied before the flow (logit, standardising) belong in `logProb` as their
 * log-dets; only the discretisation scale goes in the offset.
 */
import type { Array } from "@jax-js/jax";
import { jsonExcerpt } from "../core/excerpt.js";

/** Mean negative log-likelihood in nats: -mean(logProb). Consumes `logProb` ([batch]). */
export function nll(logProb: Array): Array {
  return logProb.mean().neg();
}

/**
 * Per-dimension nats that discretisation adds: ln(levels / width), for data
 * (x + u) / levels * width + b with x in {0, ..., levels - 1}. Defaults: 8-bit
 * data scaled to [0, 1], i.e. ln 256.
 */
export function dequantOffset(levels = 256, width = 1): number {
  if (!(levels > 0) || !(width > 0)) {
    throw new Error(`dequantOffset: levels and width must be positive, got ${levels} and ${width}`);
  }
  return Math.log(levels / width);
}

/** Options of `bitsPerDim`. */
export interface BitsPerDimOptions {
  /**
   * Nats per dimension added to the NLL for the discretisation scale; see
   * `dequantOffset` (ln 256 for 8-bit data scaled to [0, 1]). Default 0: `logProb`
   * is already a density on the integer scale (x + u).
   */
  dequantOffset?: number;
}

/**
 * Bits per dimension: (mean NLL in nats + dims * dequantOffset) / (dims * ln 2).
 * `dims` is the number of dimensions of one sample (e.g. H * W * C). Consumes `logProb`.
 */
export function bitsPerDim(logProb: Array, dims: number, options: BitsPerDimOptions = {}): Array {
  const offset = options.dequantOffset ?? 0;
  if (!Number.isInteger(dims) || dims < 1) {
    logProb.dispose();
    throw new Error(`bitsPerDim: dims must be a positive integer, got ${jsonExcerpt(dims)}`);
  }
  if (!Number.isFinite(offset)) {
    logProb.dispose();
    throw new Error(
      `bitsPerDim: dequantOffset must be a finite number, got ${jsonExcerpt(options.dequantOffset)}`,
    );
  }
  return nll(logProb)
    .add(dims * offset)
    .div(dims * Math.LN2);
}

/**
 * Reverse KL to an unnormalised target, up to the target's log-normaliser:
 *   KL(q || p) + log Z = E_q[log q(x) - log p~(x)],  estimated by the sample mean.
 * Pass the `[samples, logQ]` of a flow's `sampleAndLogProb` (reparameterised, so
 * gradients flow through the samples) and `targetLogDensity(x)` -> [batch]
 * (which consumes `x`). Consumes both arrays.
 */
export function reverseKL(
  samplesAndLogProb: [Array, Array],
  targetLogDensity: (x: Array) => Array,
): Array {
  const [x, logQ] = samplesAndLogProb;
  const logP = targetLogDensity(x);
  if (logP.ndim !== 1 || logP.shape[0] !== logQ.shape[0]) {
    const shapes = `[${logP.shape.join(", ")}] vs [${logQ.shape.join(", ")}]`;
    logP.dispose();
    logQ.dispose();
    throw new Error(
      `reverseKL: targetLogDensity must return one value per sample, shapes ${shapes}`,
    );
  }
  return logQ.sub(logP).mean();
}
