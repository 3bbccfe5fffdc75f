/**
 * Affine coupling for images [H, W, C] (NHWC) with a pluggable conditioner
 * (RealNVP; Dinh, Sohl-Dickstein & Bengio 2016, arXiv:1605.08803, §3.4-3.5;
 * Glow's affine coupling, Kingma & Dhariwal 2018, §3.3).
 *
 * mask "checkerboard": m[i, j] = 1 when (i + j) % 2 === parity (every channel
 *   of a pixel shares it). The conditioner sees x * m and returns
 *   [raw, t] ([B, H, W, 2C]: raw in channels [0, C), t in [C, 2C)); with
 *   s = B * tanh(raw / B) (soft clamp, B = scaleBound),
 *     forward: y = m * x + (1 - m) * (x * exp(s) + t),   log|det J| = sum((1 - m) * s),
 *     inverse: x = m * y + (1 - m) * (y - t) * exp(-s);
 *   computed as y = x * exp(s') + t' with s' = (1 - m) s, t' = (1 - m) t, so
 *   the pass-through pixels come out bit-for-bit (x * 1 + 0).
 * mask "channel": parity 0 passes the first ceil(C / 2) channels through (as
 *   `channelMask`), parity 1 the others. The conditioner sees the k
 *   pass-through channels [B, H, W, k] and returns [raw, t] for the C - k
 *   transformed ones ([B, H, W, 2(C - k)]); y_b = x_b * exp(s) + t.
 * additive: true drops the scale (NICE): the conditioner returns only t
 *   (C, resp. C - k channels) and log|det J| = 0.
 *
 * The conditioner's output layer must start at zero so the layer starts as the
 * identity. A conditional layer (conditioner.contextDim > 0) hands the context
 * [B, contextDim] to the conditioner, which broadcasts it over the pixels.
 * Use `imageCouplingChannels` to size a conditioner for given options.
 */
import { numpy as np, type Array, type DType } from "@jax-js/jax";
import type { Bijector, Params } from "../core/types.js";
import { assertPositiveInt, checkInput } from "../core/checks.js";
import { sumEvent } from "../core/util.js";
import { jsonExcerpt } from "../core/excerpt.js";

/**
 * A network on images: [B, H, W, inChannels] (and an optional context
 * [B, contextDim]) -> [B, H, W, outChannels]. Its output layer starts at zero.
 * `apply` consumes its arguments (params, x, cond).
 */
export interface ImageConditioner<P extends Params = Params> {
  /** Context width the network takes; 0 or absent for none. */
  readonly contextDim?: number;
  /** Fresh parameters, output layer at zero. */
  init(key: Array, dtype?: DType): P;
  /** [B, H, W, outChannels] from x [B, H, W, inChannels] (and the context). */
  apply(params: P, x: Array, cond?: Array): Array;
}

/** Which pixels a coupling passes through: a checkerboard of positions, or half the channels. */
export type ImageCouplingMask = "checkerboard" | "channel";

/** Options of `imageAffineCoupling`. */
export interface ImageAffineCouplingOptions {
  /** Event shape [H, W, C]. */
  shape: number[];
  mask: ImageCouplingMask;
  parity: 0 | 1;
  conditioner: ImageConditioner<any>;
  /** Bound B on |log-scale|; default 3. Ignored when additive. */
  scaleBound?: number;
  /** Shift only (NICE-style, volume preserving). Default false. */
  additive?: boolean;
}

/** Parameters of `imageAffineCoupling`: the conditioner's. */
export type ImageCouplingParams = { net: Params };

/** Channel counts the conditioner must map: [B, H, W, inChannels] -> [B, H, W, outChannels]. */
export function imageCouplingChannels(options: {
  shape: number[];
  mask: ImageCouplingMask;
  parity: 0 | 1;
  additive?: boolean;
}): { inChannels: number; outChannels: number } {
  const c = options.shape[2];
  // Checkerboard: the conditioner sees all channels (masked) and drives all of them.
  const [inChannels, transformed] =
    options.mask === "checkerboard" ? [c, c] : passSplit(c, options.parity);
  return { inChannels, outChannels: options.additive ? transformed : 2 * transformed };
}

/** [pass, transformed] channel counts of a channel mask (parity 0 passes the first ceil(C / 2)). */
function passSplit(c: number, parity: 0 | 1): [number, number] {
  const first = Math.ceil(c / 2);
  return parity === 0 ? [first, c - first] : [c - first, first];
}

