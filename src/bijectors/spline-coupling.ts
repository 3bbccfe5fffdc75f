/**
 * Rational-quadratic spline coupling (NSF-C; Durkan, Bekasov, Murray & Papamakarios 2019,
 * "Neural Spline Flows", arXiv:1906.04032). With a the masked (`true`) coordinates and b the
 * rest, one conditioner reads x_a (and the context) and gives every coordinate of b the
 * 3K - 1 parameters of its own monotone spline (rational-quadratic.ts):
 *   forward: y_a = x_a,  y_b = g(x_b; NN(x_a, cond)),   log|det J| = sum log g'(x_b);
 *   inverse: x_a = y_a,  x_b = g^-1(y_b; NN(y_a, cond)).
 * Both directions are one pass of the conditioner. The conditioner's output layer starts at
 * zero, so every spline, and the layer, starts as the identity.
 */
import { numpy as np, type Array } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { checkInput } from "../core/checks.js";
import { sumEvent } from "../core/util.js";
import { couplingSetup, type CouplingOptions, type CouplingParams } from "./vector-coupling.js";
import {
  rationalQuadraticSpline,
  resolveSplineOptions,
  splineParamCount,
  type SplineOptions,
} from "./rational-quadratic.js";

/** Options of `splineCoupling`: the spline's shape, dimension, mask and the MLP conditioner's shape. */
export type SplineCouplingOptions = SplineOptions & CouplingOptions;

/** Parameters of `splineCoupling`: the conditioner MLP. */
export type SplineCouplingParams = CouplingParams;

/** Rational-quadratic spline coupling (NSF-C): each coordinate of b goes through its own monotone spline from an MLP of x_a. */
export function splineCoupling(options: SplineCouplingOptions): Bijector<SplineCouplingParams> {
  const where = "splineCoupling";
  const spline = resolveSplineOptions(where, options);
  const perValue = splineParamCount(spline.bins);
  const { parts, net, contextDim, nb } = couplingSetup(where, options, perValue);
  const eventShape = [options.dim];

  const apply = (
    params: SplineCouplingParams,
    x: Array,
    cond: Array | undefined,
    inverse: boolean,
  ): [Array, Array] => {
    checkInput(where, eventShape, contextDim, x, cond);
    const [xa, xb] = parts.split(x);
    const raw = net.apply(params.net, xa.ref, cond).reshape([xb.shape[0], nb, perValue]); // disposes cond when unconditional
    const [yb, logSlope] = rationalQuadraticSpline(raw, xb, spline, inverse);
    return [parts.merge(xa, yb), sumEvent(logSlope)];
  };

  return {
    kind: "splineCoupling",
    eventShape,
    contextDim,
    init(key, opts = {}) {
      opts.x?.dispose();
      opts.cond?.dispose();
      return { net: net.init(key, opts.dtype ?? np.float32) };
    },
    forward: (params, x, cond) => apply(params, x, cond, false),
    inverse: (params, y, cond) => apply(params, y, cond, true),
  };
}
