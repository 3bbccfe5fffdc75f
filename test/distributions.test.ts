/**
 * Base distributions: densities integrate to 1, log-densities match their
 * closed forms, samples have the right moments, temperature scales the spread,
 * and nothing leaks.
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree, jit, defaultDevice, type Array, type DType } from "@jax-js/jax";
import { standardNormal } from "../src/distributions/standard-normal.js";
import { diagNormal } from "../src/distributions/diag-normal.js";
import { gaussianMixture } from "../src/distributions/mixture.js";
import type { Distribution } from "../src/distributions/types.js";
import type { Params } from "../src/core/types.js";
import { assertSteadyBuffers } from "./helpers/live-buffers.js";
import { values, assertClose, f32, f64 } from "./helpers/arrays.js";

const LOG_2PI = Math.log(2 * Math.PI);

/** Midpoint rule for the integral of exp(logProb) over [-L, L]^2 (float64 on "cpu"). */
async function integrate2d(logProb: (x: Array) => Array, L = 10, m = 200): Promise<number> {
  const h = (2 * L) / m;
  const pts: number[] = [];
  for (let i = 0; i < m; i++)
    for (let j = 0; j < m; j++) pts.push(-L + (i + 0.5) * h, -L + (j + 0.5) * h);
  const lp = await values(logProb(np.array(pts, { dtype: f64 }).reshape([m * m, 2])));
  return lp.reduce((s, v) => s + Math.exp(v), 0) * h * h;
}

/** Fixed, non-trivial parameters so the tests do not hinge on a random draw. */
function diagParams(dtype: DType) {
  return { loc: np.array([0.5, -1], { dtype }), logScale: np.array([0.3, -0.4], { dtype }) };
}
const MIX = {
  logits: [0.2, -0.5, 1],
  means: [
    [-2, 1],
    [1.5, 0],
    [0, -2.5],
  ],
  logScales: [
    [0, -0.3],
    [0.4, 0.2],
    [-0.5, 0.1],
  ],
};
function mixParams(dtype: DType) {
  return {
    logits: np.array(MIX.logits, { dtype }),
    means: np.array(MIX.means, { dtype }),
    logScales: np.array(MIX.logScales, { dtype }),
  };
}
const mixWeights = () => {
  const e = MIX.logits.map(Math.exp);
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

interface Case {
  name: string;
  dist: Distribution<any>;
  params: (dtype: DType) => Params;
  /** Closed-form log-density of one point. */
  logDensity: (z: number[]) => number;
  /** Mean and variance per dimension at a temperature. */
  moments: (t: number) => { mean: number[]; variance: number[] };
}

const normalLogDensity = (z: number[], mu: number[], logS: number[]) =>
  z.reduce(
    (s, v, i) => s - 0.5 * ((v - mu[i]) / Math.exp(logS[i])) ** 2 - logS[i] - 0.5 * LOG_2PI,
    0,
  );

const cases: Case[] = [
  {
    name: "standardNormal",
    dist: standardNormal([2]),
    params: () => ({}),
    logDensity: (z) => z.reduce((s, v) => s - 0.5 * v * v - 0.5 * LOG_2PI, 0),
    moments: (t) => ({ mean: [0, 0], variance: [t * t, t * t] }),
  },
  {
    name: "diagNormal",
    dist: diagNormal([2]),
    params: diagParams,
    logDensity: (z) => normalLogDensity(z, [0.5, -1], [0.3, -0.4]),
    moments: (t) => ({ mean: [0.5, -1], variance: [0.3, -0.4].map((l) => (t * Math.exp(l)) ** 2) }),
  },
  {
    name: "gaussianMixture",
    dist: gaussianMixture(2, 3),
    params: mixParams,
    logDensity: (z) => {
      const w = mixWeights();
      const terms = w.map(
        (wk, k) => Math.log(wk) + normalLogDensity(z, MIX.means[k], MIX.logScales[k]),
      );
      const m = Math.max(...terms);
      return m + Math.log(terms.reduce((s, v) => s + Math.exp(v - m), 0));
    },
    moments: (t) => {
      const w = mixWeights();
      const mean = [0, 1].map((d) => w.reduce((s, wk, k) => s + wk * MIX.means[k][d], 0));
      const second = [0, 1].map((d) =>
        w.reduce(
          (s, wk, k) => s + wk * ((t * Math.exp(MIX.logScales[k][d])) ** 2 + MIX.means[k][d] ** 2),
          0,
        ),
      );
      return { mean, variance: second.map((s, d) => s - mean[d] ** 2) };
    },
  },
];

/** Per-dimension sample mean and variance of an [n, 2] array. */
async function moments(x: Array): Promise<{ mean: number[]; variance: number[] }> {
  const v = await values(x);
  const n = v.length / 2;
  const mean = [0, 1].map((d) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += v[2 * i + d];
    return s / n;
  });
  const variance = [0, 1].map((d) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (v[2 * i + d] - mean[d]) ** 2;
    return s / n;
  });
  return { mean, variance };
}

