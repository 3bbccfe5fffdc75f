import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { crc32, encodePng, PNG_SIGNATURE } from "../src/io/png.js";

/** Splits a PNG into chunks, checking lengths and CRCs. */
function readChunks(png: Buffer): Array<{ type: string; data: Buffer }> {
  assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
  const chunks = [];
  let pos = 8;
  while (pos < png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.subarray(pos + 4, pos + 8).toString("latin1");
    const data = png.subarray(pos + 8, pos + 8 + len);
    assert.equal(png.readUInt32BE(pos + 8 + len), crc32(png.subarray(pos + 4, pos + 8 + len)), `CRC of ${type}`);
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
  assert.deepEqual(chunks.map((c) => c.type), ["IHDR", "IDAT", "IEND"]);
  const ihdr = chunks[0].data;
  assert.equal(ihdr.length, 13);
  assert.equal(ihdr.readUInt32BE(0), width);
  assert.equal(ihdr.readUInt32BE(4), height);
  assert.deepEqual([...ihdr.subarray(8)], [8, 2, 0, 0, 0]);
  const raw = inflateSync(chunks[1].data);
  assert.equal(raw.length, height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    assert.equal(raw[y * (1 + width * 3)], 0, "filter type None");
    assert.deepEqual([...raw.subarray(y * 10 + 1, y * 10 + 10)], [...data.subarray(y * 9, y * 9 + 9)]);
  }
  assert.equal(chunks[2].data.length, 0);
});

test("png: grayscale colour type and input checks", () => {
  const png = encodePng({ width: 2, height: 2, channels: 1, data: new Uint8Array([0, 255, 128, 7]) });
  const chunks = readChunks(png);
  assert.equal(chunks[0].data[9], 0);
  assert.deepEqual([...inflateSync(chunks[1].data)], [0, 0, 255, 0, 128, 7]);
  assert.throws(() => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(5) }), /data has 5 bytes, expected 2\*2\*3 = 12/);
  assert.throws(() => encodePng({ width: 0, height: 2, channels: 1, data: new Uint8Array(0) }), /positive integers/);
  assert.throws(() => encodePng({ width: 1, height: 1, channels: 4 as any, data: new Uint8Array(4) }), /channels must be 1 or 3/);
});
