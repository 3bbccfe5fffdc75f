import { permute, reversePermutation, randomPermutation } from "../../src/bijectors/permute.js";
import { sigmoid, logit, tanh } from "../../src/bijectors/elementwise.js";
import { actNorm } from "../../src/bijectors/actnorm.js";
import { luLinear } from "../../src/bijectors/lu-linear.js";
import { batchNorm, type BatchNormParams } from "../../src/bijectors/batch-norm.js";
import { perturbParams } from "../helpers/arrays.js";
import { splitKey } from "../../src/core/keys.js";
import { numpy as np, random, type Array } from "@jax-js/jax";
import type { Params } from "../../src/core/types.js";
import type { RegistryEntry } from "./types.js";

/**
 * Batch norm: perturb logGamma, beta and the running mean additively, and the
 * running variance multiplicatively (var * exp(0.3 * N(0, 1))) so it stays positive.
 */
function perturbBatchNorm(params: Params, key: Array): Params {
  const { logGamma, beta, state } = params as BatchNormParams;
  const [k1, k2] = splitKey(key, 2);
  const moved = perturbParams({ logGamma, beta, mean: state.mean }, k1) as { [k: string]: Array };
  const noise = random.normal(k2, state.var.shape).astype(state.var.dtype).mul(0.3);
  return {
    logGamma: moved.logGamma,
    beta: moved.beta,
    state: { mean: moved.mean, var: state.var.mul(np.exp(noise)) },
  };
}

export const layerEntries: RegistryEntry[] = [
  { name: "actNorm([4]) with data init", make: () => actNorm([4]), dataInit: true },
  { name: "actNorm([2, 2, 3]) with data init", make: () => actNorm([2, 2, 3]), dataInit: true },
  { name: "luLinear([4])", make: () => luLinear([4], { seed: 1 }) },
  { name: "luLinear([2, 2, 3]) (1x1 convolution)", make: () => luLinear([2, 2, 3], { seed: 2 }) },
  { name: "luLinear([3], identity init)", make: () => luLinear([3], { init: "identity" }) },
  { name: "permute([2, 0, 3, 1])", make: () => permute([2, 0, 3, 1]) },
  { name: "reversePermutation(5)", make: () => reversePermutation(5) },
  { name: "randomPermutation(6, seed 3)", make: () => randomPermutation(6, 3) },
  {
    name: "randomPermutation(3, seed 1) over channels of [2, 2, 3]",
    make: () => randomPermutation(3, 1, { eventShape: [2, 2, 3] }),
  },
  { name: "batchNorm(4) (evaluation mode)", make: () => batchNorm(4), perturb: perturbBatchNorm },
  { name: "sigmoid([3])", make: () => sigmoid([3]), inverseExtremes: [0, 1] },
  { name: "tanh([3])", make: () => tanh([3]), inverseExtremes: [-1, 1] },
  {
    name: "logit([3])",
    make: () => logit([3]),
    domain: [0.01, 0.99],
    extremes: [1e-6, 1 - 1e-6, 0, 1],
    inverseExtremes: [-1e3, 1e3],
  },
];
