/** Every bijector the suite proves. Add an entry (or a file of entries) here. */
import type { RegistryEntry } from "./types.js";
import { basicEntries } from "./basic.js";
import { couplingEntries } from "./coupling.js";
import { autoregressiveEntries } from "./autoregressive.js";
import { layerEntries } from "./layers.js";
import { imageEntries } from "./image.js";
import { splineEntries } from "./spline.js";

export const registry: RegistryEntry[] = [
  ...basicEntries,
  ...couplingEntries,
  ...autoregressiveEntries,
  ...layerEntries,
  ...imageEntries,
  ...splineEntries,
];
export type { RegistryEntry };
