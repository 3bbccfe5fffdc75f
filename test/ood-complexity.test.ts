import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  complexityBitsPerDim,
  complexityBitsPerDimAsync,
  complexityCorrectedScores,
  complexityOfImages,
} from "../src/eval/ood/complexity.js";
import { encodePng } from "../src/io/png.js";
import { makeRng } from "../src/core/prng.js";
import { thresholdAtFalseAlarmRate } from "../src/eval/ood/threshold.js";

const H = 28;
const W = 28;

test("a constant image costs far fewer bits/dim than uniform noise (noise at or above 8)", () => {
  const rng = makeRng(1);
  const constant = new Uint8Array(H * W).fill(117);
  const noise = Uint8Array.from({ length: H * W }, () => rng.int(256));
  const c = complexityBitsPerDim(constant, H, W);
  const n = complexityBitsPerDim(noise, H, W);
  assert.ok(c < 0.3, `constant ${c}`);
  // Noise is incompressible: deflate stores it, plus one filter byte per row and the zlib framing.
  assert.ok(n > 7.9 && n < 8.6, `noise ${n}`);
  const rgbNoise = Uint8Array.from({ length: H * W * 3 }, () => rng.int(256));
  const rn = complexityBitsPerDim(rgbNoise, H, W, 3);
  assert.ok(rn > 7.9 && rn < 8.6, `rgb noise ${rn}`);
});

test("complexity grows with the fraction of noisy pixels, and smooth images sit between", () => {
  const rng = makeRng(2);
  const base = Uint8Array.from(
    { length: H * W },
    (_, i) => 100 + ((i % W) + Math.floor(i / W)) * 2,
  );
  let previous = -Infinity;
  // Seen: 0.17, 2.3, 3.5, 5.1, 6.5, 7.7 bits/dim. Past about half noise deflate stores the rows
  // (8 bits plus framing), so the curve saturates: the all-noise image is only required to be >=.
  for (const fraction of [0, 0.05, 0.1, 0.2, 0.3, 0.45]) {
    const img = base.map((v) => (rng.uniform() < fraction ? rng.int(256) : v));
    const bits = complexityBitsPerDim(img, H, W);
    assert.ok(bits > previous, `fraction ${fraction}: ${bits} <= ${previous}`);
    previous = bits;
  }
  const noise = complexityBitsPerDim(
    base.map(() => rng.int(256)),
    H,
    W,
  );
  assert.ok(noise >= previous, `noise ${noise} < ${previous}`);
  // A gradient with +/-2 grey levels of noise: the adaptive filters predict it, so it is well below noise.
  const smooth = base.map((v) => v + rng.int(5) - 2);
  const bits = complexityBitsPerDim(smooth, H, W);
  assert.ok(bits > 1 && bits < 5, `smooth noisy gradient ${bits}`);
});

test("counts the IDAT payload: the rest of the PNG file is a constant 57 bytes per image", () => {
  const rng = makeRng(3);
  for (const channels of [1, 3]) {
    const img = Uint8Array.from({ length: H * W * channels }, () => rng.int(64));
    const bits = complexityBitsPerDim(img, H, W, channels);
    const file = encodePng(
      { width: W, height: H, channels: channels as 1 | 3, data: img },
      { filter: "adaptive" },
    );
    assert.equal((bits * H * W * channels) / 8 + 57, file.length);
  }
});

test("complexityOfImages matches one call per image", () => {
  const rng = makeRng(4);
  const count = 5;
  const pixels = Uint8Array.from({ length: count * H * W * 3 }, (_, i) =>
    i % 7 === 0 ? rng.int(256) : 50,
  );
  const all = complexityOfImages(pixels, count, H, W, 3);
  assert.equal(all.length, count);
  for (let i = 0; i < count; i++) {
    assert.equal(
      all[i],
      complexityBitsPerDim(pixels.subarray(i * H * W * 3, (i + 1) * H * W * 3), H, W, 3),
    );
  }
});

test("complexityCorrectedScores subtracts complexity from the model's bits/dim", () => {
  const s = complexityCorrectedScores([3.5, 2, Infinity], Float64Array.from([1, 2.5, 4]));
  assert.deepEqual([...s], [2.5, -0.5, Infinity]);
});

test("clear errors for wrong lengths and shapes", () => {
  assert.throws(
    () => complexityBitsPerDim(new Uint8Array(10), 3, 3),
    /pixels has 10 bytes, expected 3\*3\*1 = 9/,
  );
  assert.throws(
    () => complexityBitsPerDim(new Uint8Array(8), 2, 2, 2),
    /channels must be 1 \(grey\) or 3 \(RGB\), got 2/,
  );
  assert.throws(
    () => complexityBitsPerDim(new Uint8Array(0), 0, 2),
    /height and width must be positive integers, got 0x2/,
  );
  assert.throws(
    () => complexityOfImages(new Uint8Array(17), 2, 3, 3),
    /pixels has 17 bytes, expected 2 images of 3\*3\*1 = 18/,
  );
  assert.throws(
    () => complexityOfImages(new Uint8Array(9), 0, 3, 3),
    /count must be a positive integer, got 0/,
  );
  assert.throws(() => complexityCorrectedScores([1, 2], [1]), /2 model scores but 1 complexities/);
  assert.throws(() => complexityCorrectedScores([NaN, 2], [1, 1]), /1 score\(s\) are NaN/);
});

test("complexityBitsPerDimAsync: the same figure from any zlib compressor; CompressionStream close to level 9", async () => {
  const { deflateSync } = await import("node:zlib");
  const rng = makeRng(5);
  for (const kind of ["smooth", "noise"] as const) {
    const px = Uint8Array.from({ length: 28 * 28 }, (_, i) =>
      kind === "noise" ? rng.int(256) : Math.round(127 + 100 * Math.sin(i / 40)),
    );
    const level9 = await complexityBitsPerDimAsync(
      px,
      28,
      28,
      1,
      async (raw) => new Uint8Array(deflateSync(raw, { level: 9 })),
    );
    assert.equal(level9, complexityBitsPerDim(px, 28, 28));
    const stream = await complexityBitsPerDimAsync(px, 28, 28);
    // Default-level deflate of the same filtered rows: never shorter than level 9 by much, and close.
    assert.ok(Math.abs(stream - level9) < 0.25, `${kind}: ${stream} vs ${level9}`);
  }
  await assert.rejects(
    complexityBitsPerDimAsync(new Uint8Array(5), 28, 28),
    /expected 28\*28\*1 = 784/,
  );
});

test("thresholdAtFalseAlarmRate: flags at most the given fraction of the calibration scores", () => {
  const scores = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 1000); // 0..999, shuffled
  const t = thresholdAtFalseAlarmRate(scores, 0.01);
  assert.equal(t, 990);
  assert.equal(scores.filter((s) => s > t).length, 9);
  assert.equal(thresholdAtFalseAlarmRate([3], 0.5), 3);
  assert.throws(() => thresholdAtFalseAlarmRate(scores, 0), /rate must be in \(0, 1\)/);
  assert.throws(() => thresholdAtFalseAlarmRate([], 0.1), /no scores/);
  assert.throws(() => thresholdAtFalseAlarmRate([1, NaN], 0.1), /NaN/);
});
