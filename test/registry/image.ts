import { squeeze } from "../../src/bijectors/squeeze.js";
import { chain } from "../../src/bijectors/chain.js";
import { invert } from "../../src/bijectors/invert.js";
import { luLinear } from "../../src/bijectors/lu-linear.js";
import { multiScale } from "../../src/bijectors/split.js";
import { testImageCoupling as coupling, testPrior } from "../helpers/image-conditioner.js";
import { variationalDequantization } from "../../src/bijectors/variational-dequantization.js";
import { perturbParams } from "../helpers/arrays.js";
import type { RegistryEntry } from "./types.js";

const CONTEXT = 2;

/** Glow-style 2-level stack on [4, 4, 2]: level 1 on [4, 4, 2], squeeze + split, level 2 on [2, 2, 4]. */
function glowStack(options: { prior?: boolean; contextDim?: number } = {}) {
  const { contextDim } = options;
  const level1 = chain([
    coupling([4, 4, 2], "checkerboard", 0, { contextDim }),
    coupling([4, 4, 2], "channel", 1, { contextDim }),
  ]);
  const level2 = chain([
    coupling([2, 2, 4], "channel", 0, { contextDim }),
    coupling([2, 2, 4], "checkerboard", 1, { contextDim }),
  ]);
  const prior = options.prior ? testPrior([2, 2, 4], contextDim) : undefined;
  return multiScale({ levels: [{ bijector: level1, prior }, level2] });
}

export const imageEntries: RegistryEntry[] = [
  // Dequantised pixels b in [0, 1): the pixel floor(256 b) is kept, the noise within it transformed.
  {
    name: "variationalDequantization [3, 3, 2]",
    make: () => variationalDequantization({ shape: [3, 3, 2], hidden: 4, blocks: 1 }),
    domain: [0, 1],
    extremes: [0, 0.999999],
    inverseExtremes: [0, 0.999999],
    // A float32 y = (pixel + u) / 256 resolves u only to ~1.5e-5: where the default 0.3 kick to
    // every ResNet weight drives noise scales to e^+-3, u lands within that of its cell edge and
    // the float32 round trip of the log-det drifts by ~7e-3 nats (float64 is exact). A 0.1 kick
    // still gives scales and shifts far from the identity.
    perturb: (p, k) => perturbParams(p, k, 0.1),
  },
  { name: "squeeze([4, 4, 2])", make: () => squeeze([4, 4, 2]) },
  { name: "invert(squeeze([4, 4, 2])) (depth-to-space)", make: () => invert(squeeze([4, 4, 2])) },
  {
    name: "chain(squeeze([4, 4, 2]), luLinear([2, 2, 8]))",
    make: () => chain([squeeze([4, 4, 2]), luLinear([2, 2, 8], { seed: 4 })]),
  },
  ...([0, 1] as const).flatMap((parity): RegistryEntry[] => [
    {
      name: `imageAffineCoupling(checkerboard, parity ${parity}) [4, 4, 2]`,
      make: () => coupling([4, 4, 2], "checkerboard", parity),
    },
    {
      name: `imageAffineCoupling(channel, parity ${parity}) [4, 4, 3]`,
      make: () => coupling([4, 4, 3], "channel", parity),
    },
  ]),
  {
    name: "imageAffineCoupling(additive, checkerboard) [4, 4, 2]",
    make: () => coupling([4, 4, 2], "checkerboard", 1, { additive: true }),
  },
  {
    name: "imageAffineCoupling(additive, channel) [2, 2, 4]",
    make: () => coupling([2, 2, 4], "channel", 0, { additive: true }),
  },
  {
    name: "imageAffineCoupling(checkerboard, conditional, scaleBound 1) [4, 4, 2]",
    make: () => coupling([4, 4, 2], "checkerboard", 0, { contextDim: CONTEXT, scaleBound: 1 }),
  },
  {
    name: "imageAffineCoupling(channel, conditional) [4, 4, 2]",
    make: () => coupling([4, 4, 2], "channel", 1, { contextDim: CONTEXT }),
  },
  { name: "multiScale([4, 4, 2], 2 levels, plain factor-out)", make: () => glowStack() },
  {
    name: "multiScale([4, 4, 2], 2 levels, learned prior)",
    make: () => glowStack({ prior: true }),
  },
  {
    name: "multiScale([4, 4, 2], 2 levels, learned prior, conditional)",
    make: () => glowStack({ prior: true, contextDim: CONTEXT }),
  },
  {
    // RealNVP's scale: checkerboard couplings, squeeze, channel coupling, then factor out.
    name: "multiScale([4, 4, 1], RealNVP order, squeeze inside the level)",
    make: () =>
      multiScale({
        squeeze: false,
        levels: [
          chain([
            coupling([4, 4, 1], "checkerboard", 0),
            coupling([4, 4, 1], "checkerboard", 1),
            squeeze([4, 4, 1]),
            coupling([2, 2, 4], "channel", 0),
          ]),
          chain([coupling([2, 2, 2], "checkerboard", 0), coupling([2, 2, 2], "channel", 1)]),
        ],
      }),
  },
];
