/**
 * A convolutional ResNet, the conditioner of coupling layers on images (NHWC):
 *
 *   h_0     = conv_in([x, cond])                                  (k x k, He init)
 *   h_{n+1} = h_n + s_n * conv_n2(act(conv_n1(act(h_n))))         (n < blocks)
 *   out     = conv_out(act(h_blocks))                             (k x k, ZERO init)
 *
 * Blocks are pre-activation residual blocks (He et al. 2016, "Identity mappings
 * in deep residual networks") with two k x k convolutions, as in RealNVP's
 * ResNet conditioner (Dinh et al. 2017), rather than Glow's "3x3, ReLU, 1x1,
 * ReLU" (Kingma & Dhariwal 2018): both convolutions see a neighbourhood, and
 * the shifted-matmul convolution makes the second 3x3 cheap enough.
 *
 * Normalisation: none. Each residual branch is scaled by a learnable
 * per-channel s_n initialised to ZERO (SkipInit, De & Smith 2020; ReZero,
 * Bachlechner et al. 2020), so every block starts as the identity and
 * activations do not grow with depth. Batch norm is avoided on purpose: inside
 * a conditioner it makes a sample's output depend on its batch, and the
 * train/eval switch of its statistics breaks the exact inverse.
 *
 * The output convolution starts at zero (weights and bias), so the coupling
 * layer that uses this network starts as the identity. A context image
 * [B, H, W, contextChannels] is concatenated to the input channels.
 */
import { nn, numpy as np, tree, type Array, type DType } from "@jax-js/jax";
import { assertPositiveInt } from "../core/checks.js";
import { splitKey } from "../core/keys.js";
import { conv2d, type ConvKernel, type ConvParams } from "./conv.js";
import type { Activation } from "./mlp.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** Options of `resnet`. */
export type ResnetOptions = {
  inChannels: number;
  outChannels: number;
  /** Channels of the hidden feature maps. */
  hidden: number;
  /** Number of residual blocks (0 allowed: input conv -> activation -> output conv). */
  blocks: number;
  /** Channels of the context image concatenated to the input; 0 (default) for none. */
  contextChannels?: number;
  /** Kernel size of every convolution; default 3. */
  kernel?: ConvKernel;
  /** Nonlinearity; default "relu". */
  activation?: Activation;
};

/** A residual block: two convolutions and the per-channel branch scale [hidden]. */
export type ResBlockParams = { conv1: ConvParams; conv2: ConvParams; scale: Array };
/** Parameters of `resnet`: input conv, residual blocks and output conv. */
export type ResnetParams = { input: ConvParams; blocks: ResBlockParams[]; output: ConvParams };

/** A ResNet: its sizes, `init` and `apply`. */
export interface Resnet {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly contextChannels: number;
  /** Fresh parameters in `dtype` (default float32). Consumes `key`. */
  init(key: Array, dtype?: DType): ResnetParams;
  /**
   * x: [B, H, W, inChannels], cond: [B, H, W, contextChannels] (required when
   * contextChannels > 0, disposed otherwise) -> [B, H, W, outChannels].
   * Consumes every argument.
   */
  apply(params: ResnetParams, x: Array, cond?: Array): Array;
}

const ACTIVATIONS: Record<Activation, (x: Array) => Array> = {
  relu: (x) => nn.relu(x),
  tanh: (x) => np.tanh(x),
  gelu: (x) => nn.gelu(x),
};

const fmt = (shape: readonly (number | string)[]) => `[${shape.join(", ")}]`;

/** A convolutional ResNet conditioner for images (input conv, residual blocks, zero-initialised output conv). */
export function resnet(options: ResnetOptions): Resnet {
  const where = "resnet";
  const { inChannels, outChannels, hidden, blocks } = options;
  const contextChannels = options.contextChannels ?? 0;
  const kernel = options.kernel ?? 3;
  const activation = options.activation ?? "relu";
  assertPositiveInt(where, "inChannels", inChannels);
  assertPositiveInt(where, "outChannels", outChannels);
  assertPositiveInt(where, "hidden", hidden);
  if (!(Number.isInteger(blocks) && blocks >= 0)) {
    throw new Error(`${where}: blocks must be a non-negative integer, got ${jsonExcerpt(blocks)}`);
  }
  if (!(Number.isInteger(contextChannels) && contextChannels >= 0)) {
    throw new Error(
      `${where}: contextChannels must be a non-negative integer, got ${jsonExcerpt(contextChannels)}`,
    );
  }
  const act = ACTIVATIONS[activation];
  if (!act)
    throw new Error(
      `${where}: unknown activation ${JSON.stringify(activation)} (use relu, tanh or gelu)`,
    );
  // Glorot suits tanh (linear near 0); He suits the rectifiers.
  const weightInit = activation === "tanh" ? "glorot" : "he";
  const inputConv = conv2d({
    inChannels: inChannels + contextChannels,
    outChannels: hidden,
    kernel,
    weightInit,
  });
  const hiddenConv = conv2d({ inChannels: hidden, outChannels: hidden, kernel, weightInit });
  const outputConv = conv2d({ inChannels: hidden, outChannels, kernel, zeroInit: true });

  return {
    inChannels,
    outChannels,
    contextChannels,
    init(key, dtype = np.float32) {
      const [kIn, kOut, ...kBlocks] = splitKey(key, 2 + 2 * blocks);
      const blockParams: ResBlockParams[] = [];
      for (let n = 0; n < blocks; n++) {
        blockParams.push({
          conv1: hiddenConv.init(kBlocks[2 * n], dtype),
          conv2: hiddenConv.init(kBlocks[2 * n + 1], dtype),
          scale: np.zeros([hidden], { dtype }),
        });
      }
      return {
        input: inputConv.init(kIn, dtype),
        blocks: blockParams,
        output: outputConv.init(kOut, dtype),
      };
    },
    apply(params, x, cond) {
      // Errors still honour the ownership rule: the arguments are consumed.
      const fail = (msg: string): never => {
        tree.dispose(params);
        x.dispose();
        cond?.dispose();
        throw new Error(`${where}: ${msg}`);
      };
      if (x.ndim !== 4 || x.shape[3] !== inChannels) {
        fail(`expected input of shape [batch, height, width, ${inChannels}], got ${fmt(x.shape)}`);
      }
      if (params.blocks.length !== blocks)
        fail(`expected ${blocks} blocks of parameters, got ${params.blocks.length}`);
      let h = x;
      if (contextChannels > 0) {
        const want = [...x.shape.slice(0, 3), contextChannels];
        if (cond === undefined)
          fail(`this network is conditional: pass a context of shape ${fmt(want)}`);
        if (cond!.shape.join() !== want.join())
          fail(`expected context of shape ${fmt(want)}, got ${fmt(cond!.shape)}`);
        h = np.concatenate([x, cond!.dtype === x.dtype ? cond! : cond!.astype(x.dtype)], 3);
      } else {
        cond?.dispose();
      }
      h = inputConv.apply(params.input, h);
      for (const { conv1, conv2, scale } of params.blocks) {
        const branch = hiddenConv.apply(conv2, act(hiddenConv.apply(conv1, act(h.ref))));
        h = h.add(branch.mul(scale));
      }
      return outputConv.apply(params.output, act(h));
    },
  };
}
