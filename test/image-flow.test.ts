/**
 * Image flows: the squeeze ordering, shape checks across shape-changing layers,
 * the image coupling's masks, and a tiny multi-scale Flow whose density
 * (learned prior included) agrees with sampling, with a hand computation, and
 * integrates to one.
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree, defaultDevice } from "@jax-js/jax";
import { Flow, type FlowParams } from "../src/distributions/flow.js";
import { standardNormal } from "../src/distributions/standard-normal.js";
import { squeeze, spaceToDepth } from "../src/bijectors/squeeze.js";
import { chain } from "../src/bijectors/chain.js";
import { invert } from "../src/bijectors/invert.js";
import { actNorm } from "../src/bijectors/actnorm.js";
import { affine } from "../src/bijectors/affine.js";
import { imageAffineCoupling } from "../src/bijectors/image-coupling.js";
import { multiScale, multiScaleShapes, type MultiScaleParams } from "../src/bijectors/split.js";
import { outputShapeOf, type Params } from "../src/core/types.js";
import { splitKey } from "../src/core/keys.js";
import { values, assertClose, perturbParams, f64 } from "./helpers/arrays.js";
import {
  denseImageConditioner,
  testImageCoupling as coupling,
  testPrior,
} from "./helpers/image-conditioner.js";

describe("squeeze", () => {
  it("puts x[2i + a, 2j + b, c] at y[i, j, 4c + 2a + b] and back", async () => {
    const [H, W, C] = [4, 6, 3];
    const n = H * W * C;
    const x = np
      .arange(2 * n)
      .astype(np.float32)
      .reshape([2, H, W, C]);
    const sq = squeeze([H, W, C]);
    assert.deepEqual(sq.outputShape, [2, 3, 12]);
    const [y, ld] = sq.forward({}, x.ref);
    assert.deepEqual(y.shape, [2, 2, 3, 12]);
    const got = await values(y.ref);
    const want: number[] = [];
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < H / 2; i++)
        for (let j = 0; j < W / 2; j++)
          for (let c = 0; c < C; c++)
            for (let a = 0; a < 2; a++)
              for (let bb = 0; bb < 2; bb++)
                want.push(b * n + ((2 * i + a) * W + (2 * j + bb)) * C + c);
    assert.deepEqual(got, want);
    assert.deepEqual(await values(ld), [0, 0]);
    const [back, ld2] = sq.inverse({}, y);
    assert.deepEqual(await values(back), await values(x));
    assert.deepEqual(await values(ld2), [0, 0]);
  });

  it("rejects odd sizes and non-image shapes, and checks the inverse's input shape", () => {
    assert.throws(() => squeeze([3, 4, 1]), /even H and W.*\[3, 4, 1\]/);
    assert.throws(() => squeeze([4, 4]), /\[H, W, C\]/);
    const bad = np.zeros([2, 4, 4, 2]);
    assert.throws(
      () => squeeze([4, 4, 2]).inverse({}, bad),
      /expected input of shape \[batch, 2, 2, 8\]/,
    );
    bad.dispose();
  });
});

describe("shape-changing layers in chain, invert and Flow", () => {
  it("chain reports the last output shape and names mismatched layers", () => {
    const c = chain([squeeze([4, 4, 1]), squeeze([2, 2, 4])]);
    assert.deepEqual(c.eventShape, [4, 4, 1]);
    assert.deepEqual(outputShapeOf(c), [1, 1, 16]);
    assert.equal(chain([affine([3]), affine([3])]).outputShape, undefined);
    assert.throws(
      () => chain([squeeze([4, 4, 1]), affine([4, 4, 1])]),
      /layer 0 \(squeeze\) outputs events of shape \[2, 2, 4\] but layer 1 \(affine\) expects \[4, 4, 1\]/,
    );
  });

  it("invert swaps the shapes", () => {
    const d2s = invert(squeeze([4, 4, 2]));
    assert.deepEqual(d2s.eventShape, [2, 2, 8]);
    assert.deepEqual(d2s.outputShape, [4, 4, 2]);
  });

  it("Flow matches the base against the bijector's output shape", () => {
    const flow = new Flow({ bijector: squeeze([2, 2, 1]), base: standardNormal([1, 1, 4]) });
    assert.deepEqual(flow.eventShape, [2, 2, 1]);
    assert.deepEqual(flow.latentShape, [1, 1, 4]);
    assert.throws(
      () => new Flow({ bijector: squeeze([2, 2, 1]), base: standardNormal([2, 2, 1]) }),
      /output shape \[1, 1, 4\] differs from the base distribution's event shape \[2, 2, 1\]/,
    );
  });

  it("multiScaleShapes and multiScale's level checks", () => {
    assert.deepEqual(multiScaleShapes([8, 8, 1], 3), [
      [8, 8, 1],
      [4, 4, 2],
      [2, 2, 4],
    ]);
    assert.throws(
      () => multiScale({ levels: [actNorm([4, 4, 1]), actNorm([4, 4, 1])] }),
      /level 1 \(actNorm\) takes \[4, 4, 1\] but receives \[2, 2, 2\]/,
    );
    assert.throws(
      () =>
        multiScale({
          levels: [
            actNorm([4, 4, 1]),
            { bijector: actNorm([2, 2, 2]), prior: testPrior([2, 2, 2]) },
          ],
        }),
      /last level .* cannot have a prior/,
    );
    assert.deepEqual(
      multiScale({ levels: [actNorm([4, 4, 1]), actNorm([2, 2, 2])] }).outputShape,
      [16],
    );
  });
});

describe("imageAffineCoupling", () => {
  it("starts as the identity and passes the checkerboard's pass-through pixels bit-for-bit", async () => {
    const layer = coupling([4, 4, 2], "checkerboard", 1);
    const [kInit, kPerturb, kX] = splitKey(random.key(0), 3);
    const p0 = layer.init(kInit);
    const x = random.normal(kX, [3, 4, 4, 2]);
    const [y0, ld0] = layer.forward(tree.ref(p0), x.ref);
    assert.deepEqual(await values(y0), await values(x.ref));
    assert.deepEqual(await values(ld0), [0, 0, 0]);
    const p = perturbParams(p0, kPerturb);
    const [y, ld] = layer.forward(p as any, x.ref);
    const [xs, ys] = [await values(x), await values(y)];
    let moved = 0;
    xs.forEach((v, k) => {
      const pixel = Math.floor(k / 2);
      const [i, j] = [Math.floor(pixel / 4) % 4, pixel % 4];
      if ((i + j) % 2 === 1) assert.equal(ys[k], v, `pass-through entry ${k} changed`);
      else if (ys[k] !== v) moved++;
    });
    assert.ok(moved > 40, "the transformed pixels should change");
    ld.dispose();
  });

  it("rejects bad options and a conditioner of the wrong output shape", () => {
    const conditioner = denseImageConditioner({
      height: 4,
      width: 4,
      inChannels: 1,
      outChannels: 3,
    });
    assert.throws(
      () => imageAffineCoupling({ shape: [4, 4, 1], mask: "channel", parity: 0, conditioner }),
      /at least 2 channels/,
    );
    assert.throws(
      () => imageAffineCoupling({ shape: [4, 4], mask: "checkerboard", parity: 0, conditioner }),
      /\[H, W, C\]/,
    );
    assert.throws(
      () =>
        imageAffineCoupling({ shape: [4, 4, 1], mask: "stripes" as any, parity: 0, conditioner }),
      /mask must be/,
    );
    const layer = imageAffineCoupling({
      shape: [4, 4, 1],
      mask: "checkerboard",
      parity: 0,
      conditioner,
    });
    const p = layer.init(random.key(1));
    const x = np.zeros([2, 4, 4, 1]);
    assert.throws(
      () => layer.forward(p, x),
      /conditioner returned shape \[2, 4, 4, 3\], expected \[2, 4, 4, 2\]/,
    );
  });
});

/**
 * A 2-level multi-scale flow on [4, 4, 1] with a learned prior, ActNorm data
 * init and perturbed (non-identity) parameters, in float64 on the cpu device.
 */
