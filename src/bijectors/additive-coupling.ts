/**
 * Additive coupling (NICE; Dinh, Krueger & Bengio 2014, "NICE: Non-linear
 * Independent Components Estimation", arXiv:1410.8516). With a the masked
 * (`true`) coordinates and b the rest:
 *   forward: y_a = x_a,  y_b = x_b + t(x_a, cond),   log|det J| = 0;
 *   inverse: x_a = y_a,  x_b = y_b - t(y_a, cond).
 * t is an MLP whose output layer starts at zero, so the layer starts as the
 * identity. Volume-preserving: stack with a scaling layer for a full NICE.
 */
import { numpy as np, type Array } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { checkInput } from "../core/checks.js";
import { couplingSetup, type CouplingOptions, type CouplingParams } from "./vector-coupling.js";

/** Options of `additiveCoupling`: dimension, mask and the MLP conditioner's shape. */
export type AdditiveCouplingOptions = CouplingOptions;

/** Parameters of `additiveCoupling`: the conditioner MLP. */
export type AdditiveCouplingParams = CouplingParams;

/** Additive coupling (NICE): y_b = x_b + t(x_a, cond), volume-preserving. */
export function additiveCoupling(
  options: AdditiveCouplingOptions,
): Bijector<AdditiveCouplingParams> {
  const where = "additiveCoupling";
  const { parts, net, contextDim } = couplingSetup(where, options, 1);
  const eventShape = [options.dim];

  /** Shared by both directions: `sign` = +1 adds the shift, -1 removes it. */
  const run = (
    params: AdditiveCouplingParams,
    x: Array,
    cond: Array | undefined,
    sign: 1 | -1,
  ): [Array, Array] => {
    const [xa, xb] = parts.split(x);
    const batch = xa.shape[0];
    const dtype = xa.dtype;
    const t = net.apply(params.net, xa.ref, cond); // disposes cond when unconditional
    const yb = sign > 0 ? xb.add(t) : xb.sub(t);
    return [parts.merge(xa, yb), np.zeros([batch], { dtype })];
  };

  return {
    kind: "additiveCoupling",
    eventShape,
    contextDim,
    init(key, options = {}) {
      options.x?.dispose();
      options.cond?.dispose();
      return { net: net.init(key, options.dtype ?? np.float32) };
    },
    forward(params, x, cond) {
      checkInput(where, eventShape, contextDim, x, cond);
      return run(params, x, cond, 1);
    },
    inverse(params, y, cond) {
      checkInput(where, eventShape, contextDim, y, cond);
      return run(params, y, cond, -1);
    },
  };
}
