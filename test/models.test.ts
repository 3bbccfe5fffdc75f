/**
 * Whole flows from the factories: densities that integrate to one, samples
 * whose log-density agrees with logProb, configs that rebuild the model,
 * contexts that matter, clear shape errors, and gradients under jit equal to
 * eager ones (the training path).
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree, jit, grad, defaultDevice, type Array } from "@jax-js/jax";
import { buildFlow, resolveFlowConfig } from "../src/models/index.js";
import { MAX_SIZE, type VectorFlowConfig } from "../src/models/vector.js";
import type { Flow } from "../src/distributions/flow.js";
import { flatten } from "../src/train/flat-params.js";
import { valueAndGradFlat } from "../src/train/train-step.js";
import { values, assertClose, perturbParams, f32, f64 } from "./helpers/arrays.js";

const MODELS: VectorFlowConfig[] = [
  { model: "nice", dim: 2, layers: 4, hidden: [16] },
  { model: "realnvp", dim: 2, layers: 4, hidden: [16] },
  { model: "realnvp", dim: 2, layers: 3, hidden: [16], norm: "batchnorm" },
  { model: "maf", dim: 2, layers: 3, hidden: [16] },
  { model: "iaf", dim: 2, layers: 3, hidden: [16] },
  { model: "maf", dim: 2, layers: 2, hidden: [16], base: { kind: "mixture", components: 3 } },
  { model: "nsf", dim: 2, layers: 3, hidden: [16], bins: 4, tailBound: 3 },
  { model: "nsf-ar", dim: 2, layers: 2, hidden: [16], bins: 5, tailBound: 2.5 },
];

const label = (c: VectorFlowConfig) =>
  `${c.model}${c.contextDim ? ` | context ${c.contextDim}` : ""}${c.norm ? ` + ${c.norm}` : ""}${c.base ? ` on ${c.base.kind}` : ""}`;

function makeModel(
  config: VectorFlowConfig,
  dtype = f32,
  seed = 0,
  scale = 0.05,
): { flow: Flow<any, any>; params: any } {
  const flow = buildFlow(config);
  const [k1, k2] = [...random.split(random.key(seed), 2)];
  const params = perturbParams(flow.init(k1, { dtype }) as any, k2, scale);
  return { flow, params };
}

/** Riemann sum of exp(logProb) over [-L, L]^2 on an n x n midpoint grid. */
async function mass(
  flow: Flow<any, any>,
  params: any,
  cond?: number[],
  L = 9,
  n = 240,
): Promise<number> {
  const h = (2 * L) / n;
  const pts = new Float32Array(n * n * 2);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      pts[2 * (i * n + j)] = -L + (i + 0.5) * h;
      pts[2 * (i * n + j) + 1] = -L + (j + 0.5) * h;
    }
  const x = np.array(pts).reshape([n * n, 2]);
  const c = cond
    ? np
        .array(cond)
        .reshape([1, cond.length])
        .mul(np.ones([n * n, 1]))
    : undefined;
  const lp = await values(flow.logProb(tree.ref(params), x, c));
  return lp.reduce((s, v) => s + Math.exp(v), 0) * h * h;
}

