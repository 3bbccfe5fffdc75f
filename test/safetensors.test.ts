import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsTensor,
} from "../src/io/safetensors.js";

/** A file from a hand-written header string and data bytes. */
function rawFile(
  header: string | object,
  data: number[] | Uint8Array = [],
  lengthField?: bigint,
): Buffer {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthField ?? BigInt(json.length));
  return Buffer.concat([len, json, Buffer.from(data)]);
}

test("safetensors: byte layout of a tiny tensor, by hand", () => {
  const buf = encodeSafetensors({
    a: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) },
  });
  const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  assert.equal(json.length, 54); // padded to 56
  const expected = Buffer.concat([
    Buffer.from([56, 0, 0, 0, 0, 0, 0, 0]),
    Buffer.from(json + "  "),
    Buffer.from([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40]), // 1.0f, 2.0f little-endian
  ]);
  assert.equal(
    Object.getPrototypeOf(buf),
    Uint8Array.prototype,
    "plain bytes, no Node Buffer (browsers have none)",
  );
  assert.deepEqual(buf, new Uint8Array(expected));
});

test("safetensors: round trip of several dtypes, shapes and metadata; aligned layout", () => {
  const tensors: Record<string, SafetensorsTensor> = {
    w: { dtype: "F32", shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, 1e-30, -7]) },
    d: { dtype: "F64", shape: [3], data: new Float64Array([Math.PI, -0, 1e300]) },
    idx: { dtype: "I32", shape: [], data: new Int32Array([-5]) },
    flags: { dtype: "U8", shape: [3], data: new Uint8Array([1, 0, 255]) },
    big: { dtype: "I64", shape: [1], data: new BigInt64Array([-(2n ** 62n)]) },
    empty: { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
  };
  const buf = Buffer.from(encodeSafetensors(tensors, { format: "clayflow", note: "hé" }));
  const headerLen = Number(buf.readBigUInt64LE(0));
  assert.equal(headerLen % 8, 0);
  const { tensors: got, metadata } = decodeSafetensors(buf);
  assert.deepEqual(metadata, { format: "clayflow", note: "hé" });
  assert.deepEqual([...got.keys()].sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    const g = got.get(name)!;
    assert.equal(g.dtype, t.dtype, name);
    assert.deepEqual(g.shape, t.shape, name);
    assert.deepEqual(g.data, t.data, name);
  }
  // Each tensor starts at a multiple of its item size.
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString());
  for (const [name, e] of Object.entries<any>(header)) {
    if (name === "__metadata__") continue;
    const size = { F64: 8, I64: 8, F32: 4, I32: 4, U8: 1 }[e.dtype as string]!;
    assert.equal(e.data_offsets[0] % size, 0, name);
  }
  // Decoding from an unaligned view works too (data are copied).
  const shifted = Buffer.alloc(buf.length + 1);
  buf.copy(shifted, 1);
  assert.deepEqual(decodeSafetensors(shifted.subarray(1)).tensors.get("d")!.data, tensors.d.data);
});

test("safetensors: encode rejects bad input", () => {
  assert.throws(
    () => encodeSafetensors({ a: { dtype: "F32", shape: [3], data: new Float32Array(2) } }),
    /shape \[3\] has 3 elements but data has 2/,
  );
  assert.throws(
    () => encodeSafetensors({ a: { dtype: "F64", shape: [2], data: new Float32Array(2) } }),
    /dtype F64 needs a Float64Array, got Float32Array/,
  );
  assert.throws(
    () => encodeSafetensors({ a: { dtype: "X9" as any, shape: [2], data: new Float32Array(2) } }),
    /unknown dtype "X9"/,
  );
  assert.throws(() => encodeSafetensors({}, { k: 3 as any }), /metadata "k" must be a string/);
});

