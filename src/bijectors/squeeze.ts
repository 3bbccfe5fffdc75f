/**
 * Squeeze (space-to-depth 2x2; Dinh, Sohl-Dickstein & Bengio 2016, "Density
 * estimation using Real NVP", arXiv:1605.08803, §3.6; Kingma & Dhariwal 2018,
 * "Glow", §3): each 2x2 block of pixels of an [H, W, C] image becomes one
 * pixel with 4C channels, [H, W, C] -> [H/2, W/2, 4C]. Ordering (that of the
 * RealNVP and Glow reference code, `squeeze2d`; NOT tf.nn.space_to_depth's):
 *   y[i, j, 4c + 2a + b] = x[2i + a, 2j + b, c],   a, b in {0, 1},
 * i.e. reshape to [H/2, 2, W/2, 2, C], transpose to [H/2, W/2, C, 2, 2],
 * reshape. The four values of an input channel are adjacent, so splitting
 * the channels in halves keeps whole input channels together when C is even.
 * A permutation of the coordinates: log|det J| = 0; the inverse is
 * depth-to-space (the same reshapes and transpose undone).
 */
import { numpy as np, type Array } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { assertPositiveInt } from "../core/checks.js";
import { parameterFree } from "./parameter-free.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** Space-to-depth 2x2 of a batch [B, H, W, C] -> [B, H/2, W/2, 4C] (H, W even). Consumes `x`. */
export function spaceToDepth(x: Array): Array {
  const [b, h, w, c] = x.shape;
  return x
    .reshape([b, h / 2, 2, w / 2, 2, c])
    .transpose([0, 1, 3, 5, 2, 4])
    .reshape([b, h / 2, w / 2, 4 * c]);
}

/** The inverse of `spaceToDepth`: [B, H/2, W/2, 4C] -> [B, H, W, C]. Consumes `y`. */
export function depthToSpace(y: Array): Array {
  const [b, h2, w2, c4] = y.shape;
  const c = c4 / 4;
  return y
    .reshape([b, h2, w2, c, 2, 2])
    .transpose([0, 1, 4, 2, 5, 3])
    .reshape([b, 2 * h2, 2 * w2, c]);
}

/** The shape after a squeeze, validating [H, W, C] with H and W even. */
export function squeezedShape(where: string, shape: number[]): number[] {
  if (!globalThis.Array.isArray(shape) || shape.length !== 3) {
    throw new Error(`${where}: expected an image event shape [H, W, C], got ${jsonExcerpt(shape)}`);
  }
  const [h, w, c] = shape;
  assertPositiveInt(where, "H", h);
  assertPositiveInt(where, "W", w);
  assertPositiveInt(where, "C", c);
  if (h % 2 !== 0 || w % 2 !== 0) {
    throw new Error(`${where}: a 2x2 squeeze needs even H and W, got [${shape.join(", ")}]`);
  }
  return [h / 2, w / 2, 4 * c];
}

/** Squeeze (space-to-depth 2x2, RealNVP's ordering): [H, W, C] -> [H/2, W/2, 4C], log-det 0. */
export function squeeze(eventShape: number[]): Bijector<Record<string, never>> {
  const where = "squeeze";
  const outputShape = squeezedShape(where, eventShape);
  eventShape = [...eventShape];
  const zeros = (x: Array) => np.zeros([x.shape[0]], { dtype: x.dtype });
  return parameterFree({
    kind: "squeeze",
    eventShape,
    outputShape,
    forward: (x) => {
      const logDet = zeros(x);
      return [spaceToDepth(x), logDet];
    },
    inverse: (y) => {
      const logDet = zeros(y);
      return [depthToSpace(y), logDet];
    },
  });
}
