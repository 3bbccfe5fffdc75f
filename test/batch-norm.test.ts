/**
 * Batch norm beyond the registry suite (which runs evaluation mode): training
 * mode with batch statistics, its log-determinant, and updateState.
 *
 * What the training-mode log-det is checked against: the log|det| of the
 * per-sample map x_i -> y_i with the batch statistics held fixed (the map that
 * evaluation mode applies once the running statistics equal the batch's). It is
 * NOT the log|det| of the diagonal block d y_i / d x_i that jacfwd gives for the
 * whole training-mode batch map, because that also carries the dependence of the
 * statistics on x_i; the last test shows the two differ.
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree, jacfwd, grad, defaultDevice, type Array } from "@jax-js/jax";
import { batchNorm, type BatchNormParams } from "../src/bijectors/batch-norm.js";
import { values, assertClose, f64 } from "./helpers/arrays.js";

defaultDevice("cpu"); // float64 exactness (the wasm device evaluates log/exp to float32 accuracy)

const N = 6;
const D = 3;

/** x: [N, D] with per-feature scales and offsets, as JS rows and as an array. */
async function batch(seed: number): Promise<[Array, number[][]]> {
  const x = random
    .normal(random.key(seed), [N, D])
    .astype(f64)
    .mul(np.array([1, 3, 0.5], { dtype: f64 }))
    .add(2);
  const flat = await values(x.ref);
  return [x, globalThis.Array.from({ length: N }, (_, i) => flat.slice(i * D, i * D + D))];
}

function columnStats(rows: number[][]): { mean: number[]; variance: number[] } {
  const mean = rows[0].map((_, j) => rows.reduce((s, r) => s + r[j], 0) / rows.length);
  const variance = rows[0].map(
    (_, j) => rows.reduce((s, r) => s + (r[j] - mean[j]) ** 2, 0) / rows.length,
  );
  return { mean, variance };
}

/** Non-trivial logGamma and beta, fresh running statistics. */
function params(): BatchNormParams {
  return {
    logGamma: np.array([0.2, -0.4, 0.1], { dtype: f64 }),
    beta: np.array([0.5, -1, 0.25], { dtype: f64 }),
    state: { mean: np.zeros([D], { dtype: f64 }), var: np.ones([D], { dtype: f64 }) },
  };
}

