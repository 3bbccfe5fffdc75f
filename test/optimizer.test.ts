import "./helpers/setup.js";
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, jit, defaultDevice, tree, type Array } from "@jax-js/jax";
import {
  makeOptimizer,
  adam,
  adamw,
  clipByNorm,
  globalNorm,
  hoistScalar,
  type OptState,
} from "../src/train/optimizer.js";
import { flatten, trainableMask } from "../src/train/flat-params.js";
import { values, assertClose } from "./helpers/arrays.js";

/** Adam in plain JS doubles, straight from Kingma & Ba (Algorithm 1), with decoupled decay. */
function referenceAdam(
  p0: number[],
  gradOf: (p: number[]) => number[],
  steps: number,
  lr: number,
  { b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0 } = {},
): number[][] {
  let p = [...p0];
  let m = p.map(() => 0);
  let v = p.map(() => 0);
  const out: number[][] = [];
  for (let t = 1; t <= steps; t++) {
    const g = gradOf(p);
    m = m.map((mi, i) => b1 * mi + (1 - b1) * g[i]);
    v = v.map((vi, i) => b2 * vi + (1 - b2) * g[i] * g[i]);
    p = p.map((pi, i) => {
      const mhat = m[i] / (1 - b1 ** t);
      const vhat = v[i] / (1 - b2 ** t);
      return pi - lr * (mhat / (Math.sqrt(vhat) + eps) + wd * pi);
    });
    out.push(p);
  }
  return out;
}

// Quadratic 0.5 * sum(a_i (p_i - c_i)^2): gradient a * (p - c).
const A = [1, 4, 0.25];
const C = [1, -2, 0.5];
const quadGrad = (p: number[]) => p.map((pi, i) => A[i] * (pi - C[i]));

