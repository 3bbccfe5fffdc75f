/**
 * Flows for images [H, W, C], from a plain JSON config:
 * - "glow" (Kingma & Dhariwal 2018): L levels; each squeezes, then runs K steps of
 *   ActNorm, an LU-parametrised 1x1 convolution and an affine coupling on channel
 *   halves; every level but the last factors out half its channels under a learned
 *   conditional prior;
 * - "realnvp" (multi-scale RealNVP, Dinh et al. 2016): each level runs 3 checkerboard
 *   couplings, squeezes, then 3 channel couplings (with ActNorm between couplings),
 *   and factors out half its channels; the last level runs 4 checkerboard couplings.
 * The first layer maps dequantised pixels x in [0, 1) to logit space (counted in the
 * log-det), so `logProb` is the density of x and bits/dim follow from it.
 * Conditioners are ResNets on shifted-matmul convolutions. With `classes > 0` the
 * flow is class-conditional: a one-hot label (the context) is broadcast over the
 * pixels and fed to every coupling and every prior. With `context` it is
 * image-conditional: the context is an image computed from the pixels (a thumbnail,
 * or the left half; data/image-context.ts), resized to each coupling's and prior's
 * level (nn/context-image.ts) and concatenated to the conditioner's input channels.
 * Either way `logProb(params, x, cond)` is the exact log p(x | cond): the context
 * only feeds the conditioners and is never transformed, so there is no log-det
 * term for it.
 */
import { numpy as np, type Array, type DType } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { assertSize } from "../core/checks.js";
import { chain } from "../bijectors/chain.js";
import { actNorm } from "../bijectors/actnorm.js";
import { luLinear } from "../bijectors/lu-linear.js";
import { squeeze } from "../bijectors/squeeze.js";
import { variationalDequantization } from "../bijectors/variational-dequantization.js";
import { scaledLogit } from "../bijectors/scaled-logit.js";
import {
  imageAffineCoupling,
  imageCouplingChannels,
  type ImageConditioner,
} from "../bijectors/image-coupling.js";
import { multiScale, type MultiScaleLevel } from "../bijectors/split.js";
import { resnet } from "../nn/resnet.js";
import { standardNormal } from "../distributions/standard-normal.js";
import { Flow } from "../distributions/flow.js";
import { DEFAULT_LOGIT_ALPHA } from "../data/dequantize.js";
import { checkContextSpec, contextSize, type ImageContextSpec } from "../data/image-context.js";
import { contextImage, contextImageChannels } from "../nn/context-image.js";
import { jsonExcerpt } from "../core/excerpt.js";
import type { ImageFlowMatchingConfig } from "./image-flow-matching.js";

/** The image model names: "glow" and "realnvp". */
export const IMAGE_MODELS = ["glow", "realnvp"] as const;
/** One of `IMAGE_MODELS`. */
export type ImageModel = (typeof IMAGE_MODELS)[number];

/** The plain JSON config of an image flow. */
export interface ImageFlowConfig {
  model: ImageModel;
  /** Image shape [H, W, C]; H and W divisible by 2^(levels - 1) (Glow: 2^levels). */
  shape: number[];
  /** Multi-scale levels. Default 2. */
  levels?: number;
  /** Glow: flow steps per level. Default 4. RealNVP ignores it. */
  steps?: number;
  /** Channels of each ResNet conditioner. Default 64. */
  hidden?: number;
  /** Residual blocks per conditioner. Default 1. */
  blocks?: number;
  /** Number of classes for a class-conditional flow (context = one-hot label); 0 for none. */
  classes?: number;
  /**
   * An image-conditional flow: the context is this function of the image, e.g.
   * { kind: "downsample", factor: 4 } (the 7x7 thumbnail of a 28x28 image) or
   * { kind: "left-half" }; null or absent for none. Not together with `classes`.
   */
  context?: ImageContextSpec | null;
  /** Logit preprocessing: y = logit(alpha + (1 - 2 alpha) x). Default 0.05. */
  logitAlpha?: number;
  /** Seed of the fixed parts of the architecture (the 1x1 convolutions' permutations). */
  seed?: number;
  /**
   * "uniform" (default): the flow models b = (pixel + v) / 256 as given. "variational": a
   * learned, pixel-conditioned noise flow first moves v within each pixel's cell (Ho et al.
   * 2019; see bijectors/variational-dequantization.ts), tightening the likelihood bound.
   */
  dequantization?: "uniform" | "variational";
}

