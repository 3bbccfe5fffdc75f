import { random, type Array } from "@jax-js/jax";

/** Split a PRNG key into `n` keys (consumes `key`). */
export function splitKey(key: Array, n: number): Array[] {
  // Spread the whole split array: destructuring only a few would leak the rest.
  return [...random.split(key, n)];
}
