/** Every bijector the suite proves. Add an entry (or a file of entries) here. */
import type { RegistryEntry } from "./types.js";
import { basicEntries } from "./basic.js";
import { autoregressiveEntries } from "./autoregressive.js";

export const registry: RegistryEntry[] = [...basicEntries, ...autoregressiveEntries];
export type { RegistryEntry };
