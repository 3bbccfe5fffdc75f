/**
 * Time-dependent vector fields v(x, t | c) for continuous normalizing flows and flow matching.
 *
 * `mlpVectorField`: an MLP on [x, e(t), c] with the sinusoidal time embedding
 *   e(t) = [t, sin(pi k t), cos(pi k t)] for k = 1 .. timeFeatures,
 * and the context c (e.g. a one-hot class) concatenated to the input. Its output layer starts
 * at zero, so the flow starts as the identity.
 *
 * `linearVectorField`: v(x, t) = x A^T + b (time-independent): its flow is an affine map
 * with a closed-form density, which the tests compare the ODE's density against.
 */
import { numpy as np, random, type Array, type DType } from "@jax-js/jax";
import type { Params } from "../core/types.js";
import { assertPositiveInt } from "../core/checks.js";
import { splitKey } from "../core/keys.js";
import { mlp, type Activation, type MlpParams } from "./mlp.js";

/** A time-dependent vector field v(x, t | cond) on events of shape `eventShape`. */
export interface VectorField<P extends Params = Params> {
  /** Shape of one event: [dim] for vectors, [H, W, C] for images. */
  readonly eventShape: number[];
  /** Number of values in one event (the product of `eventShape`). */
  readonly dim: number;
  /** Width of the context, 0 for an unconditional field. */
  readonly contextDim: number;
  /** Fresh parameters in `dtype` (default float32). Consumes `key`. */
  init(key: Array, dtype?: DType): P;
  /**
   * x: [batch, ...eventShape], t: [batch, 1], cond: [batch, contextDim] -> v, shaped as x.
   * Consumes every argument.
   */
  apply(params: P, x: Array, t: Array, cond?: Array): Array;
}

/** Options of `mlpVectorField`. */
export interface MlpVectorFieldOptions {
  dim: number;
  hidden: number[];
  contextDim?: number;
  /** Default "gelu" (smooth: the ODE solver and the divergence prefer a smooth field). */
  activation?: Activation;
  /** Number of sinusoidal time frequencies k = 1 .. timeFeatures; default 4. */
  timeFeatures?: number;
}

/** The sinusoidal embedding [t, sin(pi k t), cos(pi k t)]_k of t ([batch, 1]): [batch, 1 + 2K]. Consumes `t`. */
export function timeEmbedding(t: Array, features: number): Array {
  const k = globalThis.Array.from({ length: features }, (_, i) => Math.PI * (i + 1));
  const freqs = np.array(k, { dtype: t.dtype }).reshape([1, features]);
  const angles = t.ref.mul(freqs);
  return np.concatenate([t, np.sin(angles.ref), np.cos(angles)], 1);
}

/** An MLP vector field on [x, time embedding, context] whose output starts at zero. */
export function mlpVectorField(options: MlpVectorFieldOptions): VectorField<MlpParams> {
  const { dim, hidden } = options;
  const contextDim = options.contextDim ?? 0;
  const timeFeatures = options.timeFeatures ?? 4;
  assertPositiveInt("mlpVectorField", "dim", dim);
  assertPositiveInt("mlpVectorField", "timeFeatures", timeFeatures);
  const net = mlp({
    inDim: dim + 1 + 2 * timeFeatures,
    outDim: dim,
    hidden,
    contextDim,
    activation: options.activation ?? "gelu",
  });
  return {
    eventShape: [dim],
    dim,
    contextDim,
    init: (key, dtype) => net.init(key, dtype),
    apply(params, x, t, cond) {
      const tt = t.dtype === x.dtype ? t : t.astype(x.dtype);
      const h = np.concatenate([x, timeEmbedding(tt, timeFeatures)], 1);
      return net.apply(params, h, cond);
    },
  };
}

/** Parameters of `linearVectorField`: v(x) = x a^T + b. */
export type LinearFieldParams = { a: Array; b: Array };

/**
 * v(x, t) = x A^T + b, time-independent; `init` draws A and b from N(0, scale^2). Its flow over
 * a unit time is x -> expm(A) x + A^-1 (expm(A) - I) b, an affine map of known density.
 */
export function linearVectorField(dim: number, scale = 0.5): VectorField<LinearFieldParams> {
  assertPositiveInt("linearVectorField", "dim", dim);
  return {
    eventShape: [dim],
    dim,
    contextDim: 0,
    init(key, dtype = np.float32) {
      const [ka, kb] = splitKey(key, 2);
      return {
        a: random.normal(ka, [dim, dim]).astype(dtype).mul(scale),
        b: random.normal(kb, [dim]).astype(dtype).mul(scale),
      };
    },
    apply(params, x, t, cond) {
      t.dispose();
      cond?.dispose();
      return np.matmul(x, params.a.transpose()).add(params.b);
    },
  };
}
