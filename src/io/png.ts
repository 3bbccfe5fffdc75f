/**
 * Minimal PNG encoder (PNG spec, ISO/IEC 15948 / W3C PNG 2nd ed.): 8-bit grayscale or RGB,
 * no interlace, one IDAT chunk compressed with zlib (`encodePng`: node:zlib, synchronous;
 * `encodePngAsync`: the same file anywhere, through CompressionStream where Node's zlib is not
 * there, at the platform's default level). By default filter 0 (None) on
 * every row; `filter: "adaptive"` picks per row the filter (None, Sub, Up, Average, Paeth) with the
 * smallest sum of |byte as signed|, the heuristic of PNG spec section 12.8 and libpng, which is what
 * makes PNG a real compressor for smooth images (used to measure input complexity, src/eval/ood).
 * Chunks are [length u32 BE][type][data][CRC-32 of type+data, u32 BE].
 *
 * Why not a package (pngjs): it imports zlib and stream when it loads, and the package root
 * must load in browsers (no static Node import); and the OOD complexity score depends on the
 * compressed size, so the filter choice is pinned to the heuristic above here rather than to a
 * dependency's version. The encoder is checked by decoding its files (test/png.test.ts).
 */
import { node } from "../core/node-builtins.js";
import { deflateStream } from "./web-compression.js";

/** An 8-bit image: `channels` 1 (gray) or 3 (RGB), row-major, `data.length = width*height*channels`. */
export interface Image8 {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

export const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC, polynomial 0xEDB88320 reflected), as used by PNG and zlib's crc32. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Options of `encodePng`. */
export interface PngOptions {
  /** zlib level 0..9. Default 9 (smallest file). */
  level?: number;
  /** Row filters: "none" (filter 0 on every row, the default) or "adaptive" (best of the 5 per row). */
  filter?: "none" | "adaptive";
}

/** The Paeth predictor (PNG spec 9.4): whichever of left, up, upper-left is closest to left + up - upper-left. */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Writes row y of `data` into `raw` (filter-type byte then filtered bytes), choosing among the five
 * filters the one with the smallest sum of |residual as a signed byte|; `scratch` holds 5 rows.
 */
function filterRowAdaptive(
  data: Uint8Array,
  y: number,
  stride: number,
  bpp: number,
  raw: Uint8Array,
  scratch: Uint8Array[],
): void {
  const row = data.subarray(y * stride, (y + 1) * stride);
  // The row above the first is all zeros (PNG spec 9.2).
  const up = y > 0 ? data.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
  let best = 0;
  let bestSum = Infinity;
  for (let f = 0; f < 5; f++) {
    const out = scratch[f];
    let sum = 0;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? row[i - bpp] : 0;
      const b = up[i];
      const c = i >= bpp ? up[i - bpp] : 0;
      const pred =
        f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : paeth(a, b, c);
      const v = (row[i] - pred) & 0xff;
      out[i] = v;
      sum += v < 128 ? v : 256 - v;
    }
    if (sum < bestSum) {
      bestSum = sum;
      best = f;
    }
  }
  raw[y * (stride + 1)] = best;
  raw.set(scratch[best], y * (stride + 1) + 1);
}

/**
 * The bytes PNG compresses: each scanline preceded by its filter-type byte, filtered ("none":
 * filter 0 on every row; "adaptive": the best of the five per row). Shape checked by the caller.
 */
export function filteredScanlines(img: Image8, filter: "none" | "adaptive"): Uint8Array {
  if (filter !== "none" && filter !== "adaptive")
    throw new Error(`encodePng: filter must be "none" or "adaptive", got ${filter}`);
  const { width, height, channels, data } = img;
  const stride = width * channels;
  const raw = new Uint8Array((stride + 1) * height);
  if (filter === "adaptive") {
    const scratch = Array.from({ length: 5 }, () => new Uint8Array(stride));
    for (let y = 0; y < height; y++) filterRowAdaptive(data, y, stride, channels, raw, scratch);
  } else {
    for (let y = 0; y < height; y++)
      raw.set(data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  return raw;
}

/** Encodes an 8-bit gray or RGB image as a PNG file. */
export function encodePng(img: Image8, options: PngOptions = {}): Uint8Array {
  const { ihdr, raw, level } = pngParts("encodePng", img, options);
  const deflated = node.zlib("encodePng").deflateSync(raw, { level });
  return assemblePng(
    ihdr,
    new Uint8Array(deflated.buffer, deflated.byteOffset, deflated.byteLength),
  );
}

/**
 * The PNG file of `img` in any environment: node:zlib where there is one (the same bytes as
 * `encodePng`), else CompressionStream (browsers: a valid PNG, at the platform's level).
 */
export async function encodePngAsync(img: Image8, options: PngOptions = {}): Promise<Uint8Array> {
  const { ihdr, raw, level } = pngParts("encodePngAsync", img, options);
  const zlib =
    typeof process !== "undefined" && process.versions?.node ? node.zlib("encodePngAsync") : null;
  const deflated = zlib
    ? new Uint8Array(zlib.deflateSync(raw, { level }))
    : await deflateStream(raw);
  return assemblePng(ihdr, deflated);
}

/** The checked header and the filtered rows of `img`. */
function pngParts(
  where: string,
  img: Image8,
  options: PngOptions,
): { ihdr: Uint8Array; raw: Uint8Array; level: number } {
  const { width, height, channels, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`${where}: width and height must be positive integers, got ${width}x${height}`);
  }
  if (channels !== 1 && channels !== 3)
    throw new Error(`${where}: channels must be 1 or 3, got ${channels}`);
  const stride = width * channels;
  if (data.length !== stride * height) {
    throw new Error(
      `${where}: data has ${data.length} bytes, expected ${width}*${height}*${channels} = ${stride * height}`,
    );
  }
  const ihdr = new Uint8Array(13);
  const header = new DataView(ihdr.buffer);
  header.setUint32(0, width);
  header.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 3 ? 2 : 0; // colour type: truecolour or greyscale
  ihdr[10] = 0; // compression: deflate
  ihdr[11] = 0; // filter method 0
  ihdr[12] = 0; // no interlace
  const level = options.level ?? 9;
  if (!Number.isInteger(level) || level < 0 || level > 9)
    throw new Error(`${where}: level must be an integer 0..9, got ${level}`);
  return { ihdr, raw: filteredScanlines(img, options.filter ?? "none"), level };
}

function assemblePng(ihdr: Uint8Array, deflated: Uint8Array): Uint8Array {
  return concatBytes([
    PNG_SIGNATURE,
    chunk("IHDR", ihdr),
    chunk("IDAT", deflated),
    chunk("IEND", new Uint8Array(0)),
  ]);
}
