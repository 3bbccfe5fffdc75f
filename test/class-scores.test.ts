/**
 * classScores: a class-conditional image flow's per-class log-likelihoods, the marginal bits/dim
 * under a uniform class prior, and the posterior, checked against imageBitsPerDim run once per
 * class on the same noisy images (the definition, computed another way).
 */
import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { random, tree } from "@jax-js/jax";
import { buildImageFlow } from "../src/models/image.js";
import { classScores } from "../src/eval/class-scores.js";
import { imageBitsPerDim, oneHotRows } from "../src/eval/image-bits.js";
import { perturbParams } from "./helpers/arrays.js";
import { makeRng } from "../src/core/prng.js";

test("classScores: log p(x | c) per class, p(x) as their mean, p(c | x) by Bayes' rule", async () => {
  const classes = 3;
  const flow = buildImageFlow({
    model: "glow",
    shape: [4, 4, 1],
    levels: 1,
    steps: 1,
    hidden: 4,
    blocks: 0,
    classes,
  });
  // Perturbed so that the classes get different densities (a fresh flow ignores its context).
  const params = perturbParams(flow.init(random.key(0)) as any, random.key(1), 0.3) as any;
  const n = 5;
  const rng = makeRng(3);
  const pixels = Uint8Array.from({ length: n * 16 }, () => rng.int(256));
  const s = await classScores(flow, params, pixels, n, 11);
  assert.equal(s.logLik.length, n * classes);

  const dims = 16;
  const perClass: Float64Array[] = [];
  for (let c = 0; c < classes; c++) {
    const cond = oneHotRows(new Uint8Array(n).fill(c), 0, n, classes);
    perClass.push(await imageBitsPerDim(flow, params, pixels, n, 11, cond));
  }
  let spread = 0;
  for (let i = 0; i < n; i++) {
    // bits/dim of each class back to nats: log p(x | c) = -D (b ln 2 - ln 256).
    const logLik = perClass.map((b) => -dims * (b[i] * Math.LN2 - Math.log(256)));
    logLik.forEach((v, c) =>
      assert.ok(
        Math.abs(v - s.logLik[i * classes + c]) < 1e-3 * Math.max(1, Math.abs(v)),
        `image ${i} class ${c}`,
      ),
    );
    const marginal =
      Math.log(logLik.reduce((a, v) => a + Math.exp(v - logLik[0]), 0) / classes) + logLik[0];
    const bits = (-marginal / dims + Math.log(256)) / Math.LN2;
    assert.ok(
      Math.abs(bits - s.bitsPerDim[i]) < 1e-5,
      `marginal bits/dim of image ${i}: ${s.bitsPerDim[i]} vs ${bits}`,
    );
    const post = Array.from(s.posterior.subarray(i * classes, (i + 1) * classes));
    assert.ok(Math.abs(post.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    logLik.forEach((v, c) =>
      assert.ok(Math.abs(post[c] - Math.exp(v - marginal) / classes) < 1e-6),
    );
    // The mixture's density lies between the best and the worst class's.
    assert.ok(
      s.bitsPerDim[i] >= Math.min(...perClass.map((b) => b[i])) - 1e-9 &&
        s.bitsPerDim[i] <= Math.max(...perClass.map((b) => b[i])) + 1e-9,
    );
    spread = Math.max(spread, Math.max(...logLik) - Math.min(...logLik));
  }
  assert.ok(spread > 1e-3, "the perturbed classes should differ, or the test checks nothing");

  const plain = buildImageFlow({
    model: "glow",
    shape: [4, 4, 1],
    levels: 1,
    steps: 1,
    hidden: 4,
    blocks: 0,
  });
  const pp = plain.init(random.key(0));
  await assert.rejects(
    classScores(plain, pp as any, pixels, 1, 0),
    /needs a class-conditional flow/,
  );
  tree.dispose(pp);
  tree.dispose(params);
});
