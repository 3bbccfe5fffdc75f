/**
 * Variational dequantisation (Ho et al. 2019, "Flow++", section 3.1) as the first layer of
 * an image flow, with a pixel-conditioned logistic noise flow.
 *
 * Uniform dequantisation feeds the flow b = (x + v) / 256, pixel x in {0..255}, v ~ U[0, 1)^D.
 * This layer maps b to y = (x + u) / 256 with
 *   u = sigmoid(a(x) * logit(v) + c(x)),   a = exp(s), s = B tanh(s_raw / B), B = 3,
 * where s_raw and c come, per pixel and channel, from a ResNet that sees the whole image of
 * pixels x (so a pixel's noise can depend on its neighbours). For each x, v -> u is a monotone
 * bijection of (0, 1), so x = floor(256 b) = floor(256 y) is preserved and the Jacobian is
 * diagonal with
 *   log du/dv = log sigmoid(z) + log sigmoid(-z) + s - log v - log(1 - v),   z = a logit(v) + c.
 * That log-det is exactly -log q(u | x), the density of the noise flow, so the flow's
 * log-density of b is log p(y) - log q(u | x): the variational dequantisation bound, whose
 * expectation over v lower-bounds log P(x) (Theis et al. 2016; Ho et al. 2019). Training
 * maximises it over the noise flow and the model together; the usual bits/dim formula applies
 * unchanged. With a = 1 and c = 0 (the zero-initialised output convolution) u = v: the layer
 * starts as uniform dequantisation.
 *
 * Flow++ uses a coupling flow for q(u | x); this one is elementwise in u (each pixel's noise is
 * one logistic transform whose parameters see all pixels), which is cheaper and already learns
 * where in its cell each pixel's mass should sit. v is kept in [2^-13, 1 - 2^-13] so float32
 * 255 + u stays below 256 and the log-det stays finite (the clamp moves b by < 5e-7).
 */
import { numpy as np, type Array } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { checkInput } from "../core/checks.js";
import { softplus, sumEvent } from "../core/util.js";
import { resnet, type ResnetParams } from "../nn/resnet.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** Options of `variationalDequantization`. */
export interface VariationalDequantizationOptions {
  /** Image shape [H, W, C] of pixels scaled by 1/256. */
  shape: number[];
  /** Hidden channels of the noise flow's ResNet. Default 32. */
  hidden?: number;
  /** Residual blocks of that ResNet. Default 1. */
  blocks?: number;
}

/** Parameters of `variationalDequantization`: the noise flow's ResNet. */
export type VariationalDequantizationParams = { net: ResnetParams };

const LEVELS = 256;
/** 2^-13 ~ 1.2e-4, exact in float32 (jit rounds constants to float32). */
const EDGE = 2 ** -13;
const SCALE_BOUND = 3;

/** Variational dequantisation (Flow++): a learned, pixel-conditioned noise flow within each pixel's cell. */
export function variationalDequantization(
  options: VariationalDequantizationOptions,
): Bijector<VariationalDequantizationParams> {
  const where = "variationalDequantization";
  const { shape } = options;
  if (
    !globalThis.Array.isArray(shape) ||
    shape.length !== 3 ||
    !shape.every((d) => Number.isInteger(d) && d > 0)
  ) {
    throw new Error(
      `${where}: shape must be [height, width, channels] of positive integers, got ${jsonExcerpt(shape)}`,
    );
  }
  const channels = shape[2];
  const net = resnet({
    inChannels: channels,
    outChannels: 2 * channels,
    hidden: options.hidden ?? 32,
    blocks: options.blocks ?? 1,
  });

  /** Pixel x (as floats) and the position in its cell, clamped away from the edges. Consumes `b`. */
  const cell = (b: Array): [Array, Array] => {
    const scaled = b.mul(LEVELS);
    // No clamp on the pixel: the map stays a bijection of the whole real line, cell by cell, so a
    // flow's samples slightly outside [0, 1) invert exactly too.
    const pixel = np.floor(scaled.ref);
    const within = np.clip(scaled.sub(pixel.ref), EDGE, 1 - EDGE);
    return [pixel, within];
  };

  /** Log-scale s and shift c of each pixel's logistic transform. Consumes both. */
  const transform = (params: VariationalDequantizationParams, pixel: Array): [Array, Array] => {
    const h = net.apply(params.net, pixel.div(LEVELS - 1).sub(0.5));
    const raw = h.ref.slice([], [], [], [0, channels]);
    const shift = h.slice([], [], [], [channels, 2 * channels]);
    return [np.tanh(raw.div(SCALE_BOUND)).mul(SCALE_BOUND), shift];
  };

  const logit = (p: Array) => np.log(p.ref).sub(np.log1p(p.neg()));
  // sigmoid(z) = exp(-softplus(-z)): stable, and np.reciprocal's gradient leaks a buffer in jax-js 0.1.25.
  const sigmoid = (z: Array) => np.exp(softplus(z.neg()).neg());

  /** log du/dv at v (noise), z = a logit(v) + c, s = log a. Consumes all three. */
  const logDerivative = (z: Array, s: Array, v: Array): Array =>
    sumEvent(
      softplus(z.ref.neg()).neg().sub(softplus(z)).add(s).sub(np.log(v.ref)).sub(np.log1p(v.neg())),
    );

  return {
    kind: where,
    eventShape: shape,
    contextDim: 0,
    init(key, opts = {}) {
      opts.x?.dispose();
      opts.cond?.dispose();
      return { net: net.init(key, opts.dtype) };
    },
    forward(params, b, cond) {
      checkInput(where, shape, 0, b, cond);
      cond?.dispose();
      const [pixel, v] = cell(b);
      const [s, c] = transform(params, pixel.ref);
      const z = np.exp(s.ref).mul(logit(v.ref)).add(c);
      const u = np.clip(sigmoid(z.ref), EDGE, 1 - EDGE);
      return [pixel.add(u).div(LEVELS), logDerivative(z, s, v)];
    },
    inverse(params, y, cond) {
      checkInput(where, shape, 0, y, cond);
      cond?.dispose();
      const [pixel, u] = cell(y);
      const [s, c] = transform(params, pixel.ref);
      const z = logit(u);
      const v = np.clip(sigmoid(z.ref.sub(c).mul(np.exp(s.ref.neg()))), EDGE, 1 - EDGE);
      return [pixel.add(v.ref).div(LEVELS), logDerivative(z, s, v).neg()];
    },
  };
}
