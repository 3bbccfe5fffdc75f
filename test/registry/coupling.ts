import { additiveCoupling } from "../../src/bijectors/additive-coupling.js";
import { affineCoupling } from "../../src/bijectors/affine-coupling.js";
import { alternatingMask, halfMask } from "../../src/bijectors/masks.js";
import type { RegistryEntry } from "./types.js";

const DIM = 5;
const HIDDEN = [8, 8];
const CONTEXT = 3;

/** Half (contiguous: slices), flipped half (swapped concatenation) and alternating (gathers). */
const masks: [string, () => boolean[]][] = [
  ["half", () => halfMask(DIM)],
  ["flipped half", () => halfMask(DIM, true)],
  ["alternating", () => alternatingMask(DIM, 1)],
];

export const couplingEntries: RegistryEntry[] = [
  ...masks.flatMap(([m, mask]): RegistryEntry[] => [
    {
      name: `additiveCoupling (${m} mask)`,
      make: () => additiveCoupling({ dim: DIM, mask: mask(), hidden: HIDDEN }),
    },
    {
      name: `affineCoupling (${m} mask)`,
      make: () => affineCoupling({ dim: DIM, mask: mask(), hidden: HIDDEN }),
    },
  ]),
  {
    name: "additiveCoupling (conditional, alternating mask, tanh)",
    make: () =>
      additiveCoupling({
        dim: DIM,
        mask: alternatingMask(DIM, 0),
        hidden: HIDDEN,
        contextDim: CONTEXT,
        activation: "tanh",
      }),
  },
  {
    name: "affineCoupling (conditional, half mask)",
    make: () =>
      affineCoupling({ dim: DIM, mask: halfMask(DIM), hidden: HIDDEN, contextDim: CONTEXT }),
  },
  {
    name: "affineCoupling (conditional, alternating mask, gelu, scaleBound 1)",
    make: () =>
      affineCoupling({
        dim: DIM,
        mask: alternatingMask(DIM, 0),
        hidden: HIDDEN,
        contextDim: CONTEXT,
        activation: "gelu",
        scaleBound: 1,
      }),
  },
];
