import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { isGzip, parseIdx, readIdxFile } from "../src/data/idx.js";

/** A hand-made IDX file: magic 00 00 type ndims, big-endian dims, then `payload`. */
function idxBytes(dims: number[], payload: number[] | Uint8Array, type = 0x08): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + payload.length);
  const view = new DataView(out.buffer);
  out.set([0, 0, type, dims.length]);
  dims.forEach((d, i) => view.setInt32(4 + 4 * i, d, false));
  out.set(payload, 4 + 4 * dims.length);
  return out;
}

const PIXELS = Array.from({ length: 2 * 3 * 4 }, (_, i) => (i * 37) % 256);

test("idx: round trip of a raw and a gzip file; the reader returns a plain Uint8Array", () => {
  const raw = idxBytes([2, 3, 4], PIXELS);
  for (const bytes of [raw, gzipSync(raw)]) {
    const a = parseIdx(bytes);
    assert.deepEqual(a.dims, [2, 3, 4]);
    assert.deepEqual([...a.data], PIXELS);
    assert.equal(Object.getPrototypeOf(a.data), Uint8Array.prototype);
  }
  assert.equal(isGzip(gzipSync(raw)), true);
  assert.equal(isGzip(raw), false);
  const labels = parseIdx(idxBytes([5], [0, 9, 3, 3, 1]));
  assert.deepEqual(labels.dims, [5]);
  assert.deepEqual([...labels.data], [0, 9, 3, 3, 1]);
});

test("idx: readIdxFile reads from disk and names the path in errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "clayflow-idx-"));
  try {
    const p = join(dir, "t10k-labels-idx1-ubyte.gz");
    writeFileSync(p, gzipSync(idxBytes([3], [1, 2, 3])));
    assert.deepEqual([...readIdxFile(p).data], [1, 2, 3]);
    writeFileSync(p, gzipSync(idxBytes([3], [1, 2])));
    assert.throws(() => readIdxFile(p, { what: "labels" }), {
      message: `${p}: expected 3 bytes of labels for 3, found 2 (the file is truncated)`,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("idx: each corruption gives a message saying what was expected and what was found", () => {
  const opts = { file: "train-images-idx3-ubyte.gz", what: "pixels" };
  const good = idxBytes([2, 3, 4], PIXELS);
  const cases: [Uint8Array, string | RegExp][] = [
    [
      good.subarray(0, good.length - 5),
      "train-images-idx3-ubyte.gz: expected 24 bytes of pixels for 2x3x4, found 19 (the file is truncated)",
    ],
    [
      idxBytes([2, 3, 4], [...PIXELS, 7]),
      "train-images-idx3-ubyte.gz: expected 24 bytes of pixels for 2x3x4, found 25 (the file has trailing bytes)",
    ],
    [
      new Uint8Array([0, 0]),
      "train-images-idx3-ubyte.gz: 2 bytes is too short for an IDX file (expected a 4-byte magic number)",
    ],
    [
      new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0]),
      "train-images-idx3-ubyte.gz: not an IDX file: the magic number starts 0x89 0x50, expected 0x00 0x00",
    ],
    [
      idxBytes([2], [1, 2], 0x0d),
      "train-images-idx3-ubyte.gz: IDX data type 0x0d (float32) is not supported; only 0x08 (unsigned byte) is",
    ],
    [
      idxBytes([2], [1, 2], 0x07),
      "train-images-idx3-ubyte.gz: unknown IDX data type 0x07 (expected 0x08, unsigned byte)",
    ],
    [idxBytes([], []), "train-images-idx3-ubyte.gz: the IDX header declares 0 dimensions"],
    [
      good.subarray(0, 10),
      "train-images-idx3-ubyte.gz: truncated header: 3 dimensions need 16 header bytes, found 10",
    ],
    [
      idxBytes([2, 0, 4], []),
      "train-images-idx3-ubyte.gz: dimension 2 of 3 is 0; every dimension must be positive",
    ],
    [
      idxBytes([-5], []),
      "train-images-idx3-ubyte.gz: dimension 1 of 1 is -5; every dimension must be positive",
    ],
    // Bounded before allocating anything for the values.
    [
      idxBytes([2 ** 31 - 1, 2 ** 31 - 1, 28], []),
      /declares 2147483647x2147483647x28 values, more than the limit of 536870912$/,
    ],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(() => parseIdx(bytes, opts), typeof message === "string" ? { message } : message);
    // The same file compressed gives the same message (decompression is transparent).
    if (bytes.length > 0)
      assert.throws(
        () => parseIdx(gzipSync(bytes), opts),
        typeof message === "string" ? { message } : message,
      );
  }
});

test("idx: truncated or corrupt gzip and oversized output are errors, not partial data", () => {
  const opts = { file: "f.gz" };
  const gz = gzipSync(idxBytes([2, 3, 4], PIXELS));
  assert.throws(
    () => parseIdx(gz.subarray(0, gz.length - 12), opts),
    /^Error: f\.gz: truncated gzip data/,
  );
  const bad = Uint8Array.from(gz);
  bad.fill(0xff, 10, 20);
  assert.throws(() => parseIdx(bad, opts), /^Error: f\.gz: corrupt gzip data/);
  // A gzip bomb is stopped by the output bound derived from maxElements.
  const bomb = gzipSync(idxBytes([5000], new Uint8Array(5000)));
  assert.throws(
    () => parseIdx(bomb, { ...opts, maxElements: 10 }),
    /f\.gz: decompresses to more than 1034 bytes/,
  );
  assert.throws(
    () => parseIdx(idxBytes([4, 4], new Uint8Array(16)), { ...opts, maxElements: 10 }),
    {
      message: "f.gz: the header declares 4x4 values, more than the limit of 10",
    },
  );
});