for (const base of MODELS) {
  for (const config of [base, { ...base, contextDim: 3 }]) {
    describe(label(config), () => {
      it("its density integrates to 1 within 1% on a 2-D grid", async () => {
        const { flow, params } = makeModel(config);
        const total = await mass(flow, params, config.contextDim ? [0.5, -1, 0.3] : undefined);
        assert.ok(Math.abs(total - 1) < 0.01, `mass ${total}`);
        tree.dispose(params);
      });

      it("sampleAndLogProb agrees with logProb of the same samples (float64)", async () => {
        defaultDevice("cpu");
        try {
          const { flow, params } = makeModel(config, f64, 1);
          const n = 16;
          const cond = config.contextDim
            ? random.normal(random.key(3), [n, config.contextDim]).astype(f64)
            : undefined;
          const [x, lp] = flow.sampleAndLogProb(tree.ref(params), random.key(2), n, {
            cond: cond?.ref,
          });
          const lp2 = flow.logProb(tree.ref(params), x, cond);
          assertClose(await values(lp), await values(lp2), 1e-9, 1e-9, "log-density");
          tree.dispose(params);
        } finally {
          defaultDevice("wasm");
        }
      });

      it("its JSON config alone rebuilds the same model", async () => {
        const { flow, params } = makeModel(config, f32, 4);
        const rebuilt = buildFlow(JSON.parse(JSON.stringify(flow.config)));
        const x = random.normal(random.key(5), [8, 2]);
        const cond = config.contextDim
          ? random.normal(random.key(6), [8, config.contextDim])
          : undefined;
        const a = await values(flow.logProb(tree.ref(params), x.ref, cond?.ref));
        const b = await values(rebuilt.logProb(tree.ref(params), x, cond));
        assert.deepEqual(a, b);
        tree.dispose(params);
      });

      it("gradients under jit (the training path) equal eager gradients", async () => {
        const { flow, params } = makeModel(config, f32, 7);
        const x = random.normal(random.key(8), [32, 2]);
        const cond = config.contextDim
          ? random.normal(random.key(9), [32, config.contextDim])
          : undefined;
        const flat = flatten(params);
        const { vector, unravel } = flat;
        const lossOf = (p: any, xb: Array, cb?: Array) => flow.logProb(p, xb, cb).mean().neg();
        const loss = (v: Array, xb: Array, cb?: Array) => lossOf(unravel(v), xb, cb);
        const jitted = jit(valueAndGradFlat(lossOf, flat));
        const [, gJit] = cond ? jitted(vector.ref, x.ref, cond.ref) : jitted(vector.ref, x.ref);
        const gEager = cond
          ? grad(loss)(vector.ref, x.ref, cond.ref)
          : grad(loss)(vector.ref, x.ref);
        assertClose(await values(gJit), await values(gEager), 1e-5, 1e-3, "gradient");
        jitted.dispose();
        vector.dispose();
        x.dispose();
        cond?.dispose();
      });

      it("rejects data of the wrong width with the expected shape in the message", () => {
        const { flow, params } = makeModel(config);
        const cond = config.contextDim ? np.zeros([4, config.contextDim]) : undefined;
        assert.throws(() => flow.logProb(tree.ref(params), np.zeros([4, 3]), cond), /\[batch, 2\]/);
        tree.dispose(params);
      });

      if (config.contextDim) {
        it("different contexts give different densities, each normalised", async () => {
          const { flow, params } = makeModel(config, f32, 10, 0.08);
          const m1 = await mass(flow, params, [1, 0, -1]);
          const m2 = await mass(flow, params, [-1, 2, 0]);
          assert.ok(Math.abs(m1 - 1) < 0.01 && Math.abs(m2 - 1) < 0.01, `masses ${m1}, ${m2}`);
          const x = random.normal(random.key(11), [16, 2]);
          const c1 = np
            .array([1, 0, -1])
            .reshape([1, 3])
            .mul(np.ones([16, 1]));
          const c2 = np
            .array([-1, 2, 0])
            .reshape([1, 3])
            .mul(np.ones([16, 1]));
          const a = await values(flow.logProb(tree.ref(params), x.ref, c1));
          const b = await values(flow.logProb(tree.ref(params), x, c2));
          assert.ok(
            a.some((v, i) => Math.abs(v - b[i]) > 1e-3),
            "the context has no effect",
          );
          tree.dispose(params);
        });
      }
    });
  }
}

describe("flow configs", () => {
  it("reject unknown models and bad sizes with a clear message", () => {
    assert.throws(() => buildFlow({ model: "glowy" as never, dim: 2 }), /unknown model "glowy"/);
    assert.throws(() => buildFlow({ model: "realnvp", dim: 1 }), /dim >= 2/);
    assert.throws(() => buildFlow({ model: "maf", dim: 2, hidden: [] }), /hidden/);
    assert.throws(() => buildFlow({ model: "maf", dim: 0 }), /dim must be a positive integer/);
    assert.throws(() => buildFlow({ model: "nsf", dim: 1 }), /dim >= 2.*nsf-ar/);
    assert.throws(
      () => buildFlow({ model: "nsf", dim: 2, bins: 1 }),
      /bins must be an integer from 2/,
    );
    assert.throws(
      () => buildFlow({ model: "nsf-ar", dim: 2, tailBound: 0 }),
      /tailBound must be a positive/,
    );
    assert.throws(
      () => buildFlow({ model: "realnvp", dim: 2, bins: 8 }),
      /bins and tailBound are options of the spline models/,
    );
  });

  it("refuse sizes far beyond any model before building anything (a hostile config would exhaust memory)", () => {
    assert.throws(
      () => resolveFlowConfig({ model: "realnvp", dim: 2, layers: MAX_SIZE.layers + 1 }),
      /layers is 1001, more than the 1000 a flow here can have/,
    );
    assert.throws(
      () => resolveFlowConfig({ model: "realnvp", dim: 1e8 }),
      /dim is 100000000, more than the 100000/,
    );
    assert.throws(
      () => resolveFlowConfig({ model: "maf", dim: 2, hidden: [1e9] }),
      /each hidden width is 1000000000/,
    );
    assert.throws(
      () =>
        resolveFlowConfig({
          model: "maf",
          dim: 2,
          hidden: globalThis.Array.from({ length: 101 }, () => 8),
        }),
      /at most 100 widths/,
    );
    assert.throws(
      () => resolveFlowConfig({ model: "maf", dim: 2, base: { kind: "mixture", components: 1e9 } }),
      /base\.components is 1000000000/,
    );
    assert.throws(
      () => resolveFlowConfig({ model: "maf", dim: 2, base: { kind: "x" } as never }),
      /base must be \{ kind: "standardNormal" \}.*got \{"kind":"x"\}/,
    );
    assert.throws(
      () => resolveFlowConfig({ model: "glow", shape: [8, 8, 1], steps: 1e6 }),
      /steps is 1000000, more than the 1000/,
    );
    assert.throws(
      () => resolveFlowConfig({ model: "glow", shape: [1e6, 8, 1] }),
      /each shape entry is 1000000/,
    );
    // The bounds themselves are allowed.
    assert.equal(
      (resolveFlowConfig({ model: "realnvp", dim: 2, layers: MAX_SIZE.layers }) as VectorFlowConfig)
        .layers,
      1000,
    );
  });
});
