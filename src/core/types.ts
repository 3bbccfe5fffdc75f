/**
 * The core abstractions. Parameters are plain trees of arrays (jax-js treats
 * class instances as leaves), configuration is plain JSON, and every function
 * consumes the arrays passed to it (the jax-js ownership convention): pass
 * `x.ref` or `tree.ref(params)` to keep using them.
 */
import type { Array, DType } from "@jax-js/jax";

/** A parameter tree: arrays in nested plain objects and lists. */
export type Params = Array | Params[] | { [key: string]: Params };

/**
 * Options for `init`. `x` (and `cond`) is a representative batch for
 * data-dependent initialisation (ActNorm); bijectors without such an
 * initialisation ignore it. Both are consumed.
 */
export interface InitOptions {
  dtype?: DType;
  x?: Array;
  cond?: Array;
}

/** Per-call options. `training` selects batch statistics in batch-norm layers. */
export interface CallOptions {
  training?: boolean;
  /**
   * false: the caller discards the log-det (sampling), so a layer may return zeros instead of
   * computing it (a continuous flow then skips the divergence, most of its cost). Default true.
   */
  logDet?: boolean;
}

/**
 * An invertible, differentiable map. `forward` goes from data to the base
 * (latent) space, the density direction, so `logProb` is one pass; `inverse`
 * goes back. Both return `[output, logDet]` with `logDet` of shape [batch]:
 * log|det J| of the map that was applied.
 *
 * Every bijector takes an optional context `cond` ([batch, contextDim]); those
 * without a conditioner ignore it.
 */
export interface Bijector<P extends Params = Params> {
  /** A short, stable name of the kind of layer, e.g. "affineCoupling". */
  readonly kind: string;
  /** Shape of one event (without the batch axis), e.g. [D] or [H, W, C]. */
  readonly eventShape: number[];
  /**
   * Shape of one event of `forward`'s output (the input of `inverse`), when it
   * differs from `eventShape`: a squeeze maps [H, W, C] to [H/2, W/2, 4C], a
   * multi-scale stack to [H * W * C]. Absent means `eventShape`; read it with
   * `outputShapeOf`. The number of entries is always the same (a bijection).
   */
  readonly outputShape?: number[];
  /** Context width the conditioner expects, or 0 for an unconditional layer. */
  readonly contextDim: number;
  /**
   * False for layers that cannot run under `jit` (an adaptive ODE solver reads values back to
   * choose its steps); absent means true. `Flow.jittable` reports it for the whole flow.
   */
  readonly jittable?: boolean;
  /** Fresh parameters (the identity map where the layer allows it); `options.x` (and `cond`) feed data-dependent inits such as actNorm's. */
  init(key: Array, options?: InitOptions): P;
  /** Data -> latent: [y, log|det dy/dx|] per batch row. Consumes its arguments. */
  forward(params: P, x: Array, cond?: Array, options?: CallOptions): [Array, Array];
  /** Latent -> data: [x, log|det dx/dy|] per batch row. Consumes its arguments. */
  inverse(params: P, y: Array, cond?: Array, options?: CallOptions): [Array, Array];
  /**
   * Layers with running statistics (batch norm) return their parameters with the
   * statistics updated from the batch `x`; other layers return `params` as is.
   * Consumes its arguments.
   */
  updateState?(params: P, x: Array, cond?: Array): P;
}

/** The shape of one event of `b`'s forward output: `b.outputShape ?? b.eventShape`. */
export function outputShapeOf(b: Pick<Bijector<any>, "eventShape" | "outputShape">): number[] {
  return b.outputShape ?? b.eventShape;
}
