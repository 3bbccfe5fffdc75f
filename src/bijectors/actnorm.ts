/**
 * Activation normalisation (Kingma & Dhariwal 2018, "Glow", §3.1): a per-channel
 * affine map whose parameters are initialised from data.
 *   forward: y = (x - loc) * exp(logScale),   per channel (the last axis),
 *   log|det J| = (positions per channel) * sum(logScale),
 * where positions = H * W for an [H, W, C] event and 1 for a [D] event (then
 * every coordinate is its own channel).
 *
 * Data-dependent initialisation: `init(key, { x })` sets loc = mean and
 * logScale = -log(std + eps) per channel over the batch and all spatial
 * positions, so the initial output has zero mean and unit variance per channel;
 * eps (default 1e-6, as in Glow) keeps a constant channel finite. Without `x`
 * the layer starts as the identity. Afterwards loc and logScale are ordinary
 * trainable parameters.
 */
import { numpy as np, type Array, type DType } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { checkInput, assertPositiveInt } from "../core/checks.js";

/** Parameters of `actNorm`: per-channel location and log-scale. */
export type ActNormParams = { loc: Array; logScale: Array };

/** Options of `actNorm`. */
export interface ActNormOptions {
  /** Added to the standard deviation in the data-dependent init. Default 1e-6. */
  eps?: number;
}

/** Activation normalisation (Glow): a per-channel affine map initialised from the first batch's statistics. */
export function actNorm(
  eventShape: number[],
  options: ActNormOptions = {},
): Bijector<ActNormParams> {
  const where = "actNorm";
  if (eventShape.length === 0) throw new Error(`${where}: eventShape must have at least one axis`);
  eventShape.forEach((d) => assertPositiveInt(where, "each eventShape entry", d));
  const eps = options.eps ?? 1e-6;
  if (!(eps >= 0)) throw new Error(`${where}: eps must be >= 0, got ${eps}`);
  const channels = eventShape[eventShape.length - 1];
  const positions = eventShape.slice(0, -1).reduce((a, d) => a * d, 1);
  // Typed constant: under jit a plain JS number is rounded to float32 even in float64 code.
  const scalar = (value: number, dtype: DType) => np.full([], value, { dtype });
  const total = (logScale: Array, x: Array) =>
    np.ones([x.shape[0]], { dtype: x.dtype }).mul(logScale.sum().mul(positions));
  return {
    kind: "actNorm",
    eventShape,
    contextDim: 0,
    init(key, initOptions = {}) {
      key.dispose();
      initOptions.cond?.dispose();
      const dtype = initOptions.dtype ?? np.float32;
      const x = initOptions.x;
      if (x === undefined) {
        return { loc: np.zeros([channels], { dtype }), logScale: np.zeros([channels], { dtype }) };
      }
      try {
        checkInput(`${where}.init`, eventShape, 0, x);
      } catch (e) {
        x.dispose();
        throw e;
      }
      // Statistics over the batch and every position: all axes but the channel axis.
      const flat = x.astype(dtype).reshape([-1, channels]);
      const mean = flat.ref.mean(0);
      const variance = np.square(flat.sub(mean.ref)).mean(0);
      const logScale = np.log(np.sqrt(variance).add(scalar(eps, dtype))).neg();
      return { loc: mean, logScale };
    },
    forward({ loc, logScale }, x, cond) {
      checkInput(where, eventShape, 0, x);
      cond?.dispose();
      const logDet = total(logScale.ref, x);
      return [x.sub(loc).mul(np.exp(logScale)), logDet];
    },
    inverse({ loc, logScale }, y, cond) {
      checkInput(where, eventShape, 0, y);
      cond?.dispose();
      const logDet = total(logScale.ref, y).neg();
      return [y.mul(np.exp(logScale.neg())).add(loc), logDet];
    },
  };
}
