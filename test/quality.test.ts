/**
 * Short real training runs (RealNVP, and the neural spline flow), judged by numbers that come from the data: the
 * test NLL must sit above the density's entropy (minus sampling error; below it
 * would mean a wrong log-determinant) and well below the best single Gaussian.
 * The full-length figures are in docs/QUALITY.md (npm run quality).
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { random, tree } from "@jax-js/jax";
import { buildFlow } from "../src/models/index.js";
import { fit } from "../src/train/fit.js";
import { logProbRows } from "../src/eval/log-prob-rows.js";
import { sampleToy2d } from "../src/data/toy2d.js";
import { ENTROPY_8GAUSSIANS } from "../src/data/toy2d-density.js";

/** NLL of `test` under the maximum-likelihood Gaussian of `train` (full covariance). */
function gaussianBaseline(train: Float32Array, test: Float32Array): number {
  const n = train.length / 2;
  let mx = 0,
    my = 0;
  for (let i = 0; i < n; i++) {
    mx += train[2 * i] / n;
    my += train[2 * i + 1] / n;
  }
  let sxx = 0,
    syy = 0,
    sxy = 0;
  for (let i = 0; i < n; i++) {
    const dx = train[2 * i] - mx,
      dy = train[2 * i + 1] - my;
    sxx += (dx * dx) / n;
    syy += (dy * dy) / n;
    sxy += (dx * dy) / n;
  }
  const det = sxx * syy - sxy * sxy;
  const m = test.length / 2;
  let total = 0;
  for (let i = 0; i < m; i++) {
    const dx = test[2 * i] - mx,
      dy = test[2 * i + 1] - my;
    const q = (syy * dx * dx - 2 * sxy * dx * dy + sxx * dy * dy) / det;
    total += Math.log(2 * Math.PI) + 0.5 * Math.log(det) + 0.5 * q;
  }
  return total / m;
}

const train = sampleToy2d("8gaussians", 20000, 0);
const test = sampleToy2d("8gaussians", 20000, 2);

/** Train `model` on `train` with a warmed-up cosine schedule; its test NLL and standard error. */
async function trainedNLL(
  model: "realnvp" | "nsf",
  steps: number,
  lr: number,
): Promise<{ nll: number; se: number }> {
  const flow = buildFlow({ model, dim: 2 });
  const result = await fit(
    flow,
    flow.init(random.key(0)),
    { x: train, rows: 20000 },
    {
      steps,
      optimizer: {
        kind: "adam",
        lr: { kind: "cosine", lr, warmupSteps: 100, totalSteps: steps, finalFraction: 0.02 },
      },
    },
  );
  tree.dispose(result.params);
  const logp = await logProbRows(flow, result.bestParams, test);
  tree.dispose(result.bestParams);
  const nll = -logp.reduce((a, b) => a + b, 0) / logp.length;
  const se =
    Math.sqrt(logp.reduce((a, b) => a + (b + nll) ** 2, 0) / logp.length) / Math.sqrt(logp.length);
  return { nll, se };
}

describe("quality on 8 gaussians (short run)", () => {
  it("test NLL lies between the entropy and the best Gaussian, far from the latter", async () => {
    const { nll, se } = await trainedNLL("realnvp", 1500, 1e-3);
    const baseline = gaussianBaseline(train, test);
    assert.ok(
      nll >= ENTROPY_8GAUSSIANS - 4 * se,
      `NLL ${nll} is below the entropy ${ENTROPY_8GAUSSIANS}: the density is not normalised`,
    );
    assert.ok(
      nll <= baseline - 0.75,
      `NLL ${nll} is not well below the best Gaussian's ${baseline}`,
    );
  });
});

describe("quality of the neural spline flow on 8 gaussians (short run)", () => {
  it("comes within 0.06 nats of the entropy (the demo's target) in 1,000 steps, and not below it", async () => {
    const { nll, se } = await trainedNLL("nsf", 1000, 3e-3);
    assert.ok(
      nll >= ENTROPY_8GAUSSIANS - 4 * se,
      `NLL ${nll} is below the entropy ${ENTROPY_8GAUSSIANS}: the density is not normalised`,
    );
    assert.ok(
      nll - ENTROPY_8GAUSSIANS <= 0.06,
      `NLL ${nll} is ${nll - ENTROPY_8GAUSSIANS} nats above the entropy after 1,000 steps`,
    );
  });
});
