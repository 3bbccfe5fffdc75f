/**
 * A normalizing flow: the distribution of x = f^-1(z), z ~ base, for an
 * invertible f (the bijector, data -> latent). By the change of variables,
 *   log p(x) = log p_base(f(x)) + log|det df/dx|.
 * Sampling runs the bijector's inverse; `sampleAndLogProb` reuses the inverse's
 * log-determinant L = log|det df^-1/dz|, so log p(x) = log p_base(z) - L.
 * Reference: Papamakarios et al., "Normalizing Flows for Probabilistic Modeling
 * and Inference", JMLR 2021, eq. (2)-(3).
 *
 * Params are `{ bijector, base }`; every method consumes its array arguments.
 */
import { lax, numpy as np, tree, type Array, type DType } from "@jax-js/jax";
import {
  outputShapeOf,
  type Bijector,
  type CallOptions,
  type InitOptions,
  type Params,
} from "../core/types.js";
import { checkInput } from "../core/checks.js";
import { splitKey } from "../core/keys.js";
import type { Distribution } from "./types.js";
import { checkSample } from "./types.js";

/** Parameters of a `Flow`: the bijector's and the base distribution's. */
export type FlowParams<P extends Params = Params, Q extends Params = Params> = {
  bijector: P;
  base: Q;
};

/** Options of `Flow.sample`. */
export interface FlowSampleOptions {
  /** Context, [n, contextDim]; required for a conditional flow. Consumed. */
  cond?: Array;
  /** Scales the base distribution's spread (see `SampleOptions.temperature`). */
  temperature?: number;
}

const fmt = (shape: readonly (number | string)[]) => `[${shape.join(", ")}]`;

/** A normalizing flow: the distribution of x = f^-1(z), z ~ base, for a bijector f (data -> latent). */
export class Flow<P extends Params = Params, Q extends Params = Params> {
  readonly bijector: Bijector<P>;
  readonly base: Distribution<Q>;
  readonly eventShape: number[];
  /**
   * Shape of one latent event: the bijector's output shape, which the base
   * distribution's event shape must equal. It differs from `eventShape` for
   * shape-changing bijectors (a multi-scale stack maps [H, W, C] to [H * W * C]).
   */
  readonly latentShape: number[];
  /** Context width (0 for an unconditional flow). */
  readonly contextDim: number;
  /** The JSON config that rebuilds this flow (set by the model factories), if any. */
  readonly config?: unknown;
  /**
   * Whether `logProb` and `sample` can run under `jit` (false for a continuous flow with an
   * adaptive solver); chunked evaluators compile them only when true (see `maybeJit`).
   */
  readonly jittable: boolean;