/** An `ImageFlowConfig` with every default filled in. */
export type ResolvedImageFlowConfig = Required<Omit<ImageFlowConfig, "context">> & {
  context: ImageContextSpec | null;
};

/** Whether a config models images (it has a `shape`): Glow, RealNVP or image flow matching. */
export function isImageConfig(c: unknown): c is ImageFlowConfig | ImageFlowMatchingConfig {
  return !!c && typeof c === "object" && globalThis.Array.isArray((c as ImageFlowConfig).shape);
}

/** Bounds on an image flow's sizes, far above any model trained here (see MAX_SIZE in vector.ts). */
export const MAX_IMAGE_SIZE = {
  side: 4096,
  levels: 12,
  steps: 1_000,
  hidden: 100_000,
  blocks: 1_000,
  classes: 100_000,
};

/** An image config with every default filled in; errors say which field is wrong. */
export function resolveImageConfig(config: ImageFlowConfig): ResolvedImageFlowConfig {
  const where = "image flow config";
  if (!IMAGE_MODELS.includes(config.model)) {
    throw new Error(
      `${where}: unknown model ${jsonExcerpt(config.model)}; expected one of ${IMAGE_MODELS.join(", ")}`,
    );
  }
  const full: ResolvedImageFlowConfig = {
    model: config.model,
    shape: config.shape,
    levels: config.levels ?? 2,
    steps: config.steps ?? 4,
    hidden: config.hidden ?? 64,
    blocks: config.blocks ?? 1,
    classes: config.classes ?? 0,
    context: null,
    logitAlpha: config.logitAlpha ?? DEFAULT_LOGIT_ALPHA,
    seed: config.seed ?? 0,
    dequantization: config.dequantization ?? "uniform",
  };
  if (full.dequantization !== "uniform" && full.dequantization !== "variational") {
    throw new Error(
      `${where}: dequantization must be "uniform" or "variational", got ${jsonExcerpt(full.dequantization)}`,
    );
  }
  if (full.shape.length !== 3)
    throw new Error(`${where}: shape must be [H, W, C], got ${jsonExcerpt(full.shape)}`);
  full.shape.forEach((d) => assertSize(where, "each shape entry", d, MAX_IMAGE_SIZE.side));
  for (const k of ["levels", "steps", "hidden"] as const)
    assertSize(where, k, full[k], MAX_IMAGE_SIZE[k]);
  if (!Number.isInteger(full.blocks) || full.blocks < 0 || full.blocks > MAX_IMAGE_SIZE.blocks)
    throw new Error(
      `${where}: blocks must be a non-negative integer up to ${MAX_IMAGE_SIZE.blocks}`,
    );
  if (!Number.isInteger(full.classes) || full.classes < 0 || full.classes > MAX_IMAGE_SIZE.classes)
    throw new Error(
      `${where}: classes must be a non-negative integer up to ${MAX_IMAGE_SIZE.classes}`,
    );
  const squeezes = full.model === "glow" ? full.levels : full.levels - 1;
  const f = 2 ** squeezes;
  if (full.shape[0] % f !== 0 || full.shape[1] % f !== 0) {
    throw new Error(
      `${where}: ${full.model} with ${full.levels} levels squeezes ${squeezes} times, so H and W must be divisible by ${f}; got [${full.shape.join(", ")}]`,
    );
  }
  if (config.context !== undefined && config.context !== null) {
    if (full.classes > 0)
      throw new Error(`${where}: a flow conditions on classes or on a context image, not both`);
    const context = checkContextSpec(where, config.context, full.shape);
    // Every conditioner works at H / 2^k for k from (glow) 1 or (realnvp) 0 up to the squeezes.
    for (let k = full.model === "glow" ? 1 : 0; k <= squeezes; k++) {
      const [h, w] = [full.shape[0] / 2 ** k, full.shape[1] / 2 ** k];
      try {
        contextImageChannels(context, full.shape, h, w);
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}; choose another downsample factor`);
      }
    }
    full.context = context;
  }
  return full;
}

/** Context width of a resolved config: the classes, the context image's size, or 0. */
export function imageContextDim(c: ResolvedImageFlowConfig): number {
  return c.context ? contextSize(c.context, c.shape) : c.classes;
}

/**
 * A ResNet conditioner working at [h, w]: a class context [B, K] is broadcast to
 * [B, h, w, K], a context image is resized to [h, w]; either is concatenated.
 */
function conditioner(
  c: ResolvedImageFlowConfig,
  [h, w]: number[],
  inChannels: number,
  outChannels: number,
): ImageConditioner<any> {
  const spec = c.context;
  const contextChannels = spec ? contextImageChannels(spec, c.shape, h, w) : c.classes;
  const net = resnet({
    inChannels,
    outChannels,
    hidden: c.hidden,
    blocks: c.blocks,
    contextChannels,
  });
  if (spec) {
    return {
      contextDim: contextSize(spec, c.shape),
      init: (key, dtype?: DType) => net.init(key, dtype),
      apply: (p, x: Array, cond?: Array) =>
        net.apply(p, x, contextImage(cond!, spec, c.shape, h, w, x.dtype, x.device)),
    };
  }
  if (c.classes === 0)
    return {
      init: (key, dtype) => net.init(key, dtype),
      apply: (p, x, cond) => net.apply(p, x, cond),
    };
  return {
    contextDim: c.classes,
    init: (key, dtype?: DType) => net.init(key, dtype),
    apply: (p, x: Array, cond?: Array) => {
      const [b, h, w] = x.shape;
      const image = cond!
        .reshape([b, 1, 1, c.classes])
        .mul(np.ones([1, h, w, 1], { dtype: x.dtype }));
      return net.apply(p, x, image);
    },
  };
}

function coupling(
  c: ResolvedImageFlowConfig,
  shape: number[],
  mask: "checkerboard" | "channel",
  parity: 0 | 1,
): Bijector<any> {
  const { inChannels, outChannels } = imageCouplingChannels({ shape, mask, parity });
  return imageAffineCoupling({
    shape,
    mask,
    parity,
    conditioner: conditioner(c, shape, inChannels, outChannels),
  });
}

function glowLevel(c: ResolvedImageFlowConfig, shape: number[], level: number): Bijector<any> {
  const [h, w, ch] = shape;
  const s = [h / 2, w / 2, 4 * ch];
  const layers: Bijector<any>[] = [squeeze(shape)];
  for (let k = 0; k < c.steps; k++) {
    layers.push(
      actNorm(s),
      luLinear(s, { seed: c.seed * 1000 + level * 100 + k }),
      coupling(c, s, "channel", (k % 2) as 0 | 1),
    );
  }
  return chain(layers);
}

function realNVPLevel(c: ResolvedImageFlowConfig, shape: number[], last: boolean): Bijector<any> {
  const layers: Bijector<any>[] = [];
  const couplings = last ? 4 : 3;
  for (let k = 0; k < couplings; k++) {
    if (k > 0) layers.push(actNorm(shape));
    layers.push(coupling(c, shape, "checkerboard", (k % 2) as 0 | 1));
  }
  if (!last) {
    const [h, w, ch] = shape;
    const s = [h / 2, w / 2, 4 * ch];
    layers.push(squeeze(shape));
    for (let k = 0; k < 3; k++)
      layers.push(actNorm(s), coupling(c, s, "channel", (k % 2) as 0 | 1));
  }
  return chain(layers);
}

function buildImageBijector(c: ResolvedImageFlowConfig): Bijector<any> {
  const levels: MultiScaleLevel[] = [];
  let shape = c.shape;
  for (let l = 0; l < c.levels; l++) {
    const last = l === c.levels - 1;
    const bijector = c.model === "glow" ? glowLevel(c, shape, l) : realNVPLevel(c, shape, last);
    // Both level kinds end squeezed ([h/2, w/2, 4c]) except RealNVP's last; half the channels go on.
    const [h, w, ch] =
      c.model === "glow" || !last ? [shape[0] / 2, shape[1] / 2, shape[2] * 4] : shape;
    const prior = last ? undefined : conditioner(c, [h, w], ch / 2, ch);
    levels.push({ bijector, prior });
    shape = [h, w, ch / 2];
  }
  const body = [scaledLogit(c.shape, c.logitAlpha), multiScale({ levels, squeeze: false })];
  // The noise flow is half the width of the model's conditioners: it only shapes noise within a cell.
  const deq =
    c.dequantization === "variational"
      ? [
          variationalDequantization({
            shape: c.shape,
            hidden: Math.max(8, Math.ceil(c.hidden / 2)),
            blocks: 1,
          }),
        ]
      : [];
  return chain([...deq, ...body]);
}

/** An image flow (Glow or multi-scale RealNVP) from its config. */
export function buildImageFlow(config: ImageFlowConfig): Flow<any, any> {
  const full = resolveImageConfig(config);
  const bijector = buildImageBijector(full);
  const D = full.shape.reduce((a, d) => a * d, 1);
  return new Flow({ bijector, base: standardNormal([D]), config: full });
}
