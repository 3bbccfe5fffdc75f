/**
 * Rational-quadratic spline autoregressive layer (NSF-AR; Durkan, Bekasov, Murray &
 * Papamakarios 2019, "Neural Spline Flows", arXiv:1906.04032): a MAF whose affine
 * transformer is a monotone spline. A MADE network gives, for each coordinate i, the
 * 3K - 1 parameters of its spline from the coordinates before i in the ordering (and the
 * context):
 *   forward (data -> latent): z_i = g(x_i; MADE(x_<i)),  log|det J| = sum_i log g'(x_i).
 * The density direction is one pass of the network; the inverse (sampling) fixes one
 * coordinate after another in one sweep that reuses the network's partial sums
 * (`Made.sweep`), each step inverting one spline. Starts as the identity (zero output layer).
 */
import { numpy as np, type Array } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { checkInput } from "../core/checks.js";
import { made, type MadeOrder, type MadeParams } from "../nn/made.js";
import {
  rationalQuadraticSpline,
  resolveSplineOptions,
  splineParamCount,
  type SplineOptions,
} from "./rational-quadratic.js";

/** Options of `splineAutoregressive`: the spline's shape and the MADE conditioner's. */
export interface SplineAutoregressiveOptions extends SplineOptions {
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
}

/** Parameters of `splineAutoregressive`: the MADE conditioner. */
export type SplineAutoregressiveParams = MadeParams;

/** Rational-quadratic spline autoregressive layer (NSF-AR): a MAF whose transformer is a monotone spline. */
export function splineAutoregressive(
  options: SplineAutoregressiveOptions,
): Bijector<SplineAutoregressiveParams> {
  const where = "splineAutoregressive";
  const { dim } = options;
  const contextDim = options.contextDim ?? 0;
  const spline = resolveSplineOptions(where, options);
  const net = made({
    dim,
    hidden: options.hidden,
    contextDim,
    outputsPerDim: splineParamCount(spline.bins),
    order: options.order,
    seed: options.seed,
    activation: options.activation,
  });

  return {
    kind: "splineAutoregressive",
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
      const raw = contextDim > 0 ? net.apply(params, x.ref, cond) : net.apply(params, x.ref); // [batch, dim, 3K - 1]
      const [z, logSlope] = rationalQuadraticSpline(raw, x, spline);
      return [z, logSlope.sum(1)];
    },
    inverse(params, z, cond) {
      checkInput(where, [dim], contextDim, z, cond);
      if (contextDim === 0) cond?.dispose();
      // One sweep in rank order (made.ts): the coordinate of rank k is fixed by inverting its
      // spline, whose parameters read only coordinates of lower rank, already fixed.
      let logDet: Array | null = null;
      const x = net.sweep(
        params,
        z.shape[0],
        (rank, out) => {
          const [xc, logSlope] = rationalQuadraticSpline(
            out,
            z.ref.slice([], net.order[rank]),
            spline,
            true,
          );
          logDet = logDet === null ? logSlope : logDet.add(logSlope);
          return xc;
        },
        contextDim > 0 ? cond : undefined,
      );
      z.dispose();
      return [x, logDet!];
    },
  };
}
