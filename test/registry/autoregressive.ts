import { maskedAutoregressive } from "../../src/bijectors/masked-autoregressive.js";
import { inverseAutoregressive } from "../../src/bijectors/inverse-autoregressive.js";
import type { RegistryEntry } from "./types.js";

const orders = ["natural", "reversed", "random"] as const;

export const autoregressiveEntries: RegistryEntry[] = [
  ...orders.map((order) => ({
    name: `maskedAutoregressive(${order})`,
    make: () => maskedAutoregressive({ dim: 4, hidden: [16], order, seed: 7 }),
  })),
  ...orders.map((order) => ({
    name: `maskedAutoregressive(${order}, conditional)`,
    make: () => maskedAutoregressive({ dim: 4, hidden: [16], contextDim: 2, order, seed: 7 }),
  })),
  {
    name: "maskedAutoregressive(tanh, two hidden layers, scaleBound 1.7)",
    make: () =>
      maskedAutoregressive({
        dim: 3,
        hidden: [8, 8],
        order: "random",
        seed: 3,
        activation: "tanh",
        scaleBound: 1.7,
      }),
  },
  ...orders.map((order) => ({
    name: `inverseAutoregressive(${order})`,
    make: () => inverseAutoregressive({ dim: 4, hidden: [16], order, seed: 7 }),
  })),
  ...orders.map((order) => ({
    name: `inverseAutoregressive(${order}, conditional)`,
    make: () => inverseAutoregressive({ dim: 4, hidden: [16], contextDim: 2, order, seed: 7 }),
  })),
];
