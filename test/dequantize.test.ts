import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, jit, defaultDevice, type Array } from "@jax-js/jax";
import {
  bitsPerDimFromLogProb,
  dequantize,
  imagePreprocessing,
  logitInverse,
  logitTransform,
  pixelsToArray,
  postprocessImages,
  preprocessImages,
  quantize,
} from "../src/data/dequantize.js";
import { values, assertClose } from "./helpers/arrays.js";
import { liveBuffers } from "./helpers/live-buffers.js";

const f64 = np.float64;

/** float64 exactness checks run on the "cpu" device (wasm evaluates log/exp to float32 accuracy). */
async function onCpu(fn: () => Promise<void>): Promise<void> {
  defaultDevice("cpu");
  try {
    await fn();
  } finally {
    defaultDevice("wasm");
  }
}

/** Every pixel value 0..255 in 4 images of 8x8. */
const PIXELS = Uint8Array.from({ length: 256 }, (_, i) => (i * 113) % 256);
const SHAPE = [4, 8, 8];
const D = 64;

const logistic = (v: number) => 1 / (1 + Math.exp(-v));
const logitJs = (x: number, a: number) => {
  const s = a + (1 - 2 * a) * x;
  return Math.log(s / (1 - s));
};

test("dequantize: x = (p + u) / 256 stays in p's bin, is seeded by the key, and quantize recovers p", () =>
  onCpu(async () => {
    const p = [...PIXELS];
    const x = await values(dequantize(pixelsToArray(PIXELS, SHAPE, f64), random.key(7)));
    const again = await values(dequantize(pixelsToArray(PIXELS, SHAPE, f64), random.key(7)));
    const other = await values(dequantize(pixelsToArray(PIXELS, SHAPE, f64), random.key(8)));
    assert.deepEqual(x, again, "same key, same noise");
    assert.notDeepEqual(x, other, "another key, other noise");
    x.forEach((v, i) =>
      assert.ok(v >= p[i] / 256 && v < (p[i] + 1) / 256, `pixel ${i}: ${v} outside bin ${p[i]}`),
    );
    // The noise spreads over the bin (not a constant offset): mean u near 1/2.
    const meanU = x.reduce((s, v, i) => s + v * 256 - p[i], 0) / x.length;
    assert.ok(Math.abs(meanU - 0.5) < 0.1, `mean noise ${meanU}`);
    const q = await values(quantize(dequantize(pixelsToArray(PIXELS, SHAPE, f64), random.key(7))));
    assert.deepEqual(q, p);
    assert.throws(
      () => pixelsToArray(PIXELS, [3, 8, 8]),
      /shape \[3, 8, 8\] holds 192 values, got 256 pixels/,
    );
  }));

test("logit transform: log-det equals the analytic formula and central finite differences (float64)", () =>
  onCpu(async () => {
    const alpha = 0.05;
    const xs = [0, 1e-9, 0.001, 0.2, 0.5, 0.77, 0.999, 1 - 1e-12];
    const [y, logDet] = logitTransform(np.array(xs, { shape: [2, 4], dtype: f64 }), alpha);
    const yv = await values(y);
    assertClose(
      yv,
      xs.map((v) => logitJs(v, alpha)),
      1e-13,
      1e-12,
      "y",
    );
    const h = 1e-6;
    const fd = xs.map((v) => Math.log((logitJs(v + h, alpha) - logitJs(v - h, alpha)) / (2 * h)));
    const analytic = xs.map((v) => {
      const s = alpha + (1 - 2 * alpha) * v;
      return Math.log(1 - 2 * alpha) - Math.log(s) - Math.log(1 - s);
    });
    const perImage = (a: number[]) =>
      [a.slice(0, 4), a.slice(4)].map((r) => r.reduce((s, v) => s + v, 0));
    const ld = await values(logDet);
    assertClose(ld, perImage(analytic), 1e-12, 1e-12, "log-det vs analytic");
    assertClose(ld, perImage(fd), 1e-7, 1e-7, "log-det vs finite differences");

    // The inverse undoes it and its log-det is the negative, also for a tiny alpha (MAF's 1e-6).
    for (const a of [alpha, 1e-6]) {
      const [yy, ldF] = logitTransform(np.array(xs, { shape: [2, 4], dtype: f64 }), a);
      const [xBack, ldI] = logitInverse(yy, a);
      assertClose(await values(xBack), xs, 1e-9, 0, `round trip alpha ${a}`);
      const f = await values(ldF);
      assertClose(
        await values(ldI),
        f.map((v) => -v),
        1e-9,
        1e-12,
        `inverse log-det alpha ${a}`,
      );
    }
  }));

