/**
 * Input complexity and the complexity-corrected OOD score of Serra et al. 2020, "Input complexity
 * and out-of-distribution detection with likelihood-based generative models" (ICLR 2020).
 *
 * Likelihood models give simple inputs (constant, smooth) high likelihood whatever they were trained
 * on, which is why a flow trained on CIFAR-10 scores SVHN as "more likely". Serra et al. estimate an
 * input's complexity L(x) by the length of a lossless compressed encoding, in bits per dimension,
 * and score S(x) = NLL_M(x) - L(x) (both bits/dim): the model's code length minus that of a
 * generic compressor, a likelihood-ratio test against a universal model. Higher = more OOD.
 *
 * Compressor: PNG at maximum zlib compression (level 9) with adaptive row filters (None, Sub, Up,
 * Average, Paeth chosen per row, libpng's default for 8-bit grey/RGB; without filters deflate only
 * finds exact repeats and a smooth image with a little noise looks almost as complex as noise). L(x) = 8 * (bytes of the IDAT data) / D, D = height * width * channels. We count only
 * the IDAT payload, i.e. the zlib stream of the filtered rows, so the figure means "bits of image
 * content"; the signature, IHDR, IEND and chunk framing (57 bytes for one IDAT chunk) are the same
 * for every image of one shape, so counting the whole file would shift every score by the same
 * constant and leave AUROC/AUPR/FPR unchanged. The zlib header and Adler-32 (6 bytes) and the one
 * filter-type byte per row are still counted: they are part of the compressed stream.
 */
import { encodePng, filteredScanlines } from "../../io/png.js";

function checkShape(where: string, height: number, width: number, channels: number): void {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new Error(`${where}: height and width must be positive integers, got ${height}x${width}`);
  }
  // PNG stores 8-bit grey (1) or RGB (3); other channel counts would need another compressor.
  if (channels !== 1 && channels !== 3)
    throw new Error(`${where}: channels must be 1 (grey) or 3 (RGB), got ${channels}`);
}

/** Total length of the IDAT chunks' data in a PNG file (chunks: [len u32 BE][type][data][crc]). */
function idatBytes(png: Uint8Array): number {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let total = 0;
  for (let pos = 8; pos + 8 <= png.length; ) {
    const len = view.getUint32(pos);
    if (String.fromCharCode(...png.subarray(pos + 4, pos + 8)) === "IDAT") total += len;
    pos += 12 + len;
  }
  return total;
}

/** Compressed length in bits/dim of one image whose bytes are `pixels` (shape already checked). */
function bitsPerDim(pixels: Uint8Array, height: number, width: number, channels: 1 | 3): number {
  const png = encodePng(
    { width, height, channels, data: pixels },
    { level: 9, filter: "adaptive" },
  );
  return (8 * idatBytes(png)) / (height * width * channels);
}

/** bits per dimension of the compressed image; pixels: one grey 8-bit image height*width (channels 1) or more via `channels`. */
export function complexityBitsPerDim(
  pixels: Uint8Array,
  height: number,
  width: number,
  channels = 1,
): number {
  checkShape("complexityBitsPerDim", height, width, channels);
  const size = height * width * channels;
  if (pixels.length !== size) {
    throw new Error(
      `complexityBitsPerDim: pixels has ${pixels.length} bytes, expected ${height}*${width}*${channels} = ${size}`,
    );
  }
  return bitsPerDim(pixels, height, width, channels as 1 | 3);
}

/** For many images stored back to back. */
export function complexityOfImages(
  pixels: Uint8Array,
  count: number,
  height: number,
  width: number,
  channels = 1,
): Float64Array {
  checkShape("complexityOfImages", height, width, channels);
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`complexityOfImages: count must be a positive integer, got ${count}`);
  const size = height * width * channels;
  if (pixels.length !== count * size) {
    throw new Error(
      `complexityOfImages: pixels has ${pixels.length} bytes, expected ${count} images of ${height}*${width}*${channels} = ${count * size}`,
    );
  }
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++)
    out[i] = bitsPerDim(
      pixels.subarray(i * size, (i + 1) * size),
      height,
      width,
      channels as 1 | 3,
    );
  return out;
}

/**
 * Serra's score S(x) = bits/dim under the model minus complexity bits/dim (higher = more OOD).
 * `modelBitsPerDim` must be the discrete 8-bit code length -log2 P(x) / D (as `bitsPerDim` in
 * src/train/losses.ts gives, with the log2 256 dequantisation term), so both terms are in the
 * same units; +Infinity (a row outside the model's support) stays +Infinity.
 */
export function complexityCorrectedScores(
  modelBitsPerDim: ArrayLike<number>,
  complexity: ArrayLike<number>,
): Float64Array {
  if (modelBitsPerDim.length !== complexity.length) {
    throw new Error(
      `complexityCorrectedScores: ${modelBitsPerDim.length} model scores but ${complexity.length} complexities; need one per image`,
    );
  }
  const out = new Float64Array(complexity.length);
  let nan = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = modelBitsPerDim[i] - complexity[i];
    if (Number.isNaN(out[i])) nan++;
  }
  if (nan > 0)
    throw new Error(
      `complexityCorrectedScores: ${nan} score(s) are NaN (a NaN input, or an infinite model score minus an infinite complexity)`,
    );
  return out;
}

/**
 * The same figure with any zlib (RFC 1950) compressor of the filtered rows, for places without
 * node:zlib: by default the platform's CompressionStream("deflate") (browsers, Node 18+), which
 * compresses at zlib's default level, not 9, so its figures can be a few bytes longer than
 * `complexityBitsPerDim`'s; compare scores only with thresholds measured the same way.
 */
export async function complexityBitsPerDimAsync(
  pixels: Uint8Array,
  height: number,
  width: number,
  channels = 1,
  deflate: (raw: Uint8Array) => Promise<Uint8Array> = streamDeflate,
): Promise<number> {
  checkShape("complexityBitsPerDimAsync", height, width, channels);
  const size = height * width * channels;
  if (pixels.length !== size) {
    throw new Error(
      `complexityBitsPerDimAsync: pixels has ${pixels.length} bytes, expected ${height}*${width}*${channels} = ${size}`,
    );
  }
  const raw = filteredScanlines(
    { width, height, channels: channels as 1 | 3, data: pixels },
    "adaptive",
  );
  return (8 * (await deflate(raw)).length) / size;
}

async function streamDeflate(raw: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([raw as Uint8Array<ArrayBuffer>])
    .stream()
    .pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
