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
import { assertPositiveInt, checkInput } from "../core/checks.js";
import { sumEvent } from "../core/util.js";
import { mlp, type Activation, type MlpParams } from "../nn/mlp.js";
import { maskSplit, validateMask, type Mask } from "./masks.js";
import { rationalQuadraticSpline, resolveSplineOptions, splineParamCount, type SplineOptions } from "./rational-quadratic.js";

export type SplineCouplingOptions = SplineOptions & {
  dim: number;
  /** `true` = passed through and conditions the transform; see masks.ts. */
  mask: Mask;
  hidden: number[];
  contextDim?: number;
  activation?: Activation;
};

export type SplineCouplingParams = { net: MlpParams };

export function splineCoupling(options: SplineCouplingOptions): Bijector<SplineCouplingParams> {
  const where = "splineCoupling";
  const { dim, mask, hidden, activation } = options;
  const contextDim = options.contextDim ?? 0;
  assertPositiveInt(where, "dim", dim);
  validateMask(where, mask, dim);
  const spline = resolveSplineOptions(where, options);
  const perValue = splineParamCount(spline.bins);
  const parts = maskSplit(mask);
  const nb = parts.transformIndices.length;
  const net = mlp({ inDim: parts.passIndices.length, outDim: nb * perValue, hidden, contextDim, activation });
  const eventShape = [dim];

  const apply = (params: SplineCouplingParams, x: Array, cond: Array | undefined, inverse: boolean): [Array, Array] => {
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
