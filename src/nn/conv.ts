/**
 * A 2-D convolution on NHWC images with 'same' zero padding and stride 1:
 *
 *   y[b, h, w, o] = bias[o] + sum_{i, j < k} sum_c xpad[b, h + i, w + j, c] W[i, j, c, o],
 *
 * where xpad is x padded with (k - 1) / 2 zeros on each side of H and W (a
 * cross-correlation, like `lax.conv` and every deep-learning "conv").
 *
 * Why not `lax.conv`: in @jax-js/jax 0.1.25 it runs at about 0.4 GFLOP/s. Here
 * the k x k convolution is a sum of k^2 matmuls over shifted windows of the
 * padded input, each [B*H*W, Cin] @ [Cin, Cout] (a 1x1 convolution is one
 * matmul and pads nothing). A jitted forward + backward runs 20-80x faster
 * than `lax.conv` (bench/conv-speed.ts), ~3x faster than im2col with
 * `concatenate` (whose concatenation and transpose copy k^2 times the input),
 * and ~2x faster than one wide matmul whose k^2 output blocks are shifted
 * instead. The backward pass is again matmuls plus pads of the window cotangents.
 *
 * Initialisation: He-uniform (limit sqrt(6 / fanIn), fanIn = k^2 Cin) for
 * convolutions followed by a rectifier, Glorot-uniform (limit
 * sqrt(6 / (fanIn + fanOut))) on request; `zeroInit` makes weights and bias
 * zero, for the output convolution of a conditioner so its flow layer starts
 * as the identity. The bias always starts at zero.
 */
import { numpy as np, random, tree, type Array, type DType } from "@jax-js/jax";
import { assertPositiveInt } from "../core/checks.js";
import { inGradientTrace } from "../core/gradient-scope.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** Square kernel size: 1 (pointwise) or 3. */
export type ConvKernel = 1 | 3;

/** Options of `conv2d`. */
export type Conv2dOptions = {
  inChannels: number;
  outChannels: number;
  /** Square kernel size: 1 (pointwise) or 3. */
  kernel: ConvKernel;
  /** Zero weights and bias (output convolutions of conditioners). Default false. */
  zeroInit?: boolean;
  /** Weight initialisation of non-zero convolutions: "he" (default, before ReLU) or "glorot". */
  weightInit?: "he" | "glorot";
};

/** w: [k, k, Cin, Cout] (HWIO), b: [Cout]. */
export type ConvParams = { w: Array; b: Array };

/** A convolution: its sizes, `init` and `apply`. */
export interface Conv2d {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: ConvKernel;
  /** Fresh parameters in `dtype` (default float32). Consumes `key`. */
  init(key: Array, dtype?: DType): ConvParams;
  /** x: [B, H, W, inChannels] -> [B, H, W, outChannels]. Consumes both arguments. */
  apply(params: ConvParams, x: Array): Array;
}

const fmt = (shape: readonly number[]) => `[${shape.join(", ")}]`;

/**
 * The convolution itself, without bias: x [B, H, W, Cin], w [k, k, Cin, Cout]
 * (k odd) -> [B, H, W, Cout]. Consumes both.
 */
export function convSame(x: Array, w: Array): Array {
  const [B, H, W, cin] = x.shape;
  const [k, , , cout] = w.shape;
  const rows = B * H * W;
  if (k === 1) {
    const out = np.matmul(x.reshape([rows, cin]), w.reshape([cin, cout]));
    return out.reshape([B, H, W, cout]);
  }
  const p = (k - 1) / 2;
  const materialise = !inGradientTrace();
  const xpad = np.pad(x, [
    [0, 0],
    [p, p],
    [p, p],
    [0, 0],
  ]);
  let out: Array | null = null;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const window = xpad.ref.slice([], [i, i + H], [j, j + W], []).reshape([rows, cin]);
      // (-window) @ (-w) = window @ w. The negation makes jax-js materialise the
      // window contiguously: read through the pad and slice views, the matmul
      // falls off its SIMD path and a jitted forward pass ran 6-8x slower. A
      // gradient trace keeps windows for its backward pass anyway, so there the
      // copies would only add memory (core/gradient-scope.ts).
      const term = materialise
        ? np.matmul(np.negative(window), np.negative(w.ref.slice(i, j)))
        : np.matmul(window, w.ref.slice(i, j));
      out = out === null ? term : out.add(term);
    }
  }
  xpad.dispose();
  w.dispose();
  return out!.reshape([B, H, W, cout]);
}

/** A 1x1 or 3x3 NHWC convolution ("same" padding), computed as shifted matmuls. */
export function conv2d(options: Conv2dOptions): Conv2d {
  const where = "conv2d";
  const { inChannels, outChannels, kernel } = options;
  const zeroInit = options.zeroInit ?? false;
  const weightInit = options.weightInit ?? "he";
  assertPositiveInt(where, "inChannels", inChannels);
  assertPositiveInt(where, "outChannels", outChannels);
  if (kernel !== 1 && kernel !== 3)
    throw new Error(`${where}: kernel must be 1 or 3, got ${jsonExcerpt(kernel)}`);
  if (weightInit !== "he" && weightInit !== "glorot") {
    throw new Error(
      `${where}: unknown weightInit ${JSON.stringify(weightInit)} (use he or glorot)`,
    );
  }
  const wShape = [kernel, kernel, inChannels, outChannels];

  return {
    inChannels,
    outChannels,
    kernel,
    init(key, dtype = np.float32) {
      const b = np.zeros([outChannels], { dtype });
      if (zeroInit) {
        key.dispose();
        return { w: np.zeros(wShape, { dtype }), b };
      }
      const fanIn = kernel * kernel * inChannels;
      const fanOut = kernel * kernel * outChannels;
      const limit = weightInit === "he" ? Math.sqrt(6 / fanIn) : Math.sqrt(6 / (fanIn + fanOut));
      const w = random.uniform(key, wShape, { minval: -limit, maxval: limit }).astype(dtype);
      return { w, b };
    },
    apply(params, x) {
      const fail = (msg: string): never => {
        tree.dispose(params);
        x.dispose();
        throw new Error(`${where}: ${msg}`);
      };
      if (x.ndim !== 4 || x.shape[3] !== inChannels) {
        fail(`expected input of shape [batch, height, width, ${inChannels}], got ${fmt(x.shape)}`);
      }
      const { w, b } = params;
      if (w.shape.join() !== wShape.join() || b.shape.join() !== String(outChannels)) {
        fail(
          `expected parameters w ${fmt(wShape)} and b [${outChannels}], got ${fmt(w.shape)} and ${fmt(b.shape)}`,
        );
      }
      return convSame(x, w).add(b);
    },
  };
}