describe("batchNorm in training mode", () => {
  it("normalises with the batch statistics and gives their log-det", async () => {
    const eps = 1e-5;
    const bn = batchNorm(D, { eps });
    const p = bn.init(random.key(0), { dtype: f64 }); // logGamma = 0, beta = 0
    const [x, rows] = await batch(1);
    const [y, logDet] = bn.forward(p, x, undefined, { training: true });
    const yRows = await values(y);
    const got = columnStats(
      globalThis.Array.from({ length: N }, (_, i) => yRows.slice(i * D, i * D + D)),
    );
    const { variance } = columnStats(rows);
    assertClose(got.mean, [0, 0, 0], 1e-12, 0, "output mean");
    assertClose(
      got.variance,
      variance.map((v) => v / (v + eps)),
      1e-12,
      1e-12,
      "output variance",
    );
    const want = variance.reduce((s, v) => s - 0.5 * Math.log(v + eps), 0);
    assertClose(await values(logDet), new globalThis.Array(N).fill(want), 1e-12, 1e-12, "log-det");
  });

  it("log-det equals the per-sample Jacobian's with the batch statistics held fixed", async () => {
    const bn = batchNorm(D, { momentum: 1 });
    const [x, rows] = await batch(2);
    const [yT, ldT] = bn.forward(params(), x.ref, undefined, { training: true });
    // momentum 1: the running statistics become exactly the batch statistics.
    const frozen = bn.updateState!(params(), x.ref);
    const [yE, ldE] = bn.forward(tree.ref(frozen), x.ref, undefined, { training: false });
    const ld = await values(ldT);
    assertClose(
      await values(yE),
      await values(yT),
      1e-12,
      1e-12,
      "evaluation with frozen batch stats = training output",
    );
    assertClose(await values(ldE), ld, 1e-12, 1e-12, "evaluation log-det = training log-det");
    for (let i = 0; i < N; i++) {
      const f = (v: Array) => {
        const [y, l] = bn.forward(tree.ref(frozen), v.reshape([1, D]));
        l.dispose();
        return y.reshape([D]);
      };
      const [, logAbsDet] = np.linalg.slogdet(jacfwd(f)(np.array(rows[i], { dtype: f64 })));
      assertClose(await values(logAbsDet), [ld[i]], 1e-10, 1e-10, `sample ${i}`);
    }
    tree.dispose(frozen);
    x.dispose();
  });

  it("is not the log-det of jacfwd of the whole batch map (the statistics depend on each sample)", async () => {
    const bn = batchNorm(D);
    const [x] = await batch(3);
    const [, ldT] = bn.forward(params(), x.ref, undefined, { training: true });
    const whole = (v: Array) => {
      const [y, l] = bn.forward(params(), v.reshape([N, D]), undefined, { training: true });
      l.dispose();
      return y.reshape([N * D]);
    };
    const J = jacfwd(whole)(x.reshape([N * D])); // [N*D, N*D]
    const block = J.slice([0, D], [0, D]); // d y_0 / d x_0
    const [, logAbsDet] = np.linalg.slogdet(block);
    const [a] = await values(logAbsDet);
    const [b] = await values(ldT);
    assert.ok(Math.abs(a - b) > 1e-3, `expected a difference, got ${a} vs ${b}`);
  });

  it("gives the running statistics no gradient, the trainable parameters one", async () => {
    const bn = batchNorm(D);
    const [x] = await batch(4);
    for (const training of [true, false]) {
      const loss = (p: BatchNormParams, v: Array) => {
        const [y, l] = bn.forward(p, v, undefined, { training });
        return y.mul(y.ref).sum().mul(0.5).sub(l.sum());
      };
      const g = grad(loss)(params(), x.ref) as BatchNormParams;
      assertClose(
        await values(g.state.mean),
        [0, 0, 0],
        0,
        0,
        `mean gradient (training ${training})`,
      );
      assertClose(
        await values(g.state.var),
        [0, 0, 0],
        0,
        0,
        `var gradient (training ${training})`,
      );
      assert.ok(
        (await values(g.logGamma)).some((v) => v !== 0),
        "logGamma gets a gradient",
      );
      assert.ok(
        (await values(g.beta)).some((v) => v !== 0),
        "beta gets a gradient",
      );
    }
    x.dispose();
  });
});

describe("batchNorm.updateState", () => {
  it("moves the running statistics towards the batch's by momentum and keeps the rest", async () => {
    const momentum = 0.1;
    const bn = batchNorm(D, { momentum });
    const [x, rows] = await batch(5);
    const start = params();
    start.state.mean.dispose();
    start.state.var.dispose();
    start.state = {
      mean: np.array([1, -1, 0.5], { dtype: f64 }),
      var: np.array([2, 0.5, 1], { dtype: f64 }),
    };
    const p = bn.updateState!(start, x);
    const { mean, variance } = columnStats(rows);
    const oldMean = [1, -1, 0.5];
    const oldVar = [2, 0.5, 1];
    assertClose(
      await values(p.state.mean),
      oldMean.map((m, j) => 0.9 * m + momentum * mean[j]),
      1e-12,
      1e-12,
      "mean",
    );
    assertClose(
      await values(p.state.var),
      oldVar.map((v, j) => 0.9 * v + momentum * variance[j]),
      1e-12,
      1e-12,
      "var",
    );
    assertClose(await values(p.logGamma), [0.2, -0.4, 0.1], 0, 0, "logGamma unchanged");
    assertClose(await values(p.beta), [0.5, -1, 0.25], 0, 0, "beta unchanged");
  });

  it("evaluation mode ignores the rest of the batch; the inverse uses the running statistics", async () => {
    const bn = batchNorm(D);
    const [x, rows] = await batch(6);
    const p = params();
    const [yAll] = bn.forward(tree.ref(p), x.ref);
    const [yOne] = bn.forward(tree.ref(p), np.array([rows[0]], { dtype: f64 }));
    assertClose(
      await values(yOne),
      (await values(yAll.ref)).slice(0, D),
      1e-12,
      1e-12,
      "sample 0 alone",
    );
    const [x2] = bn.inverse(p, yAll, undefined, { training: true });
    assertClose(await values(x2), await values(x), 1e-12, 1e-12, "inverse round trip");
  });
});