test("safetensors: corrupt and malicious files give clear errors", () => {
  const good = { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
  const data8 = [0, 0, 128, 63, 0, 0, 0, 64];
  assert.deepEqual([...decodeSafetensors(rawFile(good, data8)).tensors.get("a")!.data], [1, 2]);

  const cases: Array<[string, Buffer, RegExp]> = [
    ["empty", Buffer.alloc(0), /file is 0 bytes, too short for the 8-byte header length/],
    ["short", Buffer.alloc(5), /file is 5 bytes, too short/],
    [
      "huge header length",
      rawFile(good, data8, 2n ** 63n),
      /header length 9223372036854775808 exceeds the 100000000-byte limit/,
    ],
    [
      "lying header length",
      rawFile(good, data8, 1000n),
      /header length 1000 exceeds the \d+ bytes after the length field \(truncated file\?\)/,
    ],
    [
      "truncated data",
      rawFile(good, data8.slice(0, 5)),
      /data_offsets \[0, 8\] run past the 5 data bytes/,
    ],
    ["not JSON", rawFile("{oops", []), /header is not valid UTF-8 JSON/],
    ["JSON array", rawFile("[1,2]", []), /header must be a JSON object/],
    [
      "bad UTF-8",
      rawFile(Buffer.from([0x7b, 0xff, 0x7d]).toString("latin1"), []),
      /header is not valid UTF-8 JSON|header must be/,
    ],
    ["entry not object", rawFile({ a: 3 }, []), /tensor "a": entry must be an object/],
    [
      "wrong dtype",
      rawFile({ a: { dtype: "F31", shape: [2], data_offsets: [0, 8] } }, data8),
      /tensor "a": unknown dtype "F31" \(known: F64, F32/,
    ],
    [
      "shape not list",
      rawFile({ a: { dtype: "F32", shape: "2", data_offsets: [0, 8] } }, data8),
      /tensor "a": shape must be a list of non-negative integers, got "2"/,
    ],
    [
      "negative dim",
      rawFile({ a: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, data8),
      /shape must be a list of non-negative integers/,
    ],
    [
      "bad offsets",
      rawFile({ a: { dtype: "F32", shape: [2], data_offsets: [0] } }, data8),
      /data_offsets must be \[begin, end\]/,
    ],
    [
      "reversed offsets",
      rawFile({ a: { dtype: "F32", shape: [0], data_offsets: [8, 0] } }, data8),
      /end before they begin/,
    ],
    [
      "offsets out of bounds",
      rawFile({ a: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, data8),
      /data_offsets \[4, 12\] run past the 8 data bytes/,
    ],
    [
      "shape disagrees",
      rawFile({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, data8),
      /shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] hold 8/,
    ],
    [
      "malicious huge shape",
      rawFile(
        { a: { dtype: "F64", shape: [2 ** 40, 2 ** 40, 2 ** 20], data_offsets: [0, 8] } },
        data8,
      ),
      /needs more than 2\^53 bytes but data_offsets \[0, 8\] hold 8/,
    ],
    [
      "overlap",
      rawFile(
        {
          a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
          b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
        },
        data8,
      ),
      /overlap the previous tensor ending at 8/,
    ],
    [
      "gap",
      rawFile({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, data8),
      /leave a gap after byte 0/,
    ],
    [
      "trailing bytes",
      rawFile({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, data8),
      /tensors cover 4 of the 8 data bytes/,
    ],
    [
      "bad metadata",
      rawFile({ __metadata__: { k: 1 } }, []),
      /"__metadata__" value "k" must be a string, got 1/,
    ],
  ];
  // A zero dimension makes the tensor empty however large the others are.
  const zero = decodeSafetensors(
    rawFile({ z: { dtype: "F64", shape: [2 ** 40, 0], data_offsets: [0, 0] } }),
  ).tensors.get("z")!;
  assert.equal(zero.data.length, 0);
  for (const [what, buf, re] of cases) assert.throws(() => decodeSafetensors(buf), re, what);
});
