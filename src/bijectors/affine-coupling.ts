/**
 * Affine coupling (RealNVP; Dinh, Sohl-Dickstein & Bengio 2016, "Density
 * estimation using Real NVP", arXiv:1605.08803). With a the masked (`true`)
 * coordinates and b the rest, one conditioner gives [raw, t] = NN(x_a, cond):
 *   s = B * tanh(raw / B)                       (soft clamp to (-B, B), B = scaleBound)
 *   forward: y_a = x_a,  y_b = x_b * exp(s) + t,     log|det J| = sum(s);
 *   inverse: x_a = y_a,  x_b = (y_b - t) * exp(-s),  log|det J| = -sum(s).
 * The bound keeps exp(s) within [e^-B, e^B], which stops one layer from
 * blowing up early in training; tanh(raw / B) * B ~ raw near zero so small
 * scales are unaffected. The conditioner's output layer starts at zero, so the
 * layer starts as the identity.
 */
import { numpy as np, type Array } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { checkInput } from "../core/checks.js";
import { sumEvent } from "../core/util.js";
import { couplingSetup, type CouplingOptions, type CouplingParams } from "./vector-coupling.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** Options of `affineCoupling`: dimension, mask, the MLP conditioner's shape and the log-scale bound. */
export type AffineCouplingOptions = CouplingOptions & {
  /** Bound B on |log-scale|; default 3. */
  scaleBound?: number;
};

/** Parameters of `affineCoupling`: the conditioner MLP. */
export type AffineCouplingParams = CouplingParams;

/** Affine coupling (RealNVP): y_b = x_b * exp(s) + t with s, t from an MLP of x_a (and the context). */
export function affineCoupling(options: AffineCouplingOptions): Bijector<AffineCouplingParams> {
  const where = "affineCoupling";
  const { parts, net, contextDim, nb } = couplingSetup(where, options, 2);
  const bound = options.scaleBound ?? 3;
  if (!(typeof bound === "number" && bound > 0 && Number.isFinite(bound))) {
    throw new Error(
      `${where}: scaleBound must be a positive finite number, got ${jsonExcerpt(bound)}`,
    );
  }
  const eventShape = [options.dim];

  /** Split x, run the conditioner on the pass-through part: [x_a, x_b, s, t]. */
  const condition = (
    params: AffineCouplingParams,
    x: Array,
    cond?: Array,
  ): [Array, Array, Array, Array] => {
    const [xa, xb] = parts.split(x);
    const h = net.apply(params.net, xa.ref, cond); // disposes cond when unconditional
    // The bound as an array of h's dtype: under jit, jax-js 0.1.25 rounds plain
    // JS scalars to float32 (x * (1/3) loses 1e-8 in float64), eager does not.
    const b = np.array(bound, { dtype: h.dtype, device: h.device });
    const raw = h.ref.slice([], [0, nb]);
    const t = h.slice([], [nb, 2 * nb]);
    const s = np.tanh(raw.div(b.ref)).mul(b);
    return [xa, xb, s, t];
  };

  return {
    kind: "affineCoupling",
    eventShape,
    contextDim,
    init(key, options = {}) {
      options.x?.dispose();
      options.cond?.dispose();
      return { net: net.init(key, options.dtype ?? np.float32) };
    },
    forward(params, x, cond) {
      checkInput(where, eventShape, contextDim, x, cond);
      const [xa, xb, s, t] = condition(params, x, cond);
      const yb = xb.mul(np.exp(s.ref)).add(t);
      return [parts.merge(xa, yb), sumEvent(s)];
    },
    inverse(params, y, cond) {
      checkInput(where, eventShape, contextDim, y, cond);
      const [ya, yb, s, t] = condition(params, y, cond);
      const xb = yb.sub(t).mul(np.exp(s.ref.neg()));
      return [parts.merge(ya, xb), sumEvent(s).neg()];
    },
  };
}