for (const c of cases) {
  describe(c.name, () => {
    it("integrates to 1 on a 2-D grid (within 1%)", async () => {
      defaultDevice("cpu");
      const total = await integrate2d((x) => c.dist.logProb(c.params(f64), x));
      assert.ok(Math.abs(total - 1) < 0.01, `integral ${total}`);
    });

    it("logProb matches the closed form (float64)", async () => {
      defaultDevice("cpu");
      const pts = [
        [0, 0],
        [1.3, -0.7],
        [-3, 2.5],
        [10, -8],
      ];
      const got = await values(c.dist.logProb(c.params(f64), np.array(pts, { dtype: f64 })));
      assertClose(got, pts.map(c.logDensity), 1e-12, 1e-12, "logProb");
    });

    it("jit gives the same logProb as eager (float64)", async () => {
      defaultDevice("cpu");
      const z = np.array(
        [
          [0.3, 0.7],
          [-2, 1.1],
        ],
        { dtype: f64 },
      );
      const f = jit((p: Params, v: Array) => c.dist.logProb(p, v));
      const eager = await values(c.dist.logProb(c.params(f64), z.ref));
      assertClose(await values(f(c.params(f64), z)), eager, 1e-12, 1e-12, "jit logProb");
      f.dispose();
    });

    it("samples have the right mean and spread; temperature scales it", async () => {
      defaultDevice("wasm");
      const n = 20000;
      for (const t of [1, 0.5]) {
        const x = c.dist.sample(c.params(f32), random.key(7), n, { temperature: t });
        assert.deepEqual(x.shape, [n, 2]);
        assert.equal(x.dtype, f32);
        const got = await moments(x);
        const want = c.moments(t);
        for (let d = 0; d < 2; d++) {
          const sd = Math.sqrt(want.variance[d]);
          assert.ok(
            Math.abs(got.mean[d] - want.mean[d]) < 0.05 * sd + 0.01,
            `T=${t} mean[${d}] ${got.mean[d]} vs ${want.mean[d]}`,
          );
          assert.ok(
            Math.abs(Math.sqrt(got.variance[d]) / sd - 1) < 0.04,
            `T=${t} std[${d}] ${Math.sqrt(got.variance[d])} vs ${sd}`,
          );
        }
      }
    });

    it("init and sample follow the requested dtype", async () => {
      defaultDevice("cpu");
      const p = c.dist.init(random.key(1), { dtype: f64 });
      for (const leaf of tree.leaves(p) as Array[]) assert.equal(leaf.dtype, f64);
      const x = c.dist.sample(p, random.key(2), 4, { dtype: f64 });
      assert.equal(x.dtype, f64);
      assert.deepEqual(x.shape, [4, 2]);
      x.dispose();
    });

    it("leaks no buffers in logProb and sample", async () => {
      defaultDevice("wasm");
      const params = c.params(f32);
      const z = random.normal(random.key(3), [8, 2]);
      const step = async () => {
        await values(c.dist.logProb(tree.ref(params), z.ref));
        await values(c.dist.sample(tree.ref(params), random.key(4), 8, { temperature: 0.7 }));
      };
      await assertSteadyBuffers(step, "logProb/sample");
      tree.dispose(params);
      z.dispose();
    });

    it("rejects bad inputs with clear errors", () => {
      defaultDevice("wasm");
      const params = c.params(f32);
      assert.throws(
        () => c.dist.logProb(tree.ref(params), np.zeros([4, 3])),
        /expected input of shape \[batch, 2\], got \[4, 3\]/,
      );
      assert.throws(() => c.dist.logProb(tree.ref(params), np.zeros([2])), /\[batch, 2\]/);
      assert.throws(() => c.dist.sample(tree.ref(params), random.key(0), 0), /positive integer/);
      assert.throws(
        () => c.dist.sample(tree.ref(params), random.key(0), 3, { temperature: -1 }),
        /temperature/,
      );
      tree.dispose(params);
    });
  });
}

describe("gaussianMixture init", () => {
  it("starts with distinct components and uniform weights", async () => {
    defaultDevice("wasm");
    const p = gaussianMixture(2, 4).init(random.key(0));
    assert.deepEqual(p.means.shape, [4, 2]);
    assert.deepEqual(p.logScales.shape, [4, 2]);
    assert.deepEqual(await values(p.logits), [0, 0, 0, 0]);
    const m = await values(p.means);
    assert.ok(new Set(m).size === m.length, "component means should differ");
    p.logScales.dispose();
  });

  it("rejects a non-positive number of components", () => {
    assert.throws(() => gaussianMixture(2, 0), /components must be a positive integer/);
  });
});
