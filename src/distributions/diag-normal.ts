/**
 * A normal with diagonal covariance and learnable location and log-scale:
 *   z = loc + exp(logScale) * eps,
 *   log p(z) = sum_i (-0.5 u_i^2 - logScale_i - 0.5 log(2 pi)),  u = (z - loc) exp(-logScale).
 * Starts as the standard normal (loc = 0, logScale = 0).
 */
import { numpy as np, random, type Array } from "@jax-js/jax";
import { sumEvent } from "../core/util.js";
import { checkEvent, checkSample, constant, HALF_LOG_2PI, type Distribution } from "./types.js";

/** Parameters of `diagNormal`: location and log-scale. */
export type DiagNormalParams = { loc: Array; logScale: Array };

/** A normal with diagonal covariance and learnable location and log-scale, starting as N(0, I). */
export function diagNormal(eventShape: number[]): Distribution<DiagNormalParams> {
  const where = "diagNormal";
  const size = eventShape.reduce((a, d) => a * d, 1);
  return {
    kind: "diagNormal",
    eventShape,
    init(key, options = {}) {
      key.dispose();
      const dtype = options.dtype ?? np.float32;
      return { loc: np.zeros(eventShape, { dtype }), logScale: np.zeros(eventShape, { dtype }) };
    },
    logProb({ loc, logScale }, z) {
      checkEvent(`${where}.logProb`, eventShape, z);
      const dtype = loc.dtype;
      const u = z.astype(dtype).sub(loc).mul(np.exp(logScale.ref.neg()));
      // The log-scale term is the same for every row: sum it once, broadcast over the batch.
      return sumEvent(u.ref.mul(u))
        .mul(-0.5)
        .sub(logScale.sum())
        .sub(constant(size * HALF_LOG_2PI, dtype));
    },
    sample({ loc, logScale }, key, n, options = {}) {
      const t = checkSample(`${where}.sample`, n, options);
      const dtype = loc.dtype;
      const eps = random.normal(key, [n, ...eventShape]).astype(dtype);
      const scale = t === 1 ? np.exp(logScale) : np.exp(logScale).mul(constant(t, dtype));
      return eps.mul(scale).add(loc);
    },
  };
}
