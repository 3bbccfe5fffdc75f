/**
 * Masked autoregressive flow layer (MAF; Papamakarios, Pavlakou, Murray 2017,
 * "Masked Autoregressive Flow for Density Estimation",
 * https://arxiv.org/abs/1705.07057). A MADE network gives, for each
 * coordinate i, a shift mu_i and a raw log-scale from the coordinates before i
 * in the ordering (and the context):
 *   forward (data -> latent): z_i = (x_i - mu_i(x_<i)) * exp(-s_i(x_<i)),
 *                             log|det J| = -sum_i s_i,
 *   s = scaleBound * tanh(raw / scaleBound)   (keeps exp(±s) finite).
 * The forward (density) direction is one pass of the network; the inverse
 * (sampling) fixes one coordinate after another, in one sweep that reuses the
 * network's partial sums (`Made.sweep`): about the arithmetic of one pass.
 * Starts as the identity (zero output layer).
 */
import { numpy as np, type Array } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { checkInput } from "../core/checks.js";
import { made, type MadeOrder, type MadeParams } from "../nn/made.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** Options of `maskedAutoregressive` (and `inverseAutoregressive`). */
export interface MaskedAutoregressiveOptions {
  dim: number;
  /** Hidden widths of the MADE conditioner. */
  hidden: number[];
  /** Context width; default 0 (unconditional). */
  contextDim?: number;
  /** Autoregressive ordering; default "natural". */
  order?: MadeOrder;
  /** Seed of a "random" ordering; default 0. */
  seed?: number;
  activation?: "relu" | "tanh";
  /** Bound on |s|; default 3. */
  scaleBound?: number;
}

/** Parameters of `maskedAutoregressive`: the MADE conditioner. */
export type MaskedAutoregressiveParams = MadeParams;

/** Masked autoregressive layer (MAF): one MADE pass for the density, D sequential passes to sample. */
export function maskedAutoregressive(
  options: MaskedAutoregressiveOptions,
): Bijector<MaskedAutoregressiveParams> {
  const where = "maskedAutoregressive";
  const { dim } = options;
  const contextDim = options.contextDim ?? 0;
  const scaleBound = options.scaleBound ?? 3;
  if (!(scaleBound > 0 && Number.isFinite(scaleBound))) {
    throw new Error(
      `${where}: scaleBound must be a positive number, got ${jsonExcerpt(options.scaleBound)}`,
    );
  }
  const net = made({
    dim,
    hidden: options.hidden,
    contextDim,
    outputsPerDim: 2,
    order: options.order,
    seed: options.seed,
    activation: options.activation,
  });

  /** s = scaleBound * tanh(raw / scaleBound). Consumes `raw`. */
  const bounded = (raw: Array): Array => {
    // The bound as an array of the input's dtype, not a JS number: under jit,
    // jax-js 0.1.25 rounds JS scalar operands to float32 even on float64 arrays.
    const bound = np.array(scaleBound, { dtype: raw.dtype });
    return np.tanh(raw.div(bound.ref)).mul(bound);
  };

  /** Shift and bounded log-scale, each [batch, dim]. Consumes its arguments. */
  const shiftAndLogScale = (params: MadeParams, x: Array, cond?: Array): [Array, Array] => {
    const out = contextDim > 0 ? net.apply(params, x, cond) : net.apply(params, x);
    return [out.ref.slice([], [], 0), bounded(out.slice([], [], 1))];
  };

  return {
    kind: "maskedAutoregressive",
    eventShape: [dim],
    contextDim,
    init(key, opts = {}) {
      opts.x?.dispose();
      opts.cond?.dispose();
      return net.init(key, opts.dtype ?? np.float32);
    },
    forward(params, x, cond) {
      checkInput(where, [dim], contextDim, x, cond);
      if (contextDim === 0) cond?.dispose();
      const [mu, s] = shiftAndLogScale(params, x.ref, contextDim > 0 ? cond : undefined);
      const z = x.sub(mu).mul(np.exp(s.ref.neg()));
      return [z, s.sum(1).neg()];
    },
    inverse(params, z, cond) {
      checkInput(where, [dim], contextDim, z, cond);
      if (contextDim === 0) cond?.dispose();
      // One sweep in rank order (made.ts): the coordinate of rank k is fixed from outputs that
      // read only coordinates of lower rank, already fixed; its s enters the log-determinant.
      let logDet: Array | null = null;
      const x = net.sweep(
        params,
        z.shape[0],
        (rank, out) => {
          const c = net.order[rank];
          const mu = out.ref.slice([], 0);
          const s = bounded(out.slice([], 1));
          logDet = logDet === null ? s.ref : logDet.add(s.ref);
          return z.ref.slice([], c).mul(np.exp(s)).add(mu);
        },
        contextDim > 0 ? cond : undefined,
      );
      z.dispose();
      return [x, logDet!];
    },
  };
}
