/**
 * The shell of a bijector without parameters (elementwise maps, permutations,
 * squeeze, preprocessing): input checks, an unused context released, nothing
 * to initialise. `forward` / `inverse` get only the input and return
 * [output, logDet]; each consumes its input.
 */
import type { Array } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { checkInput } from "../core/checks.js";
import { discardInitInputs } from "../core/util.js";

export type NoParams = Record<string, never>;

export interface ParameterFreeSpec {
  kind: string;
  eventShape: number[];
  /** Shape of the forward output when it differs from `eventShape` (squeeze). */
  outputShape?: number[];
  forward(x: Array): [Array, Array];
  inverse(y: Array): [Array, Array];
}

export function parameterFree(spec: ParameterFreeSpec): Bijector<NoParams> {
  const { kind, eventShape, outputShape } = spec;
  return {
    kind,
    eventShape,
    ...(outputShape ? { outputShape } : {}),
    contextDim: 0,
    init(key, options) {
      discardInitInputs(key, options);
      return {};
    },
    forward(_params, x, cond) {
      checkInput(kind, eventShape, 0, x);
      cond?.dispose();
      return spec.forward(x);
    },
    inverse(_params, y, cond) {
      checkInput(`${kind}.inverse`, outputShape ?? eventShape, 0, y);
      cond?.dispose();
      return spec.inverse(y);
    },
  };
}
