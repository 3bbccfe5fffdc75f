/**
 * Test-only image conditioner (the real conv/ResNet conditioners live in
 * src/nn): an MLP over the whole flattened image, [B, H, W, Cin] (+ context
 * [B, Cc], concatenated, i.e. broadcast to every pixel's outputs) ->
 * [B, H, W, Cout]. Every output sees every input pixel, so checkerboard
 * couplings get non-trivial cross-pixel Jacobians. Output layer zero-initialised.
 */
import type { Array, DType } from "@jax-js/jax";
import { mlp, type MlpParams } from "../../src/nn/mlp.js";
import {
  imageAffineCoupling,
  imageCouplingChannels,
  type ImageConditioner,
  type ImageCouplingMask,
} from "../../src/bijectors/image-coupling.js";

export function denseImageConditioner(options: {
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  hidden?: number[];
  contextDim?: number;
}): ImageConditioner<MlpParams> {
  const { height, width, inChannels, outChannels } = options;
  const contextDim = options.contextDim ?? 0;
  const net = mlp({
    inDim: height * width * inChannels,
    outDim: height * width * outChannels,
    hidden: options.hidden ?? [8],
    contextDim,
    activation: "tanh",
  });
  return {
    contextDim,
    init: (key: Array, dtype?: DType) => net.init(key, dtype),
    apply(params, x, cond) {
      const batch = x.shape[0];
      return net
        .apply(params, x.reshape([batch, -1]), cond)
        .reshape([batch, height, width, outChannels]);
    },
  };
}

/** An image coupling on `shape` with a dense test conditioner sized for it. */
export function testImageCoupling(
  shape: number[],
  mask: ImageCouplingMask,
  parity: 0 | 1,
  options: { contextDim?: number; additive?: boolean; scaleBound?: number; hidden?: number[] } = {},
) {
  const { additive, scaleBound, contextDim, hidden } = options;
  const { inChannels, outChannels } = imageCouplingChannels({ shape, mask, parity, additive });
  const conditioner = denseImageConditioner({
    height: shape[0],
    width: shape[1],
    inChannels,
    outChannels,
    contextDim,
    hidden,
  });
  return imageAffineCoupling({ shape, mask, parity, conditioner, additive, scaleBound });
}

/** A learned-prior network for a multiScale split whose kept half has shape [h, w, k]. */
export function testPrior(kept: number[], contextDim = 0) {
  return denseImageConditioner({
    height: kept[0],
    width: kept[1],
    inChannels: kept[2],
    outChannels: 2 * kept[2],
    contextDim,
  });
}
