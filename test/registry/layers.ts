import { permute, reversePermutation, randomPermutation } from "../../src/bijectors/permute.js";
import { sigmoid, logit, tanh } from "../../src/bijectors/elementwise.js";
import type { RegistryEntry } from "./types.js";

export const layerEntries: RegistryEntry[] = [
  { name: "permute([2, 0, 3, 1])", make: () => permute([2, 0, 3, 1]) },
  { name: "reversePermutation(5)", make: () => reversePermutation(5) },
  { name: "randomPermutation(6, seed 3)", make: () => randomPermutation(6, 3) },
  { name: "randomPermutation(3, seed 1) over channels of [2, 2, 3]", make: () => randomPermutation(3, 1, { eventShape: [2, 2, 3] }) },
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