/** Affine (or additive) coupling for [H, W, C] images with a checkerboard or channel mask and a pluggable conditioner. */
export function imageAffineCoupling(
  options: ImageAffineCouplingOptions,
): Bijector<ImageCouplingParams> {
  const where = "imageAffineCoupling";
  const { shape, mask, parity, conditioner } = options;
  const additive = options.additive ?? false;
  const bound = options.scaleBound ?? 3;
  if (!globalThis.Array.isArray(shape) || shape.length !== 3) {
    throw new Error(
      `${where}: shape must be an image event shape [H, W, C], got ${jsonExcerpt(shape)}`,
    );
  }
  shape.forEach((d) => assertPositiveInt(where, "each shape entry", d));
  const [H, W, C] = shape;
  if (mask !== "checkerboard" && mask !== "channel") {
    throw new Error(`${where}: mask must be "checkerboard" or "channel", got ${jsonExcerpt(mask)}`);
  }
  if (parity !== 0 && parity !== 1)
    throw new Error(`${where}: parity must be 0 or 1, got ${jsonExcerpt(parity)}`);
  if (mask === "checkerboard" && H * W < 2)
    throw new Error(`${where}: a checkerboard needs at least 2 pixels, got [${shape.join(", ")}]`);
  if (mask === "channel" && C < 2)
    throw new Error(
      `${where}: a channel mask needs at least 2 channels, got [${shape.join(", ")}]`,
    );
  if (!(typeof bound === "number" && bound > 0 && Number.isFinite(bound))) {
    throw new Error(
      `${where}: scaleBound must be a positive finite number, got ${jsonExcerpt(bound)}`,
    );
  }
  if (
    !conditioner ||
    typeof conditioner.init !== "function" ||
    typeof conditioner.apply !== "function"
  ) {
    throw new Error(`${where}: conditioner must have init(key, dtype) and apply(params, x, cond?)`);
  }
  const contextDim = conditioner.contextDim ?? 0;
  const { outChannels } = imageCouplingChannels({ shape, mask, parity, additive });
  const transformed = additive ? outChannels : outChannels / 2;
  const [nPass] = passSplit(C, parity);
  const eventShape = [H, W, C];
  // Checkerboard of pass-through pixels, [H, W, 1] (broadcast over channels).
  const board: number[] = [];
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++) board.push((i + j) % 2 === parity ? 1 : 0);

  /** Run the conditioner; returns [s, t] for the transformed part (s = null when additive). */
  const condition = (
    params: ImageCouplingParams,
    input: Array,
    cond?: Array,
  ): [Array | null, Array] => {
    const batch = input.shape[0];
    // Unconditional layers dispose cond here; conditioners never see it.
    if (contextDim === 0) cond?.dispose();
    const h =
      contextDim > 0
        ? conditioner.apply(params.net, input, cond)
        : conditioner.apply(params.net, input);
    const want = [batch, H, W, outChannels];
    if (h.ndim !== 4 || h.shape.some((d, i) => d !== want[i])) {
      const got = h.shape;
      h.dispose();
      throw new Error(
        `${where}: the conditioner returned shape [${got.join(", ")}], expected [${want.join(", ")}]`,
      );
    }
    if (additive) return [null, h];
    const b = np.array(bound, { dtype: h.dtype, device: h.device }); // typed: jit rounds JS scalars to float32
    const raw = h.ref.slice([], [], [], [0, transformed]);
    const t = h.slice([], [], [], [transformed, 2 * transformed]);
    return [np.tanh(raw.div(b.ref)).mul(b), t];
  };

  /** Shared by both directions; sign +1 = forward. */
  const run = (
    params: ImageCouplingParams,
    x: Array,
    cond: Array | undefined,
    sign: 1 | -1,
  ): [Array, Array] => {
    const batch = x.shape[0];
    const dtype = x.dtype;
    if (mask === "checkerboard") {
      const m = np.array(board, { dtype, device: x.device }).reshape([H, W, 1]);
      const keep = np
        .array(
          board.map((v) => 1 - v),
          { dtype, device: x.device },
        )
        .reshape([H, W, 1]);
      let [s, t] = condition(params, x.ref.mul(m), cond);
      t = t.mul(keep.ref);
      if (s === null) {
        keep.dispose();
        return [sign > 0 ? x.add(t) : x.sub(t), np.zeros([batch], { dtype })];
      }
      s = s.mul(keep);
      if (sign > 0) return [x.mul(np.exp(s.ref)).add(t), sumEvent(s)];
      return [x.sub(t).mul(np.exp(s.ref.neg())), sumEvent(s).neg()];
    }
    // Channel mask: parity 0 passes [0, nPass), parity 1 passes [C - nPass, C).
    const passRange: [number, number] = parity === 0 ? [0, nPass] : [C - nPass, C];
    const otherRange: [number, number] = parity === 0 ? [nPass, C] : [0, C - nPass];
    const xa = x.ref.slice([], [], [], passRange);
    const xb = x.slice([], [], [], otherRange);
    const [s, t] = condition(params, xa.ref, cond);
    let yb: Array;
    let logDet: Array;
    if (s === null) {
      yb = sign > 0 ? xb.add(t) : xb.sub(t);
      logDet = np.zeros([batch], { dtype });
    } else if (sign > 0) {
      yb = xb.mul(np.exp(s.ref)).add(t);
      logDet = sumEvent(s);
    } else {
      yb = xb.sub(t).mul(np.exp(s.ref.neg()));
      logDet = sumEvent(s).neg();
    }
    const y = parity === 0 ? np.concatenate([xa, yb], 3) : np.concatenate([yb, xa], 3);
    return [y, logDet];
  };

  return {
    kind: additive ? "imageAdditiveCoupling" : "imageAffineCoupling",
    eventShape,
    contextDim,
    init(key, initOptions = {}) {
      initOptions.x?.dispose();
      initOptions.cond?.dispose();
      return { net: conditioner.init(key, initOptions.dtype ?? np.float32) };
    },
    forward(params, x, cond) {
      checkInput(where, eventShape, contextDim, x, cond);
      return run(params, x, cond, 1);
    },
    inverse(params, y, cond) {
      checkInput(`${where}.inverse`, eventShape, contextDim, y, cond);
      return run(params, y, cond, -1);
    },
  };
}
