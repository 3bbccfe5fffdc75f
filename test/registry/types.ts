import type { Array } from "@jax-js/jax";
import type { Bijector, Params } from "../../src/core/types.js";

/** One bijector under test. Adding an entry is all it takes to run the whole suite on it. */
export interface RegistryEntry {
  name: string;
  make: () => Bijector<any>;
  /** Inputs are drawn uniformly from this interval; default: standard normal. */
  domain?: [number, number];
  /** Forward inputs that must give finite outputs; default [-1e3, 1e3] for unbounded domains. */
  extremes?: number[];
  /** Values of the inverse's input that must give finite outputs; default: none. */
  inverseExtremes?: number[];
  /**
   * Turn freshly initialised (often identity) parameters into generic ones so the
   * tests see a non-trivial map. Default: add 0.3 * N(0, 1) to every leaf.
   */
  perturb?: (params: Params, key: Array) => Params;
  /** Initialise with a data batch (data-dependent initialisation). */
  dataInit?: boolean;
}
