/**
 * Image contexts for image-conditional flows: the part of an image a flow is given
 * when it generates the whole image, p(x | context).
 * - { kind: "downsample", factor: f }: the image mean-pooled over f x f blocks,
 *   [H/f, W/f, C] (FashionMNIST with f = 4: the 7x7 thumbnail, 49 values);
 * - { kind: "left-half" }: the left W/2 columns, [H, W/2, C] (392 values).
 * Values are pixel / 255, in [0, 1], row-major over the context's [h, w, c] shape.
 * A context is a function of the discrete pixels 0..255 (taken before the
 * dequantisation noise), so one image always has one context, and a sample in
 * [0, 1) maps back to pixels with `samplePixels` before its own context is taken.
 */
import { jsonExcerpt } from "../core/excerpt.js";
/** How an image's context is taken: a thumbnail `factor` times smaller, or its left half. */
export type ImageContextSpec = { kind: "downsample"; factor: number } | { kind: "left-half" };

/** The kinds of image context: a downsampled thumbnail or the left half. */
export const IMAGE_CONTEXT_KINDS = ["downsample", "left-half"] as const;

/** A validated copy of `spec` for images of `shape` [H, W, C]; errors say what is wrong. */
export function checkContextSpec(where: string, spec: unknown, shape: number[]): ImageContextSpec {
  const s = spec as ImageContextSpec;
  const [H, W] = shape;
  if (!s || typeof s !== "object" || !(IMAGE_CONTEXT_KINDS as readonly string[]).includes(s.kind)) {
    throw new Error(
      `${where}: context must be { kind: "downsample", factor } or { kind: "left-half" }, got ${jsonExcerpt(spec)}`,
    );
  }
  if (s.kind === "downsample") {
    const f = s.factor;
    if (!Number.isInteger(f) || f < 1 || H % f !== 0 || W % f !== 0) {
      throw new Error(
        `${where}: context downsample factor must be a positive integer dividing H and W (${H}, ${W}), got ${jsonExcerpt(f)}`,
      );
    }
    return { kind: "downsample", factor: f };
  }
  if (W % 2 !== 0) throw new Error(`${where}: a left-half context needs an even width, got ${W}`);
  return { kind: "left-half" };
}

/** The context's image shape [h, w, C] for images of `shape` [H, W, C]. */
export function contextShape(spec: ImageContextSpec, shape: number[]): number[] {
  const [H, W, C] = shape;
  return spec.kind === "downsample" ? [H / spec.factor, W / spec.factor, C] : [H, W / 2, C];
}

/** Values in one context row (the flow's contextDim). */
export function contextSize(spec: ImageContextSpec, shape: number[]): number {
  return contextShape(spec, shape).reduce((a, d) => a * d, 1);
}

/** The command-line name: "downsample4", "left-half". */
export function contextName(spec: ImageContextSpec): string {
  return spec.kind === "downsample" ? `downsample${spec.factor}` : "left-half";
}

/** The command-line form back to a spec: "downsampleN" or "left-half"; null when neither. */
export function parseContextName(raw: string): ImageContextSpec | null {
  if (raw === "left-half") return { kind: "left-half" };
  const m = /^downsample([1-9][0-9]*)$/.exec(raw);
  return m ? { kind: "downsample", factor: Number(m[1]) } : null;
}

/**
 * Context rows [count, contextSize] of `count` images (pixels 0..255, [count, H, W, C]
 * row-major).
 */
export function imageContext(
  pixels: ArrayLike<number>,
  count: number,
  spec: ImageContextSpec,
  shape: number[],
): Float32Array {
  const [H, W, C] = shape;
  const D = H * W * C;
  if (pixels.length < count * D)
    throw new Error(
      `imageContext: ${pixels.length} pixels hold fewer than ${count} images of [${shape.join(", ")}]`,
    );
  const [h, w] = contextShape(spec, shape);
  const out = new Float32Array(count * h * w * C);
  if (spec.kind === "left-half") {
    for (let n = 0, o = 0; n < count; n++) {
      for (let i = 0; i < H; i++)
        for (let j = 0; j < w * C; j++) out[o++] = pixels[n * D + i * W * C + j] / 255;
    }
    return out;
  }
  const f = spec.factor;
  const scale = 1 / (255 * f * f);
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        for (let c = 0; c < C; c++) {
          out[((n * h + Math.floor(i / f)) * w + Math.floor(j / f)) * C + c] +=
            pixels[((n * H + i) * W + j) * C + c] * scale;
        }
      }
    }
  }
  return out;
}

/** Samples in [0, 1) (x = (pixel + u) / 256) back to pixels: floor(256 x), clamped to 0..255. */
export function samplePixels(x: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++)
    out[i] = Number.isNaN(x[i]) ? 0 : Math.min(255, Math.max(0, Math.floor(256 * x[i])));
  return out;
}

/** Grey of the unknown half in a left-half preview (not a garment colour: background is black). */
const UNKNOWN = 0.3;

/**
 * Contexts drawn as full-size images [count, H, W, C] with values in [0, 1], for
 * pictures: a thumbnail repeated over its blocks, a left half beside a grey right half.
 */
export function contextPreview(
  context: ArrayLike<number>,
  count: number,
  spec: ImageContextSpec,
  shape: number[],
): Float32Array {
  const [H, W, C] = shape;
  const [h, w] = contextShape(spec, shape);
  const out = new Float32Array(count * H * W * C);
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        for (let c = 0; c < C; c++) {
          const at = ((n * H + i) * W + j) * C + c;
          if (spec.kind === "downsample")
            out[at] =
              context[
                ((n * h + Math.floor(i / spec.factor)) * w + Math.floor(j / spec.factor)) * C + c
              ];
          else out[at] = j < w ? context[((n * h + i) * w + j) * C + c] : UNKNOWN;
        }
      }
    }
  }
  return out;
}
