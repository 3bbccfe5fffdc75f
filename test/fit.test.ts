import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { blockUntilReady, numpy as np, random, tree } from "@jax-js/jax";
import { buildFlow } from "../src/models/index.js";
import type { VectorFlowConfig } from "../src/models/vector.js";
import { makeRng } from "../src/core/prng.js";
import {
  evaluateNLL,
  fit,
  trainStateFromJSON,
  trainStateToJSON,
  type TrainState,
  type VectorData,
  type ProgressInfo,
} from "../src/train/fit.js";
import { values, assertClose } from "./helpers/arrays.js";
import { flatten } from "../src/train/flat-params.js";
import { liveBuffers } from "./helpers/live-buffers.js";

// A correlated 2-D Gaussian: cov = [[2, 1.2], [1.2, 1]], sampled through its Cholesky factor.
const COV = [
  [2, 1.2],
  [1.2, 1],
];
const DET = COV[0][0] * COV[1][1] - COV[0][1] * COV[1][0];
const ENTROPY = 0.5 * Math.log((2 * Math.PI * Math.E) ** 2 * DET);

function gaussian(rows: number, seed: number): VectorData {
  const rng = makeRng(seed);
  const l11 = Math.sqrt(COV[0][0]);
  const l21 = COV[1][0] / l11;
  const l22 = Math.sqrt(COV[1][1] - l21 * l21);
  const x = new Float32Array(rows * 2);
  for (let i = 0; i < rows; i++) {
    const z1 = rng.normal();
    const z2 = rng.normal();
    x[2 * i] = 1 + l11 * z1;
    x[2 * i + 1] = -0.5 + l21 * z1 + l22 * z2;
  }
  return { x, rows };
}

const config: VectorFlowConfig = { model: "realnvp", dim: 2, layers: 4, hidden: [16, 16] };

function initParams(flow: ReturnType<typeof buildFlow>, data: VectorData) {
  const n = Math.min(256, data.rows);
  return flow.init(random.key(1), { x: np.array(data.x.slice(0, 2 * n), { shape: [n, 2] }) });
}

