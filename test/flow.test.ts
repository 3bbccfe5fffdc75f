/**
 * The Flow (transformed distribution): its density integrates to 1, sampling
 * and density agree, encode/decode invert each other, bad inputs give clear
 * errors, nothing leaks, and the context is threaded through.
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  numpy as np,
  random,
  tree,
  jit,
  grad,
  defaultDevice,
  type Array,
  type DType,
} from "@jax-js/jax";
import { Flow, type FlowParams } from "../src/distributions/flow.js";
import { standardNormal } from "../src/distributions/standard-normal.js";
import { diagNormal } from "../src/distributions/diag-normal.js";
import { gaussianMixture } from "../src/distributions/mixture.js";
import type { Distribution } from "../src/distributions/types.js";
import { affine } from "../src/bijectors/affine.js";
import { chain } from "../src/bijectors/chain.js";
import type { Bijector, Params } from "../src/core/types.js";
import { checkInput } from "../src/core/checks.js";
import { splitKey } from "../src/core/keys.js";
import { assertSteadyBuffers } from "./helpers/live-buffers.js";
import { values, assertClose, perturbParams, f32, f64 } from "./helpers/arrays.js";

/** Midpoint rule for the integral of exp(logProb) over [-L, L]^2 (float64 on "cpu"). */
async function integrate2d(logProb: (x: Array) => Array, L = 10, m = 200): Promise<number> {
  const h = (2 * L) / m;
  const pts: number[] = [];
  for (let i = 0; i < m; i++)
    for (let j = 0; j < m; j++) pts.push(-L + (i + 0.5) * h, -L + (j + 0.5) * h);
  const lp = await values(logProb(np.array(pts, { dtype: f64 }).reshape([m * m, 2])));
  return lp.reduce((s, v) => s + Math.exp(v), 0) * h * h;
}

/** A 2-D flow chain([affine, affine]) over `base`, with perturbed (non-identity) params. */
function makeFlow(base: Distribution<any> = standardNormal([2]), dtype: DType = f64, seed = 0) {
  const flow = new Flow({ bijector: chain([affine([2]), affine([2])]), base });
  const [kInit, kPerturb] = splitKey(random.key(seed), 2);
  const p = flow.init(kInit, { dtype });
  const params = { bijector: perturbParams(p.bijector, kPerturb), base: p.base } as FlowParams<
    any,
    any
  >;
  return { flow, params };
}

/**
 * Test-only conditional bijector: an affine map whose shift and log-scale are
 * linear in the context, y = (x - c W) * exp(c V), log|det| = sum(c V).
 */
function contextAffine(dim: number, contextDim: number): Bijector<{ W: Array; V: Array }> {
  const where = "contextAffine";
  return {
    kind: "contextAffine",
    eventShape: [dim],
    contextDim,
    init(key, options = {}) {
      options.x?.dispose();
      options.cond?.dispose();
      const dtype = options.dtype ?? f32;
      const [kW, kV] = splitKey(key, 2);
      return {
        W: random.normal(kW, [contextDim, dim]).astype(dtype),
        V: random.normal(kV, [contextDim, dim]).astype(dtype).mul(0.3),
      };
    },
    forward({ W, V }, x, cond) {
      checkInput(where, [dim], contextDim, x, cond);
      const logScale = np.matmul(cond!.ref, V);
      const y = x.sub(np.matmul(cond!, W)).mul(np.exp(logScale.ref));
      return [y, logScale.sum(1)];
    },
    inverse({ W, V }, y, cond) {
      checkInput(where, [dim], contextDim, y, cond);
      const logScale = np.matmul(cond!.ref, V);
      const x = y.mul(np.exp(logScale.ref.neg())).add(np.matmul(cond!, W));
      return [x, logScale.sum(1).neg()];
    },
  };
}

/** Test-only layer with running statistics: subtracts a stored mean that updateState refreshes. */
function runningCenter(dim: number): Bijector<{ mean: Array }> {
  return {
    kind: "runningCenter",
    eventShape: [dim],
    contextDim: 0,
    init(key, options = {}) {
      key.dispose();
      options.x?.dispose();
      options.cond?.dispose();
      return { mean: np.zeros([dim], { dtype: options.dtype ?? f32 }) };
    },
    forward({ mean }, x, cond) {
      cond?.dispose();
      return [x.sub(mean), np.zeros([x.shape[0]], { dtype: x.dtype })];
    },
    inverse({ mean }, y, cond) {
      cond?.dispose();
      return [y.add(mean), np.zeros([y.shape[0]], { dtype: y.dtype })];
    },
    updateState({ mean }, x, cond) {
      mean.dispose();
      cond?.dispose();
      return { mean: x.mean(0) };
    },
  };
}

