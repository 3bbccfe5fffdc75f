/**
 * The class judge: trained on real FashionMNIST it is far above chance; it scores
 * a "flow" whose samples are the requested class's mean image as recognisable, and
 * an untrained class-conditional Glow (which ignores its label) near chance.
 * Needs the Debian package dataset-fashion-mnist (.ci/run installs it).
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree, type Array } from "@jax-js/jax";
import { loadImageDataset, locateImageDataset } from "../src/data/image-datasets.js";
import { buildImageFlow } from "../src/models/image.js";
import { classAgreement, trainClassJudge } from "../src/eval/class-judge.js";
import type { Flow } from "../src/distributions/flow.js";

const available = locateImageDataset("fashion-mnist", "test").found !== null;
const DIMS = 784;

/** A stand-in flow whose every sample of class c is the mean training image of class c. */
function classMeanFlow(images: Uint8Array, labels: Uint8Array, n: number): Flow<any, any> {
  const sums = new Float64Array(10 * DIMS);
  const counts = new Float64Array(10);
  for (let i = 0; i < n; i++) {
    counts[labels[i]]++;
    for (let d = 0; d < DIMS; d++) sums[labels[i] * DIMS + d] += images[i * DIMS + d];
  }
  // Mid-cell values (p + 0.5) / 256, as a sample of pixel p would be.
  const means = Float32Array.from(
    sums,
    (s, k) => (Math.round(s / counts[Math.floor(k / DIMS)]) + 0.5) / 256,
  );
  return {
    eventShape: [28, 28, 1],
    contextDim: 10,
    sample(_params: unknown, key: Array, m: number, opts: { cond: Array }) {
      key.dispose();
      return np.matmul(opts.cond, np.array(means).reshape([10, DIMS])).reshape([m, 28, 28, 1]);
    },
  } as unknown as Flow<any, any>;
}

describe("class judge", {
  skip: available ? false : "dataset-fashion-mnist is not installed",
}, () => {
  it("recognises class means and rejects label-blind samples", async () => {
    const train = await loadImageDataset("fashion-mnist", "train");
    const test = await loadImageDataset("fashion-mnist", "test");
    const judge = await trainClassJudge({ ...train, n: 6000 }, { ...test, n: 2000 }, DIMS, {
      steps: 300,
      seed: 0,
    });
    try {
      assert.equal(judge.classes, 10);
      assert.ok(
        judge.testAccuracy > 0.7,
        `judge accuracy on real test images ${judge.testAccuracy}`,
      );

      const means = await classAgreement(
        classMeanFlow(train.images, train.labels, 6000),
        {} as any,
        judge,
        3,
        1,
        0,
      );
      assert.ok(means.accuracy >= 0.8, `class means judged as their class: ${means.accuracy}`);
      assert.equal(
        means.confusion.flat().reduce((a, b) => a + b, 0),
        30,
      );

      const flow = buildImageFlow({
        model: "glow",
        shape: [28, 28, 1],
        levels: 2,
        steps: 1,
        hidden: 8,
        blocks: 0,
        classes: 10,
      });
      const params = flow.init(random.key(1));
      const blind = await classAgreement(flow, params, judge, 4, 1, 0);
      tree.dispose(params);
      assert.ok(
        blind.accuracy <= 0.35,
        `an untrained (label-blind) flow judged as its class: ${blind.accuracy}`,
      );
      assert.equal(blind.byClass.length, 10);
    } finally {
      judge.dispose();
    }
  });
});
