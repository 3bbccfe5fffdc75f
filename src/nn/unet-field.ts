/**
 * A small U-Net vector field v(x, t | c) on NHWC images, for flow matching on images
 * (Ronneberger et al. 2015; with time embedding as in Ho et al., "Denoising Diffusion
 * Probabilistic Models", 2020, without attention):
 *
 *   e      = act(W_e [timeEmbedding(t), c] + b_e)                   (one embedding per image)
 *   h      = conv_in(x)                                             (3x3, C -> hidden)
 *   level l (resolution H / 2^l, channels hidden * 2^l), `blocks` residual blocks each:
 *            h = h + s * conv2(act(conv1(act(h)) + W_l e))          (s per channel, starts at 0)
 *   down   : 2x2 average pool, then a 1x1 convolution to the next level's channels;
 *   up     : nearest-neighbour upsampling, a 1x1 convolution back, the skip connection of the
 *            same level concatenated, a 1x1 convolution, and the level's blocks again;
 *   v      = conv_out(act(h))                                       (3x3, ZERO init)
 *
 * The context c (a one-hot class) joins the time features, so one embedding carries both into
 * every block as a per-channel shift. The zero output convolution starts the field at v = 0
 * (the flow starts as the identity) and the zero branch scales start every block as the
 * identity (SkipInit, De & Smith 2020), as in the ResNet conditioners (nn/resnet.ts). No
 * normalisation layer: a batch statistic would make one image's velocity depend on its batch.
 * Convolutions are the shifted-matmul ones of nn/conv.ts.
 */
import { nn, numpy as np, random, tree, type Array, type DType } from "@jax-js/jax";
import { assertPositiveInt } from "../core/checks.js";
import { splitKey } from "../core/keys.js";
import { jsonExcerpt } from "../core/excerpt.js";
import { conv2d, type ConvParams } from "./conv.js";
import type { Activation, DenseParams } from "./mlp.js";
import { timeEmbedding, type VectorField } from "./vector-field.js";

/** Options of `unetVectorField`. */
export interface UnetFieldOptions {
  /** Image shape [H, W, C]; H and W divisible by 2^(levels - 1). */
  shape: number[];
  /** Channels at full resolution (doubled at each lower level). Default 32. */
  hidden?: number;
  /** Resolutions. Default 2 (28x28 and 14x14 for FashionMNIST). */
  levels?: number;
  /** Residual blocks per level on the way down and again on the way up. Default 1. */
  blocks?: number;
  /** Width of the context (a one-hot class); default 0. */
  contextDim?: number;
  /** Sinusoidal time frequencies; default 8. */
  timeFeatures?: number;
  /** Default "gelu" (smooth: the ODE solver prefers a smooth field). */
  activation?: Activation;
}

/** A residual block: two 3x3 convolutions, the embedding's projection and the branch scale. */
export type UnetBlockParams = {
  conv1: ConvParams;
  conv2: ConvParams;
  emb: DenseParams;
  scale: Array;
};
/** One level: blocks down, the convolution to the next level (absent at the lowest), blocks up. */
export type UnetLevelParams = {
  down: UnetBlockParams[];
  toNext?: ConvParams;
  fromNext?: ConvParams;
  merge?: ConvParams;
  up: UnetBlockParams[];
};
/** Parameters of `unetVectorField`. */
export type UnetFieldParams = {
  embedding: DenseParams;
  input: ConvParams;
  levels: UnetLevelParams[];
  output: ConvParams;
};

const ACTIVATIONS: Record<Activation, (x: Array) => Array> = {
  relu: (x) => nn.relu(x),
  tanh: (x) => np.tanh(x),
  gelu: (x) => nn.gelu(x),
};

function denseInit(key: Array, inDim: number, outDim: number, dtype: DType): DenseParams {
  const limit = Math.sqrt(6 / (inDim + outDim));
  return {
    w: random.uniform(key, [inDim, outDim], { minval: -limit, maxval: limit }).astype(dtype),
    b: np.zeros([outDim], { dtype }),
  };
}

/** [B, H, W, C] -> [B, H / 2, W / 2, C] by 2x2 means. Consumes `x`. */
function avgPool2(x: Array): Array {
  const [b, h, w, c] = x.shape;
  return x.reshape([b, h / 2, 2, w / 2, 2, c]).mean([2, 4]);
}

/** [B, H, W, C] -> [B, 2H, 2W, C], each pixel repeated 2x2. Consumes `x`. */
function upsample2(x: Array): Array {
  const [b, h, w, c] = x.shape;
  return np
    .broadcastTo(x.reshape([b, h, 1, w, 1, c]), [b, h, 2, w, 2, c])
    .reshape([b, 2 * h, 2 * w, c]);
}

