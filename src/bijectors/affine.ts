/**
 * Elementwise affine map with learnable location and log-scale:
 *   forward: y = loc + exp(logScale) * x,   log|det J| = sum(logScale).
 * Starts as the identity (loc = 0, logScale = 0).
 */
import { numpy as np, type Array } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { checkInput } from "../core/checks.js";
import { discardInitInputs } from "../core/util.js";

/** Parameters of `affine`: location and log-scale, each of the event shape. */
export type AffineParams = { loc: Array; logScale: Array };

/** Elementwise affine map y = loc + exp(logScale) * x over `eventShape`, starting as the identity. */
export function affine(eventShape: number[]): Bijector<AffineParams> {
  const where = "affine";
  const batchOnes = (x: Array) => np.ones([x.shape[0]], { dtype: x.dtype });
  const total = (logScale: Array, x: Array) => {
    // Sum over the event, then broadcast to the batch.
    const s = logScale.sum();
    return batchOnes(x).mul(s);
  };
  return {
    kind: "affine",
    eventShape,
    contextDim: 0,
    init(key, options = {}) {
      discardInitInputs(key, options);
      const dtype = options.dtype ?? np.float32;
      return { loc: np.zeros(eventShape, { dtype }), logScale: np.zeros(eventShape, { dtype }) };
    },
    forward({ loc, logScale }, x, cond) {
      checkInput(where, eventShape, 0, x);
      cond?.dispose();
      const logDet = total(logScale.ref, x);
      return [x.mul(np.exp(logScale)).add(loc), logDet];
    },
    inverse({ loc, logScale }, y, cond) {
      checkInput(where, eventShape, 0, y);
      cond?.dispose();
      const logDet = total(logScale.ref, y).neg();
      return [y.sub(loc).mul(np.exp(logScale.neg())), logDet];
    },
  };
}
