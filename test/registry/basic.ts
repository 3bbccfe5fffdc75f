import { affine } from "../../src/bijectors/affine.js";
import { chain } from "../../src/bijectors/chain.js";
import { invert } from "../../src/bijectors/invert.js";
import { scaledLogit } from "../../src/bijectors/scaled-logit.js";
import type { RegistryEntry } from "./types.js";

export const basicEntries: RegistryEntry[] = [
  { name: "affine", make: () => affine([3]) },
  { name: "chain(affine, affine)", make: () => chain([affine([3]), affine([3])]) },
  { name: "invert(affine)", make: () => invert(affine([3])) },
  // Dequantised pixels lie in [0, 1): the ends must stay finite.
  {
    name: "scaledLogit [2, 2, 1]",
    make: () => scaledLogit([2, 2, 1]),
    domain: [0, 1],
    extremes: [0, 0.999999],
    inverseExtremes: [-1e3, 1e3],
  },
];