  constructor({
    bijector,
    base,
    config,
  }: { bijector: Bijector<P>; base: Distribution<Q>; config?: unknown }) {
    const a = outputShapeOf(bijector);
    const b = base.eventShape;
    if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
      const what = bijector.outputShape ? "output shape" : "event shape";
      throw new Error(
        `Flow: the bijector's ${what} ${fmt(a)} differs from the base distribution's event shape ${fmt(b)}`,
      );
    }
    this.bijector = bijector;
    this.base = base;
    this.eventShape = bijector.eventShape;
    this.latentShape = a;
    this.contextDim = bijector.contextDim;
    this.config = config;
    this.jittable = bijector.jittable !== false;
  }

  /**
   * Initialise both parts. `x` (and `cond`) is a representative batch for the
   * bijector's data-dependent initialisation (ActNorm); consumed.
   */
  init(key: Array, options: InitOptions = {}): FlowParams<P, Q> {
    const { dtype, x, cond } = options;
    if (x !== undefined) this.check("Flow.init", x, cond);
    else if (cond !== undefined)
      throw new Error("Flow.init: a context (cond) was given without a data batch x");
    const [kBijector, kBase] = splitKey(key, 2);
    return {
      bijector: this.bijector.init(kBijector, { dtype, x, cond }),
      base: this.base.init(kBase, { dtype }),
    };
  }

  /**
   * log p(x | cond) for each row of x ([batch, ...eventShape]): shape [batch].
   * Points outside the support, and any non-finite result (NaN input, overflow),
   * give -Infinity rather than NaN.
   */
  logProb(params: FlowParams<P, Q>, x: Array, cond?: Array, options?: CallOptions): Array {
    this.check("Flow.logProb", x, cond);
    const [z, logDet] = this.bijector.forward(params.bijector, x, cond, options);
    return finiteOrNegInf(this.base.logProb(params.base, z).add(logDet));
  }

  /**
   * `n` samples x = f^-1(z), z ~ base: shape [n, ...eventShape]. Every intermediate stays
   * allocated until the result is read, so for many rows (above all of autoregressive
   * flows, D steps per layer) use `sampleRows`, which draws awaited jitted chunks.
   */
  sample(params: FlowParams<P, Q>, key: Array, n: number, options: FlowSampleOptions = {}): Array {
    const { cond, temperature } = options;
    checkSample("Flow.sample", n, options);
    this.checkSampleContext("Flow.sample", n, cond);
    const z = this.base.sample(params.base, key, n, { temperature, dtype: paramsDtype(params) });
    const [x, logDet] = this.bijector.inverse(params.bijector, z, cond, { logDet: false });
    logDet.dispose();
    return x;
  }

  /**
   * `n` samples and their log-density under the flow (at temperature 1, whatever
   * the sampling temperature), in one pass: [x, logProb].
   */
  sampleAndLogProb(
    params: FlowParams<P, Q>,
    key: Array,
    n: number,
    options: FlowSampleOptions = {},
  ): [Array, Array] {
    const { cond, temperature } = options;
    checkSample("Flow.sampleAndLogProb", n, options);
    this.checkSampleContext("Flow.sampleAndLogProb", n, cond);
    const z = this.base.sample(tree.ref(params.base), key, n, {
      temperature,
      dtype: paramsDtype(params),
    });
    const logPz = this.base.logProb(params.base, z.ref);
    // inverse gives L = log|det d f^-1 / dz|; the density of x divides by it.
    const [x, logDetInv] = this.bijector.inverse(params.bijector, z, cond);
    return [x, finiteOrNegInf(logPz.sub(logDetInv))];
  }

  /** Data to latent: z = f(x), of shape [batch, ...latentShape]. */
  encode(params: FlowParams<P, Q>, x: Array, cond?: Array): Array {
    this.check("Flow.encode", x, cond);
    tree.dispose(params.base);
    const [z, logDet] = this.bijector.forward(params.bijector, x, cond, { logDet: false });
    logDet.dispose();
    return z;
  }

  /** Latent to data: x = f^-1(z), z of shape [batch, ...latentShape]. */
  decode(params: FlowParams<P, Q>, z: Array, cond?: Array): Array {
    this.check("Flow.decode", z, cond, this.latentShape);
    tree.dispose(params.base);
    const [x, logDet] = this.bijector.inverse(params.bijector, z, cond, { logDet: false });
    logDet.dispose();
    return x;
  }

  /**
   * Params with the running statistics of batch-norm layers updated from the
   * batch `x`; params as they are when the bijector has none.
   */
  updateState(params: FlowParams<P, Q>, x: Array, cond?: Array): FlowParams<P, Q> {
    this.check("Flow.updateState", x, cond);
    if (!this.bijector.updateState) {
      x.dispose();
      cond?.dispose();
      return params;
    }
    return { bijector: this.bijector.updateState(params.bijector, x, cond), base: params.base };
  }

  /** x is [batch, ...shape] (default eventShape); cond is [batch, contextDim] when conditional, absent otherwise. */
  private check(where: string, x: Array, cond: Array | undefined, shape = this.eventShape): void {
    checkInput(where, shape, this.contextDim, x, cond);
    if (this.contextDim === 0 && cond !== undefined) {
      throw new Error(`${where}: this flow is unconditional (contextDim 0): do not pass a context`);
    }
  }

  private checkSampleContext(where: string, n: number, cond: Array | undefined): void {
    const want = fmt([n, this.contextDim]);
    if (this.contextDim === 0) {
      if (cond !== undefined)
        throw new Error(
          `${where}: this flow is unconditional (contextDim 0): do not pass a context`,
        );
      return;
    }
    if (cond === undefined) {
      throw new Error(
        `${where}: this flow is conditional: pass a context cond of shape ${want} (one row per sample)`,
      );
    }
    if (cond.ndim !== 2 || cond.shape[0] !== n || cond.shape[1] !== this.contextDim) {
      throw new Error(
        `${where}: expected context of shape ${want}, got ${fmt(cond.shape)} (one row per sample)`,
      );
    }
  }
}

/** NaN and +-Infinity become -Infinity: a point the model cannot produce. Consumes `lp`. */
function finiteOrNegInf(lp: Array): Array {
  // The mask is computed from a stopped-gradient copy: differentiating through isfinite leaks
  // buffers under an eager `grad` in jax-js 0.1.25 (the mask has no gradient anyway).
  return np.where(np.isfinite(lax.stopGradient(lp.ref)), lp, -Infinity);
}

/** dtype to sample in: that of the parameters (float32 when there are none). */
function paramsDtype(params: FlowParams): DType {
  const leaves = tree.leaves(params) as Array[];
  return leaves.length > 0 && leaves[0].dtype === np.float64 ? np.float64 : np.float32;
}
