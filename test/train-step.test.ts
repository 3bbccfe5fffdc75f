import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree, type Array } from "@jax-js/jax";
import { flatten } from "../src/train/flat-params.js";
import { initOptState, type OptState } from "../src/train/optimizer.js";
import { makeTrainStep, type TrainStep } from "../src/train/train-step.js";
import { nll } from "../src/train/losses.js";
import { values, assertClose } from "./helpers/arrays.js";
import { liveBuffers } from "./helpers/live-buffers.js";

/** Run `n` steps on the same batch, returning the final params/state and how many steps were skipped. */
async function run(step: TrainStep, p: Array, s: OptState, batch: () => Array[], n: number) {
  let skipped = 0;
  for (let i = 0; i < n; i++) {
    const [p2, s2, loss, norm, finite] = step(p, s, ...batch());
    p = p2;
    s = s2;
    loss.dispose();
    norm.dispose();
    if (!(await finite.item())) skipped++;
  }
  return { p, s, skipped };
}

describe("makeTrainStep", () => {
  it("minimises a quadratic; the loss uses a leaf linearly (constant cotangent)", async () => {
    const c = [1, -2, 0.5];
    const flat = flatten({ w: np.zeros([3]), b: np.array(2) });
    // loss = |w - c|^2 + b: b's gradient is the constant 1, so b falls by about lr per step.
    const loss = (p: any, target: Array) => np.square(p.w.sub(target)).sum().add(p.b);
    const step = makeTrainStep(
      loss,
      { kind: "adam", lr: { kind: "cosine", lr: 0.1, totalSteps: 300, finalFraction: 0.01 } },
      flat,
    );
    const { p, s, skipped } = await run(
      step,
      flat.vector,
      initOptState(flat.vector),
      () => [np.array(c)],
      300,
    );
    assert.equal(skipped, 0);
    const out = await values(p);
    // Vector order: b, w.
    assertClose(out.slice(1), c, 2e-3, 0, "w -> c");
    assert.ok(out[0] < 2 - 10, `b should fall steadily (constant gradient), got ${out[0]}`);
    assert.deepEqual(await values(s.step), [300]);
    tree.dispose([s.m, s.v]);
    step.dispose();
  });

  it("fits a 1-D Gaussian's mean and log-std by maximum likelihood", async () => {
    const n = 128;
    const data = random.normal(random.key(7), [n]).mul(0.6).add(1.5);
    const xs = await values(data.ref);
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const mleStd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n); // biased: the MLE
    const flat = flatten({ mu: np.array(0), logSigma: np.array(0) });
    const loss = (p: { mu: Array; logSigma: Array }, x: Array) => {
      const z = x.sub(p.mu).mul(np.exp(p.logSigma.ref.neg()));
      const logProb = z.ref
        .mul(z)
        .mul(-0.5)
        .sub(p.logSigma)
        .sub(0.5 * Math.log(2 * Math.PI));
      return nll(logProb);
    };
    const step = makeTrainStep(
      loss,
      {
        kind: "adam",
        lr: { kind: "cosine", lr: 0.05, warmupSteps: 10, totalSteps: 400, finalFraction: 0 },
      },
      flat,
    );
    const { p, s, skipped } = await run(
      step,
      flat.vector,
      initOptState(flat.vector),
      () => [data.ref],
      400,
    );
    assert.equal(skipped, 0);
    // Vector order: logSigma, mu.
    const [logSigma, mu] = await values(p);
    assertClose([mu, logSigma], [mean, Math.log(mleStd)], 1e-3, 0, "MLE (mean, log std)");
    tree.dispose(s);
    data.dispose();
    step.dispose();
  });

  it("skips and reports non-finite steps, leaving params and optimizer state unchanged", async () => {
    const flat = flatten({ w: np.array([0.5, -1]) });
    // Non-finite loss from a NaN/inf batch; a finite loss (0) with an infinite gradient (sqrt at 0) when x = w.
    const loss = (p: { w: Array }, x: Array) => {
      const d = p.w.sub(x);
      return np
        .square(d.ref)
        .sum()
        .add(np.sqrt(np.abs(d)).sum());
    };
    const step = makeTrainStep(
      loss,
      { kind: "adamw", lr: 0.1, weightDecay: 0.01, clipNorm: 5 },
      flat,
    );
    let p = flat.vector;
    let s = initOptState(p);
    const batches = [
      [0.5, -1],
      [1, 1],
      [NaN, 0],
      [1, 1],
      [0, Infinity],
      [1, 1],
    ];
    let skipped = 0;
    for (const b of batches) {
      const before = [
        ...(await values(p.ref)),
        ...(await values(s.m.ref)),
        ...(await values(s.v.ref)),
        ...(await values(s.step.ref)),
      ];
      const [p2, s2, lossV, norm, finite] = step(p, s, np.array(b));
      p = p2;
      s = s2;
      const ok = (await values(finite))[0] === 1;
      const after = [
        ...(await values(p.ref)),
        ...(await values(s.m.ref)),
        ...(await values(s.v.ref)),
        ...(await values(s.step.ref)),
      ];
      const lossFinite = Number.isFinite((await values(lossV))[0]);
      const normFinite = Number.isFinite((await values(norm))[0]);
      assert.equal(ok, lossFinite && normFinite, "finite flag = finite loss and gradient norm");
      if (b[0] === 0.5)
        assert.ok(lossFinite && !ok, "x = w: finite loss, infinite gradient, skipped");
      if (!ok) {
        skipped++;
        assert.deepEqual(after, before, `batch ${b}: a skipped step must change nothing`);
      } else assert.notDeepEqual(after, before);
    }
    assert.equal(
      skipped,
      3,
      "the infinite-gradient step at x = w, the NaN batch and the inf batch",
    );
    assert.deepEqual(await values(s.step), [3]);
    tree.dispose([p, s.m, s.v]);
    step.dispose();
  });

  it("never updates leaves under `state`", async () => {
    const flat = flatten({ w: np.array([1, 2]), state: { running: np.array([10, 20]) } });
    const loss = (p: any) => np.square(p.w.add(p.state.running)).sum(); // depends on the state, but it is frozen
    const step = makeTrainStep(loss, { kind: "adamw", lr: 0.1, weightDecay: 0.5 }, flat);
    const { p, s } = await run(step, flat.vector, initOptState(flat.vector), () => [], 5);
    const out = await values(p); // order: state.running, w
    assert.deepEqual(out.slice(0, 2), [10, 20]);
    assert.ok(out[2] < 1 && out[3] < 2);
    tree.dispose(s);
    step.dispose();
  });

  it("leaks no buffers across repeated steps", async () => {
    const flat = flatten({ a: np.array([0.1, 0.2, 0.3]), state: { s: np.array(1) } });
    const loss = (p: any, x: Array) => np.square(p.a.sub(x)).sum().add(p.state.s.mul(0));
    const step = makeTrainStep(loss, { kind: "adamw", lr: 0.01, clipNorm: 1 }, flat);
    let p = flat.vector;
    let s = initOptState(p);
    const x = np.array([1, 2, 3]);
    const once = async (bad = false) => {
      const [p2, s2, l, n, f] = step(p, s, bad ? np.array([NaN, 0, 0]) : x.ref);
      p = p2;
      s = s2;
      await values(l);
      await values(n);
      await values(f);
    };
    await once(); // warm-up: compiles and caches constants
    const before = liveBuffers();
    for (let i = 0; i < 4; i++) await once(i === 2);
    assert.equal(liveBuffers(), before, "live buffers changed across train steps");
    tree.dispose([p, s, x]);
    step.dispose();
  });
});