test("logit transform under jit equals eager in float64 (constants stay float64)", () =>
  onCpu(async () => {
    const x = random.uniform(random.key(3), [3, 5]).astype(f64);
    const f = jit((v: Array) => logitTransform(v, 1e-6));
    const [yj, lj] = f(x.ref) as [Array, Array];
    const [ye, le] = logitTransform(x, 1e-6);
    const e = await values(ye);
    assertClose(await values(yj), e, 1e-13, 1e-13, "y");
    const el = await values(le);
    assertClose(await values(lj), el, 1e-12, 1e-13, "log-det");
    f.dispose();
  }));

test("bits/dim: a uniform model on [0, 1)^D is exactly 8 without the logit, and 8 through it with the matching density", () =>
  onCpu(async () => {
    // No logit: log p_Y = 0 on [0, 1)^D, log-det 0.
    const [x, ld0] = preprocessImages(
      pixelsToArray(PIXELS, SHAPE, f64),
      random.key(1),
      imagePreprocessing(),
    );
    const xv = await values(x);
    assert.ok(xv.every((v) => v >= 0 && v < 1));
    const bpd0 = await values(bitsPerDimFromLogProb(np.zeros([4], { dtype: f64 }), ld0, D));
    assertClose(bpd0, [8], 1e-13, 0, "uniform, no logit");

    // Logit: if x is uniform on [0, 1)^D, y = logit(alpha + (1 - 2 alpha) x) has density
    // prod sigmoid(y_i) sigmoid(-y_i) / (1 - 2 alpha), evaluated here from y alone.
    for (const alpha of [0.05, 1e-6]) {
      const prep = imagePreprocessing({ logit: true, alpha });
      const [y, ld] = preprocessImages(pixelsToArray(PIXELS, SHAPE, f64), random.key(1), prep);
      const yv = await values(y);
      const logProbY = [0, 1, 2, 3].map((b) =>
        yv
          .slice(b * D, (b + 1) * D)
          .reduce(
            (s, v) => s + Math.log(logistic(v)) + Math.log(logistic(-v)) - Math.log1p(-2 * alpha),
            0,
          ),
      );
      const bpd = await values(bitsPerDimFromLogProb(np.array(logProbY, { dtype: f64 }), ld, D));
      assertClose(bpd, [8], 1e-9, 0, `uniform through the logit, alpha ${alpha}`);
    }
  }));

test("bits/dim formula: (NLL - logdet + D ln 256) / (D ln 2), averaged; float32 too; shape errors", async () => {
  const logProb = np.array([-100, -200]);
  const logDet = np.array([10, 20]);
  const want =
    ((100 - 10 + 4 * Math.log(256)) / (4 * Math.LN2) +
      (200 - 20 + 4 * Math.log(256)) / (4 * Math.LN2)) /
    2;
  assertClose(
    await values(bitsPerDimFromLogProb(logProb, logDet, 4)),
    [want],
    1e-5,
    1e-6,
    "bits/dim",
  );
  const [x, ld] = preprocessImages(
    pixelsToArray(PIXELS, SHAPE),
    random.key(2),
    imagePreprocessing(),
  );
  x.dispose();
  assertClose(
    await values(bitsPerDimFromLogProb(np.zeros([4]), ld, D)),
    [8],
    1e-5,
    0,
    "float32 uniform",
  );
  assert.throws(
    () => bitsPerDimFromLogProb(np.zeros([3]), np.zeros([4]), D),
    /one shape \[batch\], got \[3\] and \[4\]/,
  );
  assert.throws(() => imagePreprocessing({ alpha: 0.5 }), /alpha must be in \(0, 0\.5\), got 0\.5/);
  assert.throws(() => logitTransform(np.zeros([2, 3]), 0), /alpha must be in \(0, 0\.5\), got 0/);
  assert.throws(
    () => logitTransform(np.zeros([3])),
    /expected images of shape \[batch, \.\.\.\], got \[3\]/,
  );
});

test("preprocess -> postprocess round trip gives back the pixels; no buffers leak", async () => {
  const prep = imagePreprocessing({ logit: true });
  const run = async () => {
    const [y, ld] = preprocessImages(pixelsToArray(PIXELS, SHAPE), random.key(4), prep);
    const q = await values(quantize(postprocessImages(y, prep)));
    await values(bitsPerDimFromLogProb(np.zeros([4]), ld, D));
    return q;
  };
  const q = await run(); // warm-up
  // float32 round trip through logit and sigmoid: at most one level off, and rarely.
  const off = q.filter((v, i) => Math.abs(v - PIXELS[i]) > 0);
  assert.ok(
    q.every((v, i) => Math.abs(v - PIXELS[i]) <= 1) && off.length <= 4,
    `${off.length} pixels off`,
  );
  const before = liveBuffers();
  await run();
  await run();
  assert.equal(liveBuffers(), before, "live buffers changed");
});