describe("Flow", () => {
  for (const [name, base] of [
    ["standard normal", standardNormal([2])],
    ["diagonal normal", diagNormal([2])],
    ["Gaussian mixture", gaussianMixture(2, 3)],
  ] as const) {
    it(`chain([affine, affine]) over a ${name} integrates to 1 on a grid (within 1%)`, async () => {
      defaultDevice("cpu");
      const { flow, params } = makeFlow(base);
      const total = await integrate2d((x) => flow.logProb(params, x));
      assert.ok(Math.abs(total - 1) < 0.01, `integral ${total}`);
    });
  }

  it("sampleAndLogProb agrees with logProb of the same samples (float64)", async () => {
    defaultDevice("cpu");
    const { flow, params } = makeFlow(gaussianMixture(2, 3));
    for (const temperature of [1, 0.6]) {
      const [x, lp] = flow.sampleAndLogProb(tree.ref(params), random.key(5), 16, { temperature });
      const again = flow.logProb(tree.ref(params), x.ref);
      assertClose(await values(lp), await values(again), 1e-10, 1e-10, `T=${temperature}`);
      // sample with the same key gives the same points
      const x2 = flow.sample(tree.ref(params), random.key(5), 16, { temperature });
      assertClose(await values(x2), await values(x), 1e-12, 1e-12, "sample vs sampleAndLogProb");
    }
    tree.dispose(params);
  });

  it("decode(encode(x)) = x", async () => {
    defaultDevice("cpu");
    const { flow, params } = makeFlow();
    const x = random.normal(random.key(2), [6, 2]).astype(f64);
    const z = flow.encode(tree.ref(params), x.ref);
    const back = flow.decode(tree.ref(params), z);
    assertClose(await values(back), await values(x), 1e-12, 1e-12, "round trip");
    tree.dispose(params);
  });

  it("logProb is -Infinity, not NaN, for NaN input", async () => {
    defaultDevice("wasm");
    const { flow, params } = makeFlow(standardNormal([2]), f32);
    const x = np.array([
      [NaN, 0],
      [0.5, -0.3],
      [0, NaN],
    ]);
    const lp = await values(flow.logProb(params, x));
    assert.equal(lp[0], -Infinity);
    assert.ok(Number.isFinite(lp[1]), `finite point gave ${lp[1]}`);
    assert.equal(lp[2], -Infinity);
  });

  it("jit gives the same logProb as eager", async () => {
    defaultDevice("cpu");
    const { flow, params } = makeFlow(diagNormal([2]));
    const x = random.normal(random.key(3), [5, 2]).astype(f64);
    const f = jit((p: FlowParams<any, any>, v: Array) => flow.logProb(p, v));
    const eager = await values(flow.logProb(tree.ref(params), x.ref));
    assertClose(await values(f(params, x)), eager, 1e-12, 1e-12, "jit logProb");
    f.dispose();
  });

  it("wrong shapes give errors naming the expected shape", () => {
    defaultDevice("wasm");
    const { flow, params } = makeFlow(standardNormal([2]), f32);
    assert.throws(
      () => flow.logProb(tree.ref(params), np.zeros([4, 3])),
      /Flow\.logProb: expected input of shape \[batch, 2\], got \[4, 3\]/,
    );
    assert.throws(() => flow.encode(tree.ref(params), np.zeros([4])), /\[batch, 2\]/);
    assert.throws(() => flow.decode(tree.ref(params), np.zeros([4, 2, 1])), /\[batch, 2\]/);
    assert.throws(
      () => flow.logProb(tree.ref(params), np.zeros([4, 2]), np.zeros([4, 1])),
      /unconditional/,
    );
    assert.throws(() => flow.sample(tree.ref(params), random.key(0), 0), /positive integer/);
    assert.throws(
      () => flow.sample(tree.ref(params), random.key(0), 3, { temperature: NaN }),
      /temperature/,
    );
    assert.throws(
      () => new Flow({ bijector: affine([2]), base: standardNormal([3]) }),
      /\[2\].*\[3\]/,
    );
    tree.dispose(params);
  });

  it("leaks no buffers across logProb, sample, sampleAndLogProb, encode and decode", async () => {
    defaultDevice("wasm");
    const { flow, params } = makeFlow(gaussianMixture(2, 3), f32);
    const x = random.normal(random.key(1), [8, 2]);
    const step = async () => {
      await values(flow.logProb(tree.ref(params), x.ref));
      await values(flow.sample(tree.ref(params), random.key(2), 8, { temperature: 0.8 }));
      const [s, lp] = flow.sampleAndLogProb(tree.ref(params), random.key(3), 8);
      await values(s);
      await values(lp);
      await values(flow.decode(tree.ref(params), flow.encode(tree.ref(params), x.ref)));
      // An eager gradient of the log-likelihood (the jitted train step is tested elsewhere).
      const g = grad((p: any) => flow.logProb(p, x.ref).sum())(tree.ref(params));
      await Promise.all((tree.leaves(g) as Array[]).map((a) => a.data()));
    };
    await assertSteadyBuffers(
      step,
      "logProb, sample, sampleAndLogProb, encode, decode and a gradient",
    );
    tree.dispose(params);
    x.dispose();
  });

  it("samples in the parameters' dtype", async () => {
    defaultDevice("cpu");
    const { flow, params } = makeFlow(standardNormal([2]), f64);
    const x = flow.sample(params, random.key(0), 3);
    assert.equal(x.dtype, f64);
    x.dispose();
  });

  it("updateState passes through to layers with running statistics", async () => {
    defaultDevice("wasm");
    const flow = new Flow({
      bijector: chain([runningCenter(2), affine([2])]),
      base: diagNormal([2]),
    });
    const params = flow.init(random.key(0));
    const x = np.array([
      [1, 2],
      [3, 6],
    ]);
    const updated = flow.updateState(params, x) as FlowParams<Params[], any>;
    assert.deepEqual(await values((updated.bijector[0] as { mean: Array }).mean.ref), [2, 4]);
    assert.deepEqual(await values(updated.base.loc.ref), [0, 0]);
    tree.dispose(updated);
    // A flow without such layers returns its params as they are.
    const plain = makeFlow(standardNormal([2]), f32);
    const same = plain.flow.updateState(plain.params, np.zeros([3, 2]));
    assert.equal(same, plain.params);
    tree.dispose(same);
  });
});

