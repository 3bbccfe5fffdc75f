/**
 * Spline flows. A small tail bound (1.5) puts standard-normal inputs on both sides of it,
 * so the suite sees the spline, the identity tails and the switch between them; the
 * extremes go far past the bound in both directions.
 */
import { splineCoupling } from "../../src/bijectors/spline-coupling.js";
import { splineAutoregressive } from "../../src/bijectors/spline-autoregressive.js";
import { alternatingMask, halfMask } from "../../src/bijectors/masks.js";
import type { RegistryEntry } from "./types.js";

const DIM = 4;
const HIDDEN = [8];
const TAIL = 1.5;
const extremes = {
  extremes: [-1e3, -TAIL, 0, TAIL, 1e3],
  inverseExtremes: [-1e3, -TAIL, 0, TAIL, 1e3],
};

export const splineEntries: RegistryEntry[] = [
  {
    name: "splineCoupling (half mask)",
    make: () =>
      splineCoupling({ dim: DIM, mask: halfMask(DIM), hidden: HIDDEN, bins: 5, tailBound: TAIL }),
    ...extremes,
  },
  {
    name: "splineCoupling (conditional, alternating mask, tanh, 3 bins)",
    make: () =>
      splineCoupling({
        dim: DIM,
        mask: alternatingMask(DIM, 1),
        hidden: HIDDEN,
        contextDim: 3,
        activation: "tanh",
        bins: 3,
        tailBound: TAIL,
      }),
    ...extremes,
  },
  {
    name: "splineAutoregressive (natural)",
    make: () => splineAutoregressive({ dim: DIM, hidden: [12], bins: 4, tailBound: TAIL }),
    ...extremes,
  },
  {
    name: "splineAutoregressive (random order, conditional)",
    make: () =>
      splineAutoregressive({
        dim: DIM,
        hidden: [12],
        contextDim: 2,
        order: "random",
        seed: 3,
        bins: 6,
        tailBound: TAIL,
      }),
    ...extremes,
  },
];