function tinyImageFlow(seed = 0) {
  defaultDevice("cpu");
  const [s1, s2] = multiScaleShapes([4, 4, 1], 2); // [4, 4, 1], [2, 2, 2]
  const level1 = chain([
    actNorm(s1),
    coupling(s1, "checkerboard", 0),
    coupling(s1, "checkerboard", 1),
  ]);
  const level2 = chain([actNorm(s2), coupling(s2, "channel", 0), coupling(s2, "checkerboard", 1)]);
  const prior = testPrior(s2);
  const flow = new Flow({
    bijector: multiScale({ levels: [{ bijector: level1, prior }, level2] }),
    base: standardNormal([16]),
  });
  const [kInit, kPerturb, kData] = splitKey(random.key(seed), 3);
  const data = random.normal(kData, [8, 4, 4, 1]).astype(f64).mul(2).add(1);
  const p = flow.init(kInit, { dtype: f64, x: data });
  const params = { bijector: perturbParams(p.bijector, kPerturb), base: p.base } as FlowParams<
    any,
    any
  >;
  return { flow, params, level1, level2, prior };
}

const gaussLogPdf = (v: number, mu = 0, logSig = 0) => {
  const u = (v - mu) * Math.exp(-logSig);
  return -0.5 * u * u - logSig - 0.5 * Math.log(2 * Math.PI);
};

