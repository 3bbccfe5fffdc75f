/**
 * The context image a conditioner sees at its level of an image-conditional flow
 * (see data/image-context.ts for the contexts). The context row [B, contextSize]
 * is reshaped to its image and brought to the level's [h, w]:
 * - an image smaller than the level (a "downsample" thumbnail) is upsampled by
 *   repeating each value over an r x r block (nearest neighbour: exact copies);
 * - an image larger than the level is squeezed (space-to-depth r x r, the order of
 *   squeeze.ts, r^2 times the channels): nothing is averaged away, so a coarse
 *   level still sees every context value at its place.
 * A left half [H, W/2, C] is first completed to full width with its mirror image
 * (garments are mostly left-right symmetric, so the mirror is a useful guess for
 * the unknown half, where zero padding would read as black background) and gets
 * one mask channel, 1 on the given columns and 0 on the mirrored ones, so the
 * network can tell given pixels from the guess: [H, W, C + 1].
 * The context is never transformed by the flow, only read, so it adds nothing to
 * any log-determinant.
 */
import { numpy as np, type Array, type DType, type Device } from "@jax-js/jax";
import { contextShape, type ImageContextSpec } from "../data/image-context.js";

/** The context image before resizing: [h, w, C] for a thumbnail, [H, W, C + 1] for a left half. */
export function contextImageShape(spec: ImageContextSpec, shape: number[]): number[] {
  const [H, W, C] = shape;
  return spec.kind === "downsample" ? contextShape(spec, shape) : [H, W, C + 1];
}

/** [up, r]: upsample (true) or squeeze (false) by r, to go from [hb, wb] to [h, w]. Throws when no integer r fits. */
function resizeFactor(where: string, base: number[], h: number, w: number): [boolean, number] {
  const [hb, wb] = base;
  const up = h >= hb;
  const r = up ? h / hb : hb / h;
  if (!Number.isInteger(r) || (up ? w / wb : wb / w) !== r) {
    throw new Error(
      `${where}: a ${hb}x${wb} context image does not resize to a ${h}x${w} level by an integer factor`,
    );
  }
  return [up, r];
}

/** Channels of the context image at a level of size [h, w] (throws when it cannot be resized there). */
export function contextImageChannels(
  spec: ImageContextSpec,
  shape: number[],
  h: number,
  w: number,
): number {
  const base = contextImageShape(spec, shape);
  const [up, r] = resizeFactor("image context", base, h, w);
  return up ? base[2] : base[2] * r * r;
}

/**
 * The context image at a level: cond [B, contextSize] -> [B, h, w, channels], in
 * `dtype` on `device`. Consumes `cond`.
 */
export function contextImage(
  cond: Array,
  spec: ImageContextSpec,
  shape: number[],
  h: number,
  w: number,
  dtype: DType,
  device?: Device,
): Array {
  const [H, W, C] = shape;
  const b = cond.shape[0];
  const base = contextImageShape(spec, shape);
  const [hb, wb, k] = base;
  const [up, r] = resizeFactor("image context", base, h, w);
  const c = cond.dtype === dtype ? cond : cond.astype(dtype);
  let img: Array;
  if (spec.kind === "downsample") {
    img = c.reshape([b, hb, wb, k]);
  } else {
    const left = c.reshape([b, H, W / 2, C]);
    const mask = np
      .array(
        globalThis.Array.from({ length: W }, (_, j) => (j < W / 2 ? 1 : 0)),
        { dtype, device },
      )
      .reshape([1, 1, W, 1]);
    const full = np.concatenate([left.ref, np.flip(left, 2)], 2);
    img = np.concatenate([full, np.broadcastTo(mask, [b, H, W, 1])], 3);
  }
  if (r === 1) return img;
  if (up)
    return np
      .broadcastTo(img.reshape([b, hb, 1, wb, 1, k]), [b, hb, r, wb, r, k])
      .reshape([b, h, w, k]);
  return img
    .reshape([b, h, r, w, r, k])
    .transpose([0, 1, 3, 5, 2, 4])
    .reshape([b, h, w, k * r * r]);
}
