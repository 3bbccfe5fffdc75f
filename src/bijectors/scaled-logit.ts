/**
 * The image preprocessing of RealNVP as a bijector (Dinh et al. 2016, section 4.1):
 *   forward: y = logit(alpha + (1 - 2 alpha) x), x in [0, 1)  (dequantised pixels / 256)
 * so that a flow's log-density of x counts the transform's log-det, and bits
 * per dimension follow directly from logProb (plus the constant D ln 256 of
 * the division by 256). No parameters.
 */
import type { Bijector } from "../core/types.js";
import { parameterFree } from "./parameter-free.js";
import { logitTransform, logitInverse, DEFAULT_LOGIT_ALPHA } from "../data/dequantize.js";

/** RealNVP's image preprocessing as a bijector: y = logit(alpha + (1 - 2 alpha) x) for x in [0, 1). */
export function scaledLogit(
  eventShape: number[],
  alpha = DEFAULT_LOGIT_ALPHA,
): Bijector<Record<string, never>> {
  const where = "scaledLogit";
  if (!(alpha >= 0 && alpha < 0.5))
    throw new Error(`${where}: alpha must be in [0, 0.5), got ${alpha}`);
  return parameterFree({
    kind: where,
    eventShape,
    forward: (x) => logitTransform(x, alpha),
    inverse: (y) => logitInverse(y, alpha),
  });
}