describe("a multi-scale image Flow", () => {
  it("sampleAndLogProb agrees with logProb and decode(encode(x)) = x (float64)", async () => {
    const { flow, params } = tinyImageFlow();
    assert.deepEqual(flow.eventShape, [4, 4, 1]);
    assert.deepEqual(flow.latentShape, [16]);
    const [x, lp] = flow.sampleAndLogProb(tree.ref(params), random.key(3), 6);
    assert.deepEqual(x.shape, [6, 4, 4, 1]);
    const lp2 = flow.logProb(tree.ref(params), x.ref);
    assertClose(await values(lp), await values(lp2), 1e-9, 1e-9, "sampleAndLogProb vs logProb");
    const z = flow.encode(tree.ref(params), x.ref);
    assert.deepEqual(z.shape, [6, 16]);
    const back = flow.decode(tree.ref(params), z);
    assertClose(await values(back), await values(x), 1e-10, 1e-10, "decode(encode(x))");
    tree.dispose(params);
    defaultDevice("wasm");
  });

  it("the learned prior's density is log N(z1; mu, sig^2) of the factored-out half", async () => {
    const { flow, params, level1, level2, prior } = tinyImageFlow(1);
    const x = random.normal(random.key(5), [4, 4, 4, 1]).astype(f64);
    const want = await values(flow.logProb(tree.ref(params), x.ref));
    // By hand: level 1, squeeze, split (first half kept), prior on the kept half, level 2.
    const [pl1, pl2] = params.bijector as MultiScaleParams;
    const [y1, ld1] = level1.forward(pl1.bijector as Params[], x);
    const u = spaceToDepth(y1);
    const kept = u.ref.slice([], [], [], [0, 2]);
    const z1 = u.slice([], [], [], [2, 4]);
    const out = prior.apply(pl1.prior as any, kept.ref);
    const mu = await values(out.ref.slice([], [], [], [0, 2]));
    const logSig = (await values(out.slice([], [], [], [2, 4]))).map((r) => 3 * Math.tanh(r / 3));
    const [y2, ld2] = level2.forward(pl2.bijector as Params[], kept);
    const [z1v, y2v, ld1v, ld2v] = [
      await values(z1),
      await values(y2),
      await values(ld1),
      await values(ld2),
    ];
    const per = 8; // entries per row of z1 and of y2
    const got = want.map((_, b) => {
      let lp = ld1v[b] + ld2v[b];
      for (let k = b * per; k < (b + 1) * per; k++)
        lp += gaussLogPdf(z1v[k], mu[k], logSig[k]) + gaussLogPdf(y2v[k]);
      return lp;
    });
    assertClose(want, got, 1e-9, 1e-9, "logProb vs the hand computation");
    assert.ok(
      logSig.some((v) => Math.abs(v) > 1e-3),
      "the prior should be non-trivial",
    );
    tree.dispose(params.base);
    defaultDevice("wasm");
  });

  it("the density with a learned prior integrates to 1", async () => {
    defaultDevice("cpu");
    // D = 2 so a fine grid is cheap: level 1 on [1, 1, 2] (no squeeze), factor out one
    // channel under a learned prior given the other, level 2 on the kept [1, 1, 1].
    const bijector = multiScale({
      squeeze: false,
      levels: [
        { bijector: coupling([1, 1, 2], "channel", 0), prior: testPrior([1, 1, 1]) },
        actNorm([1, 1, 1]),
      ],
    });
    const flow = new Flow({ bijector, base: standardNormal([2]) });
    const [kInit, kPerturb] = splitKey(random.key(7), 2);
    const p = flow.init(kInit, { dtype: f64 });
    const params = {
      bijector: perturbParams(p.bijector, kPerturb, 0.5),
      base: p.base,
    } as FlowParams<any, any>;
    // Midpoint rule on [-L, L]^2.
    const [L, m] = [10, 200];
    const h = (2 * L) / m;
    const pts: number[] = [];
    for (let i = 0; i < m; i++)
      for (let j = 0; j < m; j++) pts.push(-L + (i + 0.5) * h, -L + (j + 0.5) * h);
    const x = np.array(pts, { dtype: f64 }).reshape([m * m, 1, 1, 2]);
    const lp = await values(flow.logProb(params, x));
    const mass = lp.reduce((s, v) => s + Math.exp(v), 0) * h * h;
    assert.ok(Math.abs(mass - 1) < 1e-6, `integral ${mass}`);
    defaultDevice("wasm");
  });
});