/** A U-Net vector field on images [H, W, C] with time (and class) embedding; see the module comment. */
export function unetVectorField(options: UnetFieldOptions): VectorField<UnetFieldParams> {
  const where = "unetVectorField";
  const shape = options.shape;
  const hidden = options.hidden ?? 32;
  const levels = options.levels ?? 2;
  const blocks = options.blocks ?? 1;
  const contextDim = options.contextDim ?? 0;
  const timeFeatures = options.timeFeatures ?? 8;
  const act = ACTIVATIONS[options.activation ?? "gelu"];
  if (!globalThis.Array.isArray(shape) || shape.length !== 3)
    throw new Error(`${where}: shape must be [H, W, C], got ${jsonExcerpt(shape)}`);
  shape.forEach((d) => assertPositiveInt(where, "each shape entry", d));
  for (const [k, v] of Object.entries({ hidden, levels, blocks, timeFeatures }))
    assertPositiveInt(where, k, v);
  if (!(Number.isInteger(contextDim) && contextDim >= 0))
    throw new Error(
      `${where}: contextDim must be a non-negative integer, got ${jsonExcerpt(contextDim)}`,
    );
  if (!act) throw new Error(`${where}: unknown activation ${jsonExcerpt(options.activation)}`);
  const f = 2 ** (levels - 1);
  if (shape[0] % f !== 0 || shape[1] % f !== 0)
    throw new Error(
      `${where}: ${levels} levels halve the image ${levels - 1} times, so H and W must be divisible by ${f}; got [${shape.join(", ")}]`,
    );
  const [, , channels] = shape;
  const width = (l: number) => hidden * 2 ** l;
  const embedIn = 1 + 2 * timeFeatures + contextDim;
  const embedDim = 4 * hidden;
  const inputConv = conv2d({ inChannels: channels, outChannels: hidden, kernel: 3 });
  const outputConv = conv2d({
    inChannels: hidden,
    outChannels: channels,
    kernel: 3,
    zeroInit: true,
  });
  const conv3 = (c: number) => conv2d({ inChannels: c, outChannels: c, kernel: 3 });
  const conv1 = (a: number, b: number) =>
    conv2d({ inChannels: a, outChannels: b, kernel: 1, weightInit: "glorot" });

  const blockInit = (key: Array, c: number, dtype: DType): UnetBlockParams => {
    const [k1, k2, k3] = splitKey(key, 3);
    return {
      conv1: conv3(c).init(k1, dtype),
      conv2: conv3(c).init(k2, dtype),
      emb: denseInit(k3, embedDim, c, dtype),
      scale: np.zeros([c], { dtype }),
    };
  };
  /** h + s * conv2(act(conv1(act(h)) + W e)); e: [B, embedDim]. Consumes h, e and p. */
  const block = (p: UnetBlockParams, h: Array, e: Array): Array => {
    const c = h.shape[3];
    const shift = np.matmul(e, p.emb.w).add(p.emb.b).reshape([h.shape[0], 1, 1, c]);
    const inner = act(conv3(c).apply(p.conv1, act(h.ref)).add(shift));
    return h.add(conv3(c).apply(p.conv2, inner).mul(p.scale));
  };

  return {
    eventShape: [...shape],
    dim: shape[0] * shape[1] * shape[2],
    contextDim,
    init(key, dtype = np.float32) {
      const [kEmb, kIn, kOut, ...kLevels] = splitKey(key, 3 + levels);
      const levelParams: UnetLevelParams[] = [];
      for (let l = 0; l < levels; l++) {
        const ks = splitKey(kLevels[l], 2 * blocks + 3);
        const c = width(l);
        const p: UnetLevelParams = {
          down: ks.slice(0, blocks).map((k) => blockInit(k, c, dtype)),
          up: [],
        };
        const rest = ks.slice(blocks);
        if (l < levels - 1) {
          p.toNext = conv1(c, width(l + 1)).init(rest[0], dtype);
          p.fromNext = conv1(width(l + 1), c).init(rest[1], dtype);
          p.merge = conv1(2 * c, c).init(rest[2], dtype);
          p.up = rest.slice(3).map((k) => blockInit(k, c, dtype));
        } else {
          rest.forEach((k) => k.dispose());
        }
        levelParams.push(p);
      }
      return {
        embedding: denseInit(kEmb, embedIn, embedDim, dtype),
        input: inputConv.init(kIn, dtype),
        levels: levelParams,
        output: outputConv.init(kOut, dtype),
      };
    },
    apply(params, x, t, cond) {
      if (params.levels.length !== levels) {
        tree.dispose(params);
        x.dispose();
        t.dispose();
        cond?.dispose();
        throw new Error(
          `${where}: expected ${levels} levels of parameters, got ${params.levels.length}`,
        );
      }
      const dtype = x.dtype;
      const tt = t.dtype === dtype ? t : t.astype(dtype);
      const features = [timeEmbedding(tt, timeFeatures)];
      if (contextDim > 0) features.push(cond!.dtype === dtype ? cond! : cond!.astype(dtype));
      else cond?.dispose();
      const e = act(
        np.matmul(np.concatenate(features, 1), params.embedding.w).add(params.embedding.b),
      );
      let h = inputConv.apply(params.input, x);
      const skips: Array[] = [];
      for (let l = 0; l < levels; l++) {
        const p = params.levels[l];
        for (const b of p.down) h = block(b, h, e.ref);
        if (l < levels - 1) {
          skips.push(h.ref);
          h = conv1(width(l), width(l + 1)).apply(p.toNext!, avgPool2(h));
        }
      }
      for (let l = levels - 2; l >= 0; l--) {
        const p = params.levels[l];
        const c = width(l);
        const up = conv1(width(l + 1), c).apply(p.fromNext!, upsample2(h));
        h = conv1(2 * c, c).apply(p.merge!, np.concatenate([up, skips[l]], 3));
        for (const b of p.up) h = block(b, h, e.ref);
      }
      e.dispose();
      return outputConv.apply(params.output, act(h));
    },
  };
}
