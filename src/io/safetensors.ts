/**
 * The safetensors format (Hugging Face, https://github.com/huggingface/safetensors), read and
 * written on bytes in memory (Uint8Array), with no engine or Node dependency:
 *
 *   [8 bytes: header length N, unsigned little-endian]
 *   [N bytes: UTF-8 JSON {"__metadata__"?: {str: str}, name: {dtype, shape, data_offsets: [begin, end]}},
 *             padded with spaces so the data starts 8-byte aligned]
 *   [data: little-endian tensor bytes; offsets are relative to the start of this section]
 *
 * Reading trusts nothing in the file: the header length, the JSON, every dtype, shape and offset
 * are checked against the actual buffer size before any tensor memory is allocated, so a corrupt
 * or malicious file gives an error saying what is wrong instead of a huge allocation or garbage.
 */
import { excerpt, jsonExcerpt, oneLine } from "../core/excerpt.js";

/** The safetensors dtypes: bytes per element and the typed array that holds the values. */
export const SAFETENSORS_DTYPES = {
  F64: { size: 8, array: Float64Array },
  F32: { size: 4, array: Float32Array },
  F16: { size: 2, array: Uint16Array }, // raw half-precision bits
  BF16: { size: 2, array: Uint16Array }, // raw bfloat16 bits
  I64: { size: 8, array: BigInt64Array },
  I32: { size: 4, array: Int32Array },
  I16: { size: 2, array: Int16Array },
  I8: { size: 1, array: Int8Array },
  U64: { size: 8, array: BigUint64Array },
  U32: { size: 4, array: Uint32Array },
  U16: { size: 2, array: Uint16Array },
  U8: { size: 1, array: Uint8Array },
  BOOL: { size: 1, array: Uint8Array },
} as const;

/** A safetensors dtype name (F32, I64, ...). */
export type SafetensorsDType = keyof typeof SAFETENSORS_DTYPES;

/** The typed arrays a tensor's values may be in (one per safetensors dtype). */
export type TensorData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array;

/** One tensor of a safetensors file: dtype, shape and values. */
export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: TensorData;
}

/** The tensors and metadata of a safetensors file. */
export interface DecodedSafetensors {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** Largest header accepted (the reference implementation's limit is also 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function checkHost(): void {
  // Tensor bytes are copied straight into typed arrays, which use the host's byte order.
  if (!LITTLE_ENDIAN) throw new Error("safetensors: only little-endian hosts are supported");
}

/**
 * Encodes tensors (a Map or a plain object, name -> tensor) and string metadata into bytes.
 * Tensors are laid out by decreasing item size, then name, so every tensor's data is aligned to
 * its item size (as the Python writer does).
 */
export function encodeSafetensors(
  tensors: Map<string, SafetensorsTensor> | Record<string, SafetensorsTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  checkHost();
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string")
      throw new Error(`encodeSafetensors: metadata "${k}" must be a string, got ${typeof v}`);
  }
  for (const [name, t] of entries) {
    if (name === "__metadata__")
      throw new Error(`encodeSafetensors: "__metadata__" is reserved and cannot name a tensor`);
    const spec = SAFETENSORS_DTYPES[t.dtype];
    if (!spec)
      throw new Error(
        `encodeSafetensors: tensor "${name}": unknown dtype ${JSON.stringify(t.dtype)}`,
      );
    if (!(t.data instanceof spec.array)) {
      throw new Error(
        `encodeSafetensors: tensor "${name}": dtype ${t.dtype} needs a ${spec.array.name}, got ${t.data?.constructor?.name}`,
      );
    }
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(
        `encodeSafetensors: tensor "${name}": shape must be non-negative integers, got [${t.shape}]`,
      );
    }
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(
        `encodeSafetensors: tensor "${name}": shape [${t.shape}] has ${count} elements but data has ${t.data.length}`,
      );
    }
  }
  entries.sort(
    ([na, a], [nb, b]) =>
      SAFETENSORS_DTYPES[b.dtype].size - SAFETENSORS_DTYPES[a.dtype].size ||
      (na < nb ? -1 : na > nb ? 1 : 0),
  );

  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;

  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let pos = 8 + padded;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