describe("Adam / AdamW", () => {
  after(() => defaultDevice("wasm"));

  it("Adam matches a hand-computed reference for 5 steps on a quadratic (float64)", async () => {
    defaultDevice("cpu");
    const p0 = [0.3, 0.7, -1.2];
    const lr = 0.1;
    const want = referenceAdam(p0, quadGrad, 5, lr);
    const opt = adam();
    let p = np.array(p0, { dtype: np.float64 });
    let state = opt.init(p);
    const a = np.array(A, { dtype: np.float64 });
    const c = np.array(C, { dtype: np.float64 });
    for (let t = 0; t < 5; t++) {
      const g = p.ref.sub(c.ref).mul(a.ref);
      // Alternate a plain-number lr and a scalar-array lr: both must work.
      const lrArg = t % 2 === 0 ? lr : np.array(lr, { dtype: np.float64 });
      [p, state] = opt.update(g, state, p, lrArg);
      assertClose(await values(p.ref), want[t], 1e-12, 1e-10, `step ${t + 1}`);
    }
    assert.deepEqual(await values(state.step), [5]);
    tree.dispose([p, state.m, state.v, a, c]);
  });

  it("AdamW matches the reference with decoupled decay, inside jit (float32)", async () => {
    const p0 = [0.3, 0.7, -1.2];
    const lr = 0.05;
    const wd = 0.1;
    const want = referenceAdam(p0, quadGrad, 4, lr, { wd, b1: 0.8, b2: 0.99 });
    const opt = adamw({ weightDecay: wd, b1: 0.8, b2: 0.99 });
    const step = jit((p: Array, s: OptState, a: Array, c: Array) =>
      opt.update(p.ref.sub(c).mul(a), s, p, lr),
    );
    let p = np.array(p0);
    let state = opt.init(p);
    for (let t = 0; t < 4; t++) {
      [p, state] = step(p, state, np.array(A), np.array(C));
      assertClose(await values(p.ref), want[t], 1e-6, 1e-5, `step ${t + 1}`);
    }
    tree.dispose([p, state]);
    step.dispose();
  });

  it("AdamW neither decays nor updates leaves under `state`", async () => {
    const { vector, spec } = flatten({
      layer: { w: np.array([2, -4]), state: { mean: np.array([3, 5]) } },
    });
    // Vector order: layer.state.mean, layer.w.
    assert.deepEqual(spec.paths, ["layer.state.mean", "layer.w"]);
    const opt = adamw({ weightDecay: 0.5 });
    const lr = 0.1;
    let p = vector;
    let state = opt.init(p);
    // Zero gradient on w: only decay moves it, by the factor (1 - lr * wd) per step.
    // A non-zero gradient on the state entries must be ignored.
    for (let t = 0; t < 3; t++) {
      const g = np.array([7, -9, 0, 0]);
      [p, state] = opt.update(g, state, p, lr, { mask: trainableMask(spec) });
    }
    const f = (1 - lr * 0.5) ** 3;
    assertClose(await values(p), [3, 5, 2 * f, -4 * f], 1e-6, 1e-6, "params");
    assertClose(await values(state.m), [0, 0, 0, 0], 0, 0, "first moment");
    assertClose(await values(state.v), [0, 0, 0, 0], 0, 0, "second moment");
    state.step.dispose();
  });

  it("clipping scales the gradient to the global norm", async () => {
    const g = np.array([3, 0, -4]);
    assertClose(await values(globalNorm(g.ref)), [5], 1e-6, 1e-6, "norm");
    assertClose(
      await values(clipByNorm(g.ref, globalNorm(g.ref), 1)),
      [0.6, 0, -0.8],
      1e-6,
      1e-6,
      "clipped to 1",
    );
    assertClose(
      await values(clipByNorm(g.ref, globalNorm(g.ref), 10)),
      [3, 0, -4],
      1e-6,
      1e-6,
      "under the cap: unchanged",
    );
    assert.deepEqual(await values(clipByNorm(np.zeros([2]), np.array(0), 1)), [0, 0]);

    // Inside the update: the first moment sees the clipped gradient, (1 - b1) * g_clipped.
    const opt = adam({ clipNorm: 1 });
    const p = np.zeros([3]);
    const [p1, s1] = opt.update(g, opt.init(p), p, 0.01);
    assertClose(await values(s1.m), [0.06, 0, -0.08], 1e-6, 1e-6, "m after one clipped step");
    assertClose(
      await values(s1.v),
      [0.001 * 0.36, 0, 0.001 * 0.64],
      1e-9,
      1e-5,
      "v after one clipped step",
    );
    tree.dispose([p1, s1.step]);
  });

  it("validates its JSON config", () => {
    assert.throws(() => makeOptimizer({ kind: "sgd" } as any), /kind must be "adam" or "adamw"/);
    assert.throws(
      () => makeOptimizer({ kind: "adam", weightDecay: 0.1 }),
      /weightDecay needs kind "adamw"/,
    );
    assert.throws(() => adam({ b1: 1 }), /b1 must be in \[0, 1\)/);
    assert.throws(() => adam({ clipNorm: 0 }), /clipNorm must be a positive number/);
    assert.throws(() => adamw({ weightDecay: -1 }), /weightDecay must be a non-negative number/);
    assert.equal(adamw().config.weightDecay, 1e-4);
    assert.equal(adam().config.weightDecay, 0);
  });
});

describe("hoistScalar", () => {
  it("is the scalar itself, eager and under jit, and rejects non-scalars", async () => {
    assert.deepEqual(await values(hoistScalar(np.array(2.5))), [2.5]);
    const f = jit((t: Array, x: Array) => x.mul(hoistScalar(np.exp(t.astype(np.float32).mul(-1)))));
    assertClose(
      await values(f(np.array(2, { dtype: np.int32 }), np.array([1, 2, 3]))),
      [1, 2, 3].map((v) => v * Math.exp(-2)),
      1e-6,
      1e-6,
      "x exp(-t)",
    );
    f.dispose();
    const v = np.zeros([2]);
    assert.throws(() => hoistScalar(v.ref), /expected a scalar, got shape \[2\]/);
    v.dispose();
  });
});
