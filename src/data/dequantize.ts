/**
 * 8-bit images -> continuous inputs for a flow, with the exact log-det of each step, so that
 * bits per dimension are those of the discrete 256-level data.
 *
 * Steps, for pixels p in {0, ..., 255}^D (D = H * W * C per image):
 *   1. dequantise:  z = p + u,  u ~ U[0, 1)^D          (z in [0, 256)^D)
 *   2. scale:       x = z / 256                         (x in [0, 1)^D;  log|det| = -D ln 256)
 *   3. optionally the logit transform (Dinh et al. 2016, "Density estimation using Real NVP",
 *      section 4.1), in the symmetric form of Papamakarios et al. 2017 (MAF), section 4.2:
 *        s = alpha + (1 - 2 alpha) x,   y = logit(s) = ln s - ln(1 - s),
 *        log|det dy/dx| = sum_i [ ln(1 - 2 alpha) - ln s_i - ln(1 - s_i) ],
 *      which keeps y finite at x = 0 (alpha > 0). RealNVP used alpha = 0.05 (the default
 *      here; the paper writes the asymmetric alpha + (1 - alpha) x), MAF alpha = 1e-6.
 *
 * A flow gives log p_Y(y). By change of variables the density of z is
 *   log p_Z(z) = log p_Y(y) + logdet_preprocess - D ln 256,
 * with logdet_preprocess = log|det dy/dx| of step 3 (0 without the logit). The discrete model
 * P(p) = integral over [0, 1)^D of p_Z(p + u) du satisfies, by Jensen's inequality,
 *   -log P(p) <= E_u[-log p_Z(p + u)]       (Theis, van den Oord & Bethge 2016, "A note on
 *                                            the evaluation of generative models", section 3.1)
 * so the reported, upper-bounding, bits per dimension are
 *   bpd = (NLL_model(y) - logdet_preprocess + D ln 256) / (D ln 2),
 * NLL_model(y) = -log p_Y(y) in nats, averaged over images: `bitsPerDimFromLogProb`.
 * A uniform density on [0, 1)^D (no logit) gives exactly 8 bits/dim.
 *
 * Every function consumes its array arguments (see CONVENTIONS); constants that float32 cannot
 * hold are typed scalars in the input's dtype, so float64 stays exact under jit.
 */
import { nn, numpy as np, random, type Array, type DType } from "@jax-js/jax";
import { floatDtype, softplus, sumEvent } from "../core/util.js";
import { bitsPerDim, dequantOffset } from "../train/losses.js";

/** Preprocessing settings, plain JSON (store them with a model). */
export interface ImagePreprocessing {
  /** Apply the logit transform after dequantising. */
  logit: boolean;
  /** Logit margin alpha in (0, 0.5); used only when `logit`. */
  alpha: number;
}

/** RealNVP's margin (Dinh et al. 2016, section 4.1). */
export const DEFAULT_LOGIT_ALPHA = 0.05;

/** Validated settings; defaults: no logit, alpha 0.05. */
export function imagePreprocessing(options: Partial<ImagePreprocessing> = {}): ImagePreprocessing {
  const alpha = options.alpha ?? DEFAULT_LOGIT_ALPHA;
  checkAlpha(alpha, "imagePreprocessing");
  return { logit: options.logit ?? false, alpha };
}

/** Pixels (bytes, row-major) -> an array of their values 0..255 with `shape` (batch first). */
export function pixelsToArray(
  pixels: Uint8Array,
  shape: number[],
  dtype: DType = np.float32,
): Array {
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== pixels.length) {
    throw new Error(
      `pixelsToArray: shape [${shape.join(", ")}] holds ${size} values, got ${pixels.length} pixels`,
    );
  }
  const values = dtype === np.float64 ? Float64Array.from(pixels) : Float32Array.from(pixels);
  return np.array(values, { shape, dtype: dtype === np.float64 ? np.float64 : np.float32 });
}

/**
 * Steps 1-2: x = (p + u) / 256 with u ~ U[0, 1) drawn from `key`; same shape and dtype as
 * `pixels` (float values 0..255). Consumes both. In float32, p + u rounds up to p + 1 for the
 * u within 2^-17 of 1 when p >= 128 (probability 2^-17 per pixel): a measure-zero boundary for
 * the density, kept so that u stays exactly uniform.
 */
export function dequantize(pixels: Array, key: Array): Array {
  const dtype = floatDtype(pixels);
  const u = random.uniform(key, pixels.shape).astype(dtype);
  return pixels.add(u).div(256);
}

/**
 * Step 3: y = logit(alpha + (1 - 2 alpha) x) for x in [0, 1], and log|det dy/dx| per image
 * ([batch]). Consumes `x`.
 */
