import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import {
  crc32,
  encodePng,
  encodePngAsync,
  filteredScanlines,
  PNG_SIGNATURE,
} from "../src/io/png.js";
import { deflateStream, gunzipStream } from "../src/io/web-compression.js";
import { parseIdx, parseIdxAsync } from "../src/data/idx.js";

/** Splits a PNG (plain bytes, no Node Buffer) into chunks, checking lengths and CRCs. */
function readChunks(bytes: Uint8Array): Array<{ type: string; data: Buffer }> {
  assert.equal(
    Object.getPrototypeOf(bytes),
    Uint8Array.prototype,
    "plain bytes, no Node Buffer (browsers have none)",
  );
  assert.deepEqual(bytes.subarray(0, 8), PNG_SIGNATURE);
  const png = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks = [];
  let pos = 8;
  while (pos < png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.subarray(pos + 4, pos + 8).toString("latin1");
    const data = png.subarray(pos + 8, pos + 8 + len);
    assert.equal(
      png.readUInt32BE(pos + 8 + len),
      crc32(png.subarray(pos + 4, pos + 8 + len)),
      `CRC of ${type}`,
    );
    chunks.push({ type, data });
    pos += 12 + len;
  }
  assert.equal(pos, png.length);
  return chunks;
}

test("crc32: standard check value and chunk CRC of IEND", () => {
  assert.equal(crc32(Buffer.from("123456789")), 0xcbf43926);
  assert.equal(crc32(Buffer.from("IEND")), 0xae426082);
  assert.equal(crc32(Buffer.alloc(0)), 0);
});

test("png: RGB image has IHDR, IDAT, IEND with correct CRCs and inflates to filtered rows", () => {
  const width = 3;
  const height = 2;
  const data = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37) % 256);
  const png = encodePng({ width, height, channels: 3, data });
  const chunks = readChunks(png);
  assert.deepEqual(
    chunks.map((c) => c.type),
    ["IHDR", "IDAT", "IEND"],
  );
  const ihdr = chunks[0].data;
  assert.equal(ihdr.length, 13);
  assert.equal(ihdr.readUInt32BE(0), width);
  assert.equal(ihdr.readUInt32BE(4), height);
  assert.deepEqual([...ihdr.subarray(8)], [8, 2, 0, 0, 0]);
  const raw = inflateSync(chunks[1].data);
  assert.equal(raw.length, height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    assert.equal(raw[y * (1 + width * 3)], 0, "filter type None");
    assert.deepEqual(
      [...raw.subarray(y * 10 + 1, y * 10 + 10)],
      [...data.subarray(y * 9, y * 9 + 9)],
    );
  }
  assert.equal(chunks[2].data.length, 0);
});

test("png: grayscale colour type and input checks", () => {
  const png = encodePng({
    width: 2,
    height: 2,
    channels: 1,
    data: new Uint8Array([0, 255, 128, 7]),
  });
  const chunks = readChunks(png);
  assert.equal(chunks[0].data[9], 0);
  assert.deepEqual([...inflateSync(chunks[1].data)], [0, 0, 255, 0, 128, 7]);
  assert.throws(
    () => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(5) }),
    /data has 5 bytes, expected 2\*2\*3 = 12/,
  );
  assert.throws(
    () => encodePng({ width: 0, height: 2, channels: 1, data: new Uint8Array(0) }),
    /positive integers/,
  );
  assert.throws(
    () => encodePng({ width: 1, height: 1, channels: 4 as any, data: new Uint8Array(4) }),
    /channels must be 1 or 3/,
  );
});

/** Undoes PNG filters (spec 9.2-9.4) on inflated IDAT bytes; returns the image bytes and the filter types used. */
function unfilter(
  raw: Uint8Array,
  height: number,
  stride: number,
  bpp: number,
): { data: Uint8Array; filters: number[] } {
  const data = new Uint8Array(height * stride);
  const filters: number[] = [];
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    filters.push(f);
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? data[y * stride + i - bpp] : 0;
      const b = y > 0 ? data[(y - 1) * stride + i] : 0;
      const c = y > 0 && i >= bpp ? data[(y - 1) * stride + i - bpp] : 0;
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
          ? a
          : Math.abs(p - b) <= Math.abs(p - c)
            ? b
            : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][f];
      data[y * stride + i] = (raw[y * (stride + 1) + 1 + i] + pred) & 0xff;
    }
  }
  return { data, filters };
}

test("png: adaptive filters decode back to the image and shrink a smooth image", () => {
  for (const channels of [1, 3] as const) {
    const width = 17;
    const height = 11;
    // Smooth ramps plus a little structure, so Sub/Up/Average/Paeth all have something to win.
    const data = Uint8Array.from({ length: width * height * channels }, (_, i) => {
      const x = Math.floor(i / channels) % width;
      const y = Math.floor(i / (channels * width));
      return (3 * x + 5 * y + 40 * (i % channels) + ((x * y) % 3)) & 0xff;
    });
    const plain = encodePng({ width, height, channels, data });
    const png = encodePng({ width, height, channels, data }, { filter: "adaptive" });
    const idat = readChunks(png)[1].data;
    const { data: back, filters } = unfilter(inflateSync(idat), height, width * channels, channels);
    assert.deepEqual([...back], [...data]);
    assert.ok(
      filters.some((f) => f !== 0),
      `filters ${filters}`,
    );
    assert.ok(png.length < plain.length, `${png.length} >= ${plain.length}`);
  }
  const data = new Uint8Array(4);
  assert.throws(
    () => encodePng({ width: 2, height: 2, channels: 1, data }, { level: 10 }),
    /level must be an integer 0..9, got 10/,
  );
  assert.throws(
    () => encodePng({ width: 2, height: 2, channels: 1, data }, { filter: "paeth" as any }),
    /filter must be "none" or "adaptive"/,
  );
});

test("encodePngAsync: the same file as encodePng in Node; through CompressionStream, a PNG of the same rows", async () => {
  const img = {
    width: 7,
    height: 4,
    channels: 1 as const,
    data: Uint8Array.from({ length: 28 }, (_, i) => (i * 53) % 256),
  };
  assert.deepEqual(
    await encodePngAsync(img, { filter: "adaptive" }),
    encodePng(img, { filter: "adaptive" }),
  );
  const deflated = await deflateStream(filteredScanlines(img, "adaptive"));
  assert.deepEqual(new Uint8Array(inflateSync(deflated)), filteredScanlines(img, "adaptive"));
  await assert.rejects(
    encodePngAsync({ ...img, channels: 2 as 1 }),
    /encodePngAsync: channels must be 1 or 3/,
  );
});

test("gunzipStream / parseIdxAsync: gzip IDX without node:zlib, bounded, corrupt data named", async () => {
  const { gzipSync } = await import("node:zlib");
  const raw = Uint8Array.from([0, 0, 0x08, 1, 0, 0, 0, 4, 9, 8, 7, 6]);
  assert.deepEqual(await parseIdxAsync(gzipSync(raw)), parseIdx(raw));
  await assert.rejects(
    parseIdxAsync(gzipSync(new Uint8Array(5000)), { file: "big.gz", maxElements: 100 }),
    /^Error: big\.gz: decompresses to more than 1124 bytes/,
  );
  await assert.rejects(
    gunzipStream(gzipSync(raw).subarray(0, 12), 1000, "cut.gz"),
    /^Error: cut\.gz: corrupt or truncated gzip data/,
  );
});
