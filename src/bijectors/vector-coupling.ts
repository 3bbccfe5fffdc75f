/**
 * What the three vector couplings (additive, affine, spline) share: the common fields of their
 * options and their set-up, the checked mask split and an MLP conditioner from the
 * passed-through coordinates (and the context) to `perValue` outputs per transformed one.
 */
import { assertPositiveInt } from "../core/checks.js";
import { mlp, type Activation, type Mlp, type MlpParams } from "../nn/mlp.js";
import { maskSplit, validateMask, type Mask, type MaskSplit } from "./masks.js";

/** The options every vector coupling takes: dimension, mask and the MLP conditioner's shape. */
export interface CouplingOptions {
  dim: number;
  /** `true` = passed through and conditions the transform; see masks.ts. */
  mask: Mask;
  /** Hidden widths of the conditioner MLP. */
  hidden: number[];
  /** Context width; default 0 (unconditional). */
  contextDim?: number;
  activation?: Activation;
}

/** Parameters of a vector coupling: its conditioner MLP. */
export type CouplingParams = { net: MlpParams };

/** The checked split of `options.mask` and the conditioner; errors name `where`. */
export function couplingSetup(
  where: string,
  options: CouplingOptions,
  perValue: number,
): { parts: MaskSplit; net: Mlp; contextDim: number; nb: number } {
  const { dim, mask, hidden, activation } = options;
  const contextDim = options.contextDim ?? 0;
  assertPositiveInt(where, "dim", dim);
  validateMask(where, mask, dim);
  const parts = maskSplit(mask);
  const nb = parts.transformIndices.length;
  const net = mlp({
    inDim: parts.passIndices.length,
    outDim: perValue * nb,
    hidden,
    contextDim,
    activation,
  });
  return { parts, net, contextDim, nb };
}