interface PlannedTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/** Decodes and validates a safetensors buffer; see the module comment. */
export function decodeSafetensors(buf: Uint8Array): DecodedSafetensors {
  checkHost();
  const fail = (msg: string): never => {
    throw new Error(`safetensors: ${msg}`);
  };
  if (buf.length < 8) fail(`file is ${buf.length} bytes, too short for the 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES))
    fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n > BigInt(buf.length - 8))
    fail(
      `header length ${n} exceeds the ${buf.length - 8} bytes after the length field (truncated file?)`,
    );
  const headerLen = Number(n);
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(8, dataStart)),
    );
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${oneLine((e as Error).message, 100)})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header))
    fail("header must be a JSON object");

  const metadata: Record<string, string> = {};
  const planned: PlannedTensor[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (entry === null || typeof entry !== "object" || Array.isArray(entry))
        fail(`"__metadata__" must be an object of strings`);
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string")
          fail(`"__metadata__" value ${excerpt(k)} must be a string, got ${jsonExcerpt(v)}`);
        metadata[k] = v as string;
      }
      continue;
    }
    const where = `tensor ${excerpt(name)}`;
    if (entry === null || typeof entry !== "object" || Array.isArray(entry))
      fail(`${where}: entry must be an object`);
    const { dtype, shape, data_offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== "string" || !Object.hasOwn(SAFETENSORS_DTYPES, dtype)) {
      fail(
        `${where}: unknown dtype ${jsonExcerpt(dtype)} (known: ${Object.keys(SAFETENSORS_DTYPES).join(", ")})`,
      );
    }
    const size = SAFETENSORS_DTYPES[dtype as SafetensorsDType].size;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${where}: shape must be a list of non-negative integers, got ${jsonExcerpt(shape)}`);
    }
    if (
      !Array.isArray(data_offsets) ||
      data_offsets.length !== 2 ||
      !data_offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(
        `${where}: data_offsets must be [begin, end] non-negative integers, got ${jsonExcerpt(data_offsets)}`,
      );
    }
    const [begin, end] = data_offsets as number[];
    if (begin > end) fail(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen)
      fail(`${where}: data_offsets [${begin}, ${end}] run past the ${dataLen} data bytes`);
    // Byte count, exact while it is a safe integer; beyond that it cannot match any real offsets.
    const dims = shape as number[];
    let bytes = dims.includes(0) ? 0 : size;
    for (const d of dims) {
      if (bytes > Number.MAX_SAFE_INTEGER / Math.max(d, 1)) {
        bytes = Infinity;
        break;
      }
      bytes *= d;
    }
    if (bytes !== end - begin) {
      const need = bytes === Infinity ? "more than 2^53" : String(bytes);
      fail(
        `${where}: shape ${jsonExcerpt(shape)} of ${dtype} needs ${need} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    planned.push({ name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end });
  }

  // The data section must be covered exactly: no overlaps, no holes, no trailing bytes.
  const sorted = [...planned].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const t of sorted) {
    if (t.begin < expected)
      fail(
        `tensor ${excerpt(t.name)}: data_offsets [${t.begin}, ${t.end}] overlap the previous tensor ending at ${expected}`,
      );
    if (t.begin > expected)
      fail(
        `tensor ${excerpt(t.name)}: data_offsets [${t.begin}, ${t.end}] leave a gap after byte ${expected}`,
      );
    expected = t.end;
  }
  if (expected !== dataLen)
    fail(`tensors cover ${expected} of the ${dataLen} data bytes (trailing bytes)`);

  const tensors = new Map<string, SafetensorsTensor>();
  for (const t of planned) {
    const spec = SAFETENSORS_DTYPES[t.dtype];
    // Copy into a fresh buffer: the file's offsets need not be aligned for a typed-array view.
    const copy = new Uint8Array(t.end - t.begin);
    copy.set(buf.subarray(dataStart + t.begin, dataStart + t.end));
    const data = new spec.array(copy.buffer, 0, (t.end - t.begin) / spec.size) as TensorData;
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data });
  }
  return { tensors, metadata };
}