describe("conditional Flow", () => {
  const make = (dtype: DType) => {
    const flow = new Flow({
      bijector: chain([contextAffine(2, 3), affine([2])]),
      base: standardNormal([2]),
    });
    const [kInit, kPerturb] = splitKey(random.key(11), 2);
    const p = flow.init(kInit, { dtype });
    return {
      flow,
      params: { bijector: perturbParams(p.bijector, kPerturb), base: p.base } as FlowParams<
        any,
        any
      >,
    };
  };
  const contexts = [
    [0.5, -1, 0.2],
    [-1.2, 0.3, 0.8],
  ];

  it("threads the context through: different contexts give different densities, each normalised", async () => {
    defaultDevice("cpu");
    const { flow, params } = make(f64);
    const x = np.array(
      [
        [0.1, 0.2],
        [-1, 0.5],
      ],
      { dtype: f64 },
    );
    const lps: number[][] = [];
    for (const c of contexts) {
      const cond = np.array([c, c], { dtype: f64 });
      lps.push(await values(flow.logProb(tree.ref(params), x.ref, cond)));
      const total = await integrate2d((grid) => {
        const rows = grid.shape[0];
        return flow.logProb(
          tree.ref(params),
          grid,
          np.broadcastTo(np.array(c, { dtype: f64 }), [rows, 3]),
        );
      });
      assert.ok(Math.abs(total - 1) < 0.01, `context ${c}: integral ${total}`);
    }
    assert.ok(
      lps[0].some((v, i) => Math.abs(v - lps[1][i]) > 1e-3),
      "density does not depend on the context",
    );
    x.dispose();
    tree.dispose(params);
  });

  it("sampleAndLogProb agrees with logProb under a context (float64)", async () => {
    defaultDevice("cpu");
    const { flow, params } = make(f64);
    const cond = random.normal(random.key(4), [10, 3]).astype(f64);
    const [x, lp] = flow.sampleAndLogProb(tree.ref(params), random.key(5), 10, { cond: cond.ref });
    const again = flow.logProb(tree.ref(params), x, cond);
    assertClose(await values(lp), await values(again), 1e-10, 1e-10, "log-density");
    tree.dispose(params);
  });

  it("requires a context of shape [n, contextDim]", () => {
    defaultDevice("wasm");
    const { flow, params } = make(f32);
    assert.throws(
      () => flow.sample(tree.ref(params), random.key(0), 4),
      /conditional: pass a context cond of shape \[4, 3\]/,
    );
    assert.throws(
      () => flow.sample(tree.ref(params), random.key(0), 4, { cond: np.zeros([5, 3]) }),
      /expected context of shape \[4, 3\], got \[5, 3\]/,
    );
    assert.throws(
      () => flow.sampleAndLogProb(tree.ref(params), random.key(0), 4, { cond: np.zeros([4, 2]) }),
      /\[4, 3\]/,
    );
    assert.throws(
      () => flow.logProb(tree.ref(params), np.zeros([4, 2])),
      /conditional: pass a context of shape \[4, 3\]/,
    );
    assert.throws(
      () => flow.logProb(tree.ref(params), np.zeros([4, 2]), np.zeros([3, 3])),
      /expected context of shape \[4, 3\], got \[3, 3\]/,
    );
    tree.dispose(params);
  });

  it("leaks no buffers with a context", async () => {
    defaultDevice("wasm");
    const { flow, params } = make(f32);
    const x = random.normal(random.key(1), [6, 2]);
    const cond = random.normal(random.key(2), [6, 3]);
    const step = async () => {
      await values(flow.logProb(tree.ref(params), x.ref, cond.ref));
      const [s, lp] = flow.sampleAndLogProb(tree.ref(params), random.key(3), 6, { cond: cond.ref });
      await values(s);
      await values(lp);
    };
    await assertSteadyBuffers(step, "conditional logProb and sampleAndLogProb");
    tree.dispose(params);
    x.dispose();
    cond.dispose();
  });
});
