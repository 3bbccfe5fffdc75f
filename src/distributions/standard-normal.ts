/**
 * The standard normal N(0, I) over an event of any shape, with no parameters:
 *   log p(z) = sum_i (-0.5 z_i^2 - 0.5 log(2 pi)).
 * Its params are `{}`; samples are float32 unless `sample(..., { dtype })` says otherwise.
 */
import { numpy as np, random } from "@jax-js/jax";
import { sumEvent, floatDtype } from "../core/util.js";
import { checkEvent, checkSample, constant, HALF_LOG_2PI, type Distribution } from "./types.js";

/** Parameters of `standardNormal`: none. */
export type StandardNormalParams = Record<string, never>;

/** The standard normal N(0, I) over an event of any shape, without parameters. */
export function standardNormal(eventShape: number[]): Distribution<StandardNormalParams> {
  const where = "standardNormal";
  const size = eventShape.reduce((a, d) => a * d, 1);
  return {
    kind: "standardNormal",
    eventShape,
    init(key) {
      key.dispose();
      return {};
    },
    logProb(_params, z) {
      checkEvent(`${where}.logProb`, eventShape, z);
      const dtype = floatDtype(z);
      z = z.astype(dtype);
      return sumEvent(z.ref.mul(z))
        .mul(-0.5)
        .sub(constant(size * HALF_LOG_2PI, dtype));
    },
    sample(_params, key, n, options = {}) {
      const t = checkSample(`${where}.sample`, n, options);
      const eps = random.normal(key, [n, ...eventShape]).astype(options.dtype ?? np.float32);
      return t === 1 ? eps : eps.mul(constant(t, eps.dtype));
    },
  };
}
