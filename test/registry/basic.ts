import { affine } from "../../src/bijectors/affine.js";
import { chain } from "../../src/bijectors/chain.js";
import { invert } from "../../src/bijectors/invert.js";
import type { RegistryEntry } from "./types.js";

export const basicEntries: RegistryEntry[] = [
  { name: "affine", make: () => affine([3]) },
  { name: "chain(affine, affine)", make: () => chain([affine([3]), affine([3])]) },
  { name: "invert(affine)", make: () => invert(affine([3])) },
];
