/** Every bijector the suite proves. Add an entry (or a file of entries) here. */
import type { RegistryEntry } from "./types.js";
import { basicEntries } from "./basic.js";
import { layerEntries } from "./layers.js";

export const registry: RegistryEntry[] = [...basicEntries, ...layerEntries];
export type { RegistryEntry };