describe("fit", () => {
  it("fits a correlated Gaussian to within 0.1 nats of its entropy", async () => {
    const flow = buildFlow(config);
    const train = gaussian(2048, 1);
    const test = gaussian(4096, 2);
    const t0 = performance.now();
    const progress: ProgressInfo[] = [];
    const result = await fit(flow, initParams(flow, train), train, {
      steps: 300,
      batchSize: 128,
      optimizer: {
        kind: "adam",
        lr: { kind: "cosine", lr: 5e-3, totalSteps: 300, finalFraction: 0.05 },
      },
      validFraction: 0.1,
      evalEvery: 50,
      onProgress: (info) => progress.push(info),
    });
    const testNLL = await evaluateNLL(flow, result.bestParams, test);
    console.log(
      `fit: ${((performance.now() - t0) / 1000).toFixed(1)} s, test NLL ${testNLL.toFixed(4)}, entropy ${ENTROPY.toFixed(4)}`,
    );
    assert.ok(Math.abs(testNLL - ENTROPY) < 0.1, `test NLL ${testNLL} vs entropy ${ENTROPY}`);
    assert.equal(result.stopReason, "completed");
    assert.equal(result.state.step, 300);
    assert.equal(progress.length, 300);
    // The first step compiles: no speed or ETA from it; from the second on, both are known.
    assert.ok(Number.isNaN(progress[0].stepsPerSecond) && Number.isNaN(progress[0].etaSeconds));
    assert.ok(
      progress.slice(1).every((p) => p.stepsPerSecond > 0 && Number.isFinite(p.etaSeconds)),
    );
    assert.equal(progress[299].etaSeconds, 0);
    assert.deepEqual(
      result.history.map((h) => h.step),
      [50, 100, 150, 200, 250, 300],
    );
    assert.ok(result.history.every((h) => h.validLoss !== null && h.trainLoss !== null));
    assert.equal(result.bestValidLoss, Math.min(...result.history.map((h) => h.validLoss!)));
    tree.dispose(result.params);
  });

  it("stops early after `patience` evaluations without improvement, keeping the best params", async () => {
    const flow = buildFlow(config);
    const train = gaussian(256, 3);
    const common = {
      batchSize: 32,
      optimizer: { kind: "adam", lr: 1e-2 },
      validFraction: 0.25,
      seed: 5,
    } as const;
    // minDelta 1e3: only the first evaluation counts as an improvement.
    const result = await fit(flow, initParams(flow, train), train, {
      ...common,
      steps: 100,
      evalEvery: 5,
      patience: 2,
      minDelta: 1e3,
    });
    assert.equal(result.stopReason, "earlyStopping");
    assert.equal(result.state.step, 15);
    assert.deepEqual(
      result.history.map((h) => h.step),
      [5, 10, 15],
    );
    assert.equal(result.state.best?.step, 5);
    assert.equal(result.bestValidLoss, result.history[0].validLoss);
    // The best params are those after 5 steps: a 5-step run ends there.
    const short = await fit(flow, initParams(flow, train), train, { ...common, steps: 5 });
    assertClose(
      await values(flatten(result.bestParams).vector),
      await values(flatten(short.params).vector),
      0,
      0,
      "best = params at step 5",
    );
    tree.dispose([result.params, short.bestParams]);
  });

  it("skips and counts a batch with a NaN row, and trains on", async () => {
    const flow = buildFlow(config);
    const train = gaussian(64, 4);
    train.x[2 * 17] = NaN;
    const seen: number[] = [];
    const result = await fit(flow, initParams(flow, gaussian(64, 4)), train, {
      steps: 12,
      batchSize: 16,
      optimizer: { kind: "adam", lr: 1e-2 },
      maxBadSteps: 2,
      onProgress: (info) => seen.push(info.skipped),
    });
    // 4 batches per epoch, 3 epochs: the NaN row spoils exactly one batch per epoch.
    assert.equal(result.skipped, 3);
    assert.equal(result.state.skipped, 3);
    assert.equal(seen[11], 3);
    assert.equal(result.state.optimizer.step, 9, "skipped steps do not advance the optimizer");
    assert.ok(result.state.params.every(Number.isFinite));
    assert.ok(result.history.every((h) => h.trainLoss === null || Number.isFinite(h.trainLoss)));
    tree.dispose([result.params, result.bestParams]);
  });

  it("passes every training batch through `augment` with its global step", async () => {
    const flow = buildFlow(config);
    const steps: number[] = [];
    const result = await fit(flow, initParams(flow, gaussian(64, 4)), gaussian(64, 4), {
      steps: 6,
      batchSize: 16,
      maxBadSteps: 3,
      // Spoil the batch of step 3 only: exactly that step must be skipped.
      augment: (batch, step) => {
        steps.push(step);
        if (step === 3) batch[0] = NaN;
      },
    });
    assert.deepEqual(steps, [0, 1, 2, 3, 4, 5]);
    assert.equal(result.skipped, 1);
    tree.dispose([result.params, result.bestParams]);
  });

  it("stops with advice after maxBadSteps non-finite steps in a row, freeing its buffers", async () => {
    const flow = buildFlow(config);
    const good = gaussian(64, 5);
    const bad: VectorData = { x: new Float32Array(64 * 2).fill(NaN), rows: 64 };
    const params = await blockUntilReady(initParams(flow, good)); // realised, so the count is stable
    const before = liveBuffers();
    await assert.rejects(
      fit(flow, params, bad, { steps: 50, batchSize: 16, maxBadSteps: 4 }),
      (e: Error) =>
        /4 training steps in a row/.test(e.message) &&
        /lower learning rate/.test(e.message) &&
        /clip/.test(e.message) &&
        /standardis/.test(e.message),
    );
    assert.ok(liveBuffers() <= before, `leaked ${liveBuffers() - before} buffers`);
  });

  it("resumes exactly: N/2 steps, a JSON round trip of the state, then N/2 more equals N steps", async () => {
    // Batch norm between layers: its running statistics are part of the state too.
    const bnConfig: VectorFlowConfig = { ...config, norm: "batchnorm", layers: 3 };
    const flow = buildFlow(bnConfig);
    const train = gaussian(300, 6);
    const options = {
      steps: 40,
      batchSize: 64,
      seed: 9,
      validFraction: 0.2,
      evalEvery: 7,
      optimizer: { kind: "adamw", lr: { kind: "warmup", lr: 1e-2, warmupSteps: 10 }, clipNorm: 5 },
    } as const;
    const full = await fit(flow, flow.init(random.key(2)), train, options);

    let saved: TrainState | null = null;
    const controller = new AbortController();
    const first = await fit(flow, flow.init(random.key(2)), train, {
      ...options,
      checkpointEvery: 20,
      signal: controller.signal,
      onCheckpoint: (state) => {
        saved = trainStateFromJSON(JSON.parse(JSON.stringify(trainStateToJSON(state))));
        controller.abort();
      },
    });
    assert.equal(first.stopReason, "aborted");
    assert.equal(first.state.step, 20);
    assert.ok(saved !== null);
    // The tree passed with `resume` only gives the structure: use different values.
    const resumed = await fit(flow, flow.init(random.key(99)), train, {
      ...options,
      resume: saved!,
    });
    assert.equal(resumed.state.step, 40);
    assertClose(
      [...resumed.state.params],
      [...full.state.params],
      1e-6,
      1e-6,
      "resumed vs uninterrupted params",
    );
    assertClose(
      [...resumed.state.optimizer.m],
      [...full.state.optimizer.m],
      1e-6,
      1e-6,
      "optimizer m",
    );
    assert.equal(resumed.state.optimizer.step, full.state.optimizer.step);
    const strip = (h: TrainState["history"]) => h.map(({ seconds, ...rest }) => rest);
    assert.deepEqual(strip(resumed.history), strip(full.history));
    assert.equal(resumed.bestValidLoss, full.bestValidLoss);
    // Batch norm's running statistics moved away from their initial (0, 1).
    const stateLeaves = full.state.layout.paths
      .map((p, i) => [p, i] as const)
      .filter(([p]) => p.includes(".state."));
    assert.ok(stateLeaves.length > 0);
    const meanLeaf = full.state.layout.paths.indexOf(stateLeaves[0][0]);
    let offset = 0;
    for (let i = 0; i < meanLeaf; i++)
      offset += full.state.layout.shapes[i].reduce((a, b) => a * b, 1);
    assert.ok(Math.abs(full.state.params[offset]) > 1e-3, "running mean updated");
    tree.dispose([
      full.params,
      full.bestParams,
      first.params,
      first.bestParams,
      resumed.params,
      resumed.bestParams,
    ]);
  });

  it("trains a conditional flow and checks the data's shape", async () => {
    const flow = buildFlow({ ...config, layers: 2, contextDim: 1 });
    const rows = 128;
    const base = gaussian(rows, 7);
    const cond = new Float32Array(rows).map((_, i) => (i % 2 ? 1 : -1));
    for (let i = 0; i < rows; i++) base.x[2 * i] += 2 * cond[i];
    const data: VectorData = { ...base, cond };
    const params = flow.init(random.key(3));
    const result = await fit(flow, tree.ref(params), data, { steps: 10, batchSize: 32 });
    assert.equal(result.skipped, 0);
    await assert.rejects(
      fit(flow, tree.ref(params), base, { steps: 1 }),
      /conditional \(contextDim 1\): pass cond/,
    );
    await assert.rejects(
      fit(flow, params, { x: new Float32Array(5), rows: 3, cond }, { steps: 1 }),
      /x has 5 values, expected rows \* dim = 3 \* 2 = 6/,
    );
    tree.dispose([result.params, result.bestParams]);
  });
});
