/**
 * A mixture of K diagonal Gaussians over [dim], with learnable mixture logits,
 * means and log-scales:
 *   log p(z) = logsumexp_k (log w_k + log N(z; mean_k, diag(exp(2 logScale_k)))),
 *   w = softmax(logits).
 * Sampling draws a component (categorical on the logits), then a normal from it;
 * the temperature scales each component's standard deviation (not the weights).
 * Means start at N(0, 1) draws: identical components would get identical
 * gradients and never separate.
 */
import { numpy as np, nn, random, type Array } from "@jax-js/jax";
import { assertPositiveInt } from "../core/checks.js";
import { splitKey } from "../core/keys.js";
import { checkEvent, checkSample, constant, HALF_LOG_2PI, type Distribution } from "./types.js";

/** Parameters of `gaussianMixture`. */
export type GaussianMixtureParams = {
  /** [K] unnormalised log mixture weights. */
  logits: Array;
  /** [K, dim] component means. */
  means: Array;
  /** [K, dim] component log standard deviations. */
  logScales: Array;
};

/** A mixture of `components` diagonal Gaussians over [dim] with learnable weights, means and log-scales. */
export function gaussianMixture(
  dim: number,
  components: number,
): Distribution<GaussianMixtureParams> {
  const where = "gaussianMixture";
  assertPositiveInt(where, "dim", dim);
  assertPositiveInt(where, "components", components);
  const eventShape = [dim];
  return {
    kind: "gaussianMixture",
    eventShape,
    init(key, options = {}) {
      const dtype = options.dtype ?? np.float32;
      return {
        logits: np.zeros([components], { dtype }),
        means: random.normal(key, [components, dim]).astype(dtype),
        logScales: np.zeros([components, dim], { dtype }),
      };
    },
    logProb({ logits, means, logScales }, z) {
      checkEvent(`${where}.logProb`, eventShape, z);
      const batch = z.shape[0];
      const dtype = means.dtype;
      // [batch, 1, dim] against [K, dim] -> [batch, K, dim]
      const u = z
        .astype(dtype)
        .reshape([batch, 1, dim])
        .sub(means)
        .mul(np.exp(logScales.ref.neg()));
      const perComponent = u.ref
        .mul(u)
        .mul(-0.5)
        .sum(2)
        .sub(logScales.sum(1)) // [K]
        .sub(constant(dim * HALF_LOG_2PI, dtype))
        .add(nn.logSoftmax(logits)); // [K]
      return nn.logsumexp(perComponent, 1);
    },
    sample({ logits, means, logScales }, key, n, options = {}) {
      const t = checkSample(`${where}.sample`, n, options);
      const dtype = means.dtype;
      const [kComponent, kNoise] = splitKey(key, 2);
      const k = random.categorical(kComponent, logits, { shape: [n] });
      const mu = np.take(means, k.ref, 0); // [n, dim]
      const scale = np.exp(np.take(logScales, k, 0));
      const eps = random.normal(kNoise, [n, dim]).astype(dtype);
      return eps.mul(t === 1 ? scale : scale.mul(constant(t, dtype))).add(mu);
    },
  };
}
