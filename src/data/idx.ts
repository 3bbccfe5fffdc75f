/**
 * IDX files (the format of MNIST and Fashion-MNIST), raw or gzip-compressed.
 *
 * Layout (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte magic number
 * 0x00 0x00 TYPE NDIMS, then NDIMS dimension sizes as big-endian 32-bit integers, then the
 * values in row-major (C) order. TYPE 0x08 is unsigned byte; the format also defines
 * 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32 and 0x0E float64, which this reader
 * names in its error but does not decode: every MNIST-style image and label file is 0x08.
 *
 * A gzip file (first bytes 1f 8b) is decompressed first, with the output bounded so that a
 * corrupt or hostile file cannot exhaust memory. Every header field is checked, and the payload
 * must be exactly the product of the dimensions: a truncated download or a file with extra
 * bytes is an error that says what was expected and what was found, because silently reading a
 * short file would train on garbage or on a fraction of the data.
 */
import { node } from "../core/node-builtins.js";
import { gunzipStream } from "../io/web-compression.js";

/** The contents of an IDX file: dimensions and values. */
export interface IdxArray {
  /** Dimension sizes, outermost first (e.g. [60000, 28, 28]). */
  dims: number[];
  /** The values, row-major; length = product of `dims`. */
  data: Uint8Array;
}

/** Options of `parseIdx` and `readIdxFile`. */
export interface IdxOptions {
  /** Name used in error messages (the path, for `readIdxFile`). Default "<idx>". */
  file?: string;
  /** What the values are, for error messages ("pixels", "labels"). Default "data". */
  what?: string;
  /** Largest accepted number of values (checked before allocating). Default 2^29 (512 MiB of bytes). */
  maxElements?: number;
}

/** Default bound on the number of values: 10x the Fashion-MNIST training images. */
export const IDX_MAX_ELEMENTS = 2 ** 29;

const IDX_TYPES: Record<number, string> = {
  0x08: "unsigned byte",
  0x09: "signed byte",
  0x0b: "int16",
  0x0c: "int32",
  0x0d: "float32",
  0x0e: "float64",
};

/** True when `bytes` starts with the gzip magic number 1f 8b (RFC 1952). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Reads an IDX file (raw or gzip); errors name `path`. */
export function readIdxFile(path: string, options: Omit<IdxOptions, "file"> = {}): IdxArray {
  return parseIdx(node.fs("readIdxFile").readFileSync(path), { ...options, file: path });
}

/** Parses IDX bytes, decompressing gzip first; see the module comment for the checks. */
export function parseIdx(bytes: Uint8Array, options: IdxOptions = {}): IdxArray {
  const file = options.file ?? "<idx>";
  const what = options.what ?? "data";
  const maxElements = options.maxElements ?? IDX_MAX_ELEMENTS;
  if (!(Number.isInteger(maxElements) && maxElements > 0)) {
    throw new Error(`parseIdx: maxElements must be a positive integer, got ${maxElements}`);
  }
  // The header is at most 4 + 4 * 255 bytes, so this bounds the decompressed size.
  if (isGzip(bytes)) bytes = gunzipBounded(bytes, 4 + 4 * 255 + maxElements, file);

  if (bytes.length < 4) {
    throw new Error(
      `${file}: ${bytes.length} bytes is too short for an IDX file (expected a 4-byte magic number)`,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new Error(
      `${file}: not an IDX file: the magic number starts ${hex(bytes[0])} ${hex(bytes[1])}, expected 0x00 0x00`,
    );
  }
  const type = bytes[2];
  if (type !== 0x08) {
    const known = IDX_TYPES[type];
    throw new Error(
      known
        ? `${file}: IDX data type ${hex(type)} (${known}) is not supported; only ${hex(0x08)} (unsigned byte) is`
        : `${file}: unknown IDX data type ${hex(type)} (expected ${hex(0x08)}, unsigned byte)`,
    );
  }
  const ndims = bytes[3];
  if (ndims === 0) throw new Error(`${file}: the IDX header declares 0 dimensions`);
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw new Error(
      `${file}: truncated header: ${ndims} dimensions need ${headerBytes} header bytes, found ${bytes.length}`,
    );
  }

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) {
    // The format defines sizes as signed 32-bit; negative or zero sizes are invalid.
    const d = view.getInt32(4 + 4 * i, false);
    if (d <= 0)
      throw new Error(
        `${file}: dimension ${i + 1} of ${ndims} is ${d}; every dimension must be positive`,
      );
    dims.push(d);
  }
  // A float product: it may round or reach Infinity for absurd headers, which still fails the bound.
  const count = dims.reduce((a, b) => a * b, 1);
  if (count > maxElements) {
    throw new Error(
      `${file}: the header declares ${dims.join("x")} values, more than the limit of ${maxElements}`,
    );
  }

  const found = bytes.length - headerBytes;
  if (found !== count) {
    const why = found < count ? "the file is truncated" : "the file has trailing bytes";
    throw new Error(
      `${file}: expected ${count} bytes of ${what} for ${dims.join("x")}, found ${found} (${why})`,
    );
  }
  // A plain Uint8Array view (not a Buffer) of the payload; no copy.
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerBytes, count) };
}

/**
 * `parseIdx` anywhere: gzip bytes are inflated through DecompressionStream (browsers, workers)
 * with the same output bound; raw bytes are parsed as they are.
 */
export async function parseIdxAsync(
  bytes: Uint8Array,
  options: IdxOptions = {},
): Promise<IdxArray> {
  if (!isGzip(bytes)) return parseIdx(bytes, options);
  const maxElements = options.maxElements ?? IDX_MAX_ELEMENTS;
  if (!(Number.isInteger(maxElements) && maxElements > 0)) {
    throw new Error(`parseIdx: maxElements must be a positive integer, got ${maxElements}`);
  }
  return parseIdx(
    await gunzipStream(bytes, 4 + 4 * 255 + maxElements, options.file ?? "<idx>"),
    options,
  );
}

/** gunzip with an output bound; zlib errors are reworded to name the file. */
function gunzipBounded(bytes: Uint8Array, maxOutputLength: number, file: string): Uint8Array {
  const zlib = node.zlib("parseIdx of gzip bytes"); // outside the try: its error is not a zlib error
  try {
    return zlib.gunzipSync(bytes, { maxOutputLength });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ERR_BUFFER_TOO_LARGE" || e instanceof RangeError) {
      throw new Error(
        `${file}: decompresses to more than ${maxOutputLength} bytes, the limit for an IDX file here`,
      );
    }
    if (e.code === "Z_BUF_ERROR") throw new Error(`${file}: truncated gzip data (${e.message})`);
    throw new Error(`${file}: corrupt gzip data (${e.message})`);
  }
}

function hex(b: number): string {
  return `0x${b.toString(16).padStart(2, "0")}`;
}