export function logitTransform(x: Array, alpha: number = DEFAULT_LOGIT_ALPHA): [Array, Array] {
  const dims = guard(() => (checkAlpha(alpha, "logitTransform"), eventSize(x)), x);
  const dtype = floatDtype(x);
  const a = np.full([], alpha, { dtype });
  const b = np.full([], 1 - 2 * alpha, { dtype });
  // 1 - s is computed as alpha + (1 - 2 alpha)(1 - x), not 1 - s, to keep its relative accuracy near x = 1.
  const s = x.ref.mul(b.ref).add(a.ref);
  const t = x.neg().add(1).mul(b).add(a);
  const logS = np.log(s);
  const logT = np.log(t);
  const y = logS.ref.sub(logT.ref);
  const logDet = sumEvent(logS.add(logT).neg()).add(
    np.full([], dims * Math.log1p(-2 * alpha), { dtype }),
  );
  return [y, logDet];
}

/** Inverse of `logitTransform`: x = (sigmoid(y) - alpha) / (1 - 2 alpha), and log|det dx/dy| per image. Consumes `y`. */
export function logitInverse(y: Array, alpha: number = DEFAULT_LOGIT_ALPHA): [Array, Array] {
  const dims = guard(() => (checkAlpha(alpha, "logitInverse"), eventSize(y)), y);
  const dtype = floatDtype(y);
  // d sigmoid / dy = sigmoid(y) sigmoid(-y); ln sigmoid(+-y) = -softplus(-+y), without overflow.
  const logDet = sumEvent(softplus(y.ref.neg()).add(softplus(y.ref)).neg()).sub(
    np.full([], dims * Math.log1p(-2 * alpha), { dtype }),
  );
  const x = nn
    .sigmoid(y)
    .sub(np.full([], alpha, { dtype }))
    .div(np.full([], 1 - 2 * alpha, { dtype }));
  return [x, logDet];
}

/**
 * Steps 1-3: pixels (float values 0..255, [batch, ...]) -> [y, logdet_preprocess], with
 * logdet_preprocess = log|det dy/dx| per image (zeros without the logit); the constant
 * -D ln 256 of step 2 is left to `bitsPerDimFromLogProb`. Consumes `pixels` and `key`.
 */
export function preprocessImages(
  pixels: Array,
  key: Array,
  prep: ImagePreprocessing,
): [Array, Array] {
  const dtype = floatDtype(pixels);
  const batch = pixels.shape[0];
  guard(() => eventSize(pixels), pixels, key);
  const x = dequantize(pixels, key);
  if (prep.logit) return logitTransform(x, prep.alpha);
  return [x, np.zeros([batch], { dtype })];
}

/** Flow outputs y -> images x in [0, 1] (undoes the logit if used, then clips). Consumes `y`. */
export function postprocessImages(y: Array, prep: ImagePreprocessing): Array {
  let x = y;
  if (prep.logit) {
    const [inv, logDet] = logitInverse(y, prep.alpha);
    logDet.dispose();
    x = inv;
  }
  return np.clip(x, 0, 1);
}

/** x in [0, 1] -> pixel values floor(256 x) clipped to 0..255 (same dtype). Consumes `x`. */
export function quantize(x: Array): Array {
  return np.clip(np.floor(x.mul(256)), 0, 255);
}

/**
 * Bits per dimension of the discrete 256-level images (see the module comment):
 *   bpd = mean over images of (-logProbY - logDetPreprocess + D ln 256) / (D ln 2),
 * for `logProbY` = log p_Y(y) from the flow and `logDetPreprocess` from `preprocessImages`
 * (both [batch]); `dims` = D per image. Returns a scalar. Consumes both arrays.
 */
export function bitsPerDimFromLogProb(
  logProbY: Array,
  logDetPreprocess: Array,
  dims: number,
): Array {
  if (
    logProbY.ndim !== 1 ||
    logDetPreprocess.ndim !== 1 ||
    logProbY.shape[0] !== logDetPreprocess.shape[0]
  ) {
    const shapes = `[${logProbY.shape.join(", ")}] and [${logDetPreprocess.shape.join(", ")}]`;
    logProbY.dispose();
    logDetPreprocess.dispose();
    throw new Error(
      `bitsPerDimFromLogProb: expected logProbY and logDetPreprocess of one shape [batch], got ${shapes}`,
    );
  }
  // log p_X(x) on [0, 1)^D = log p_Y(y) + log|det dy/dx|; the offset ln 256 per dim is the scale step.
  return bitsPerDim(logProbY.add(logDetPreprocess), dims, { dequantOffset: dequantOffset(256, 1) });
}

/** Runs a check; if it throws, releases `arrays` (the caller's arguments) first. */
function guard<T>(check: () => T, ...arrays: Array[]): T {
  try {
    return check();
  } catch (err) {
    for (const a of arrays) a.dispose();
    throw err;
  }
}

function eventSize(x: Array): number {
  if (x.ndim < 2)
    throw new Error(`expected images of shape [batch, ...], got [${x.shape.join(", ")}]`);
  return x.shape.slice(1).reduce((a, b) => a * b, 1);
}

function checkAlpha(alpha: number, where: string): void {
  if (!(alpha > 0 && alpha < 0.5)) {
    throw new Error(`${where}: alpha must be in (0, 0.5), got ${alpha}`);
  }
}
