import "./helpers/setup.js";
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { defaultDevice, jacfwd, numpy as np, random, tree, type Array } from "@jax-js/jax";
import { continuousFlow } from "../src/bijectors/continuous-flow.js";
import { linearVectorField, mlpVectorField } from "../src/nn/vector-field.js";
import { standardNormal } from "../src/distributions/standard-normal.js";
import { Flow, type FlowParams } from "../src/distributions/flow.js";
import { splitKey } from "../src/core/keys.js";
import { assertClose, perturbParams, values, f32, f64 } from "./helpers/arrays.js";
import { assertSteadyBuffers } from "./helpers/live-buffers.js";

type Mat = number[][];
const matmul = (a: Mat, b: Mat): Mat =>
  a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
const eye = (n: number): Mat =>
  globalThis.Array.from({ length: n }, (_, i) =>
    globalThis.Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)),
  );
const matvec = (a: Mat, v: number[]) => a.map((r) => r.reduce((s, x, k) => s + x * v[k], 0));
/** sum_k A^k / (k + offset)! for k >= 0 (offset 0: expm(A); offset 1: phi(A) = int_0^1 expm(A s) ds). */
function series(a: Mat, offset: number): Mat {
  const n = a.length;
  let term = eye(n).map((r) => r.map((v) => v / factorial(offset)));
  let sum = term.map((r) => [...r]);
  for (let k = 1; k < 60; k++) {
    term = matmul(term, a).map((r) => r.map((v) => v / (k + offset)));
    sum = sum.map((r, i) => r.map((v, j) => v + term[i][j]));
  }
  return sum;
}
const factorial = (k: number): number => (k <= 1 ? 1 : k * factorial(k - 1));

describe("continuousFlow", () => {
  after(() => defaultDevice("wasm"));

  it("a linear field's ODE log-density equals the exact Gaussian density (dopri5 and rk4, float64)", async () => {
    defaultDevice("cpu");
    const D = 3;
    const field = linearVectorField(D, 0.6);
    const [kp, kx] = splitKey(random.key(3), 2);
    const fp = field.init(kp, f64);
    const A = (await values(fp.a.ref)).reduce<Mat>((m, v, i) => {
      (m[Math.floor(i / D)] ??= []).push(v);
      return m;
    }, []);
    const b = await values(fp.b.ref);
    const x = random.normal(kx, [5, D]).astype(f64).mul(1.5);
    const xs = await values(x.ref);
    // Data at t = 1 is x1 = expm(A) x0 + phi(A) b with x0 ~ N(0, I) at t = 0, so
    // log p(x1) = log N(expm(-A) (x1 - phi(A) b)) - tr(A).
    const c = matvec(series(A, 1), b);
    const back = series(
      A.map((r) => r.map((v) => -v)),
      0,
    );
    const trace = A.reduce((s, r, i) => s + r[i], 0);
    const exact = globalThis.Array.from({ length: 5 }, (_, r) => {
      const x1 = xs.slice(r * D, r * D + D);
      const z = matvec(
        back,
        x1.map((v, j) => v - c[j]),
      );
      return -0.5 * z.reduce((s, v) => s + v * v, 0) - (D / 2) * Math.log(2 * Math.PI) - trace;
    });
    for (const ode of [
      { solver: "dopri5" as const, rtol: 1e-8, atol: 1e-8 },
      { solver: "rk4" as const, steps: 40 },
    ]) {
      const bij = continuousFlow(field, ode);
      const flow = new Flow({ bijector: bij, base: standardNormal([D]) });
      const params = { bijector: { field: tree.ref(fp) }, base: {} } as FlowParams<any, any>;
      const lp = await values(flow.logProb(params, x.ref));
      assertClose(lp, exact, 1e-6, 0, `log-density (${ode.solver})`);
      assert.ok(bij.lastStats!.nfe > 0);
      if (ode.solver === "dopri5")
        assert.equal(bij.lastStats!.nfe, 6 * (bij.lastStats!.steps + bij.lastStats!.rejected) + 2);
      else assert.equal(bij.lastStats!.nfe, 160);
    }
    x.dispose();
    tree.dispose(fp);
  });

  it("forward then inverse returns the input, with opposite log-dets (MLP field, context, float64)", async () => {
    defaultDevice("cpu");
    const field = mlpVectorField({ dim: 2, hidden: [16, 16], contextDim: 3 });
    const bij = continuousFlow(field, { solver: "dopri5", rtol: 1e-8, atol: 1e-8 });
    const [kp, kq, kx, kc] = splitKey(random.key(5), 4);
    const params = perturbParams(bij.init(kp, { dtype: f64 }), kq, 0.5) as any;
    const x = random.normal(kx, [4, 2]).astype(f64);
    const cond = random.normal(kc, [4, 3]).astype(f64);
    const [z, ld] = bij.forward(tree.ref(params), x.ref, cond.ref);
    const [x2, ldInv] = bij.inverse(tree.ref(params), z.ref, cond.ref);
    const xs = await values(x.ref);
    assertClose(await values(x2), xs, 1e-6, 0, "round trip");
    const fwd = await values(ld);
    assertClose(
      await values(ldInv),
      fwd.map((v) => -v),
      1e-6,
      0,
      "inverse log-det",
    );
    assert.ok(
      fwd.some((v) => Math.abs(v) > 1e-3),
      "a non-trivial map",
    );
    assert.ok(Math.max(...(await values(z)).map((v, i) => Math.abs(v - xs[i]))) > 1e-3);
    tree.dispose(params);
    x.dispose();
    cond.dispose();
  });

  it("the integrated divergence equals log|det| of the solved map's Jacobian (rk4, float64)", async () => {
    defaultDevice("cpu");
    const field = mlpVectorField({ dim: 2, hidden: [16], activation: "tanh" });
    const bij = continuousFlow(field, { solver: "rk4", steps: 24 });
    const [kp, kq, kx] = splitKey(random.key(8), 3);
    const params = perturbParams(bij.init(kp, { dtype: f64 }), kq, 0.5) as any;
    const x = random.normal(kx, [2, 2]).astype(f64);
    const [, ld] = bij.forward(tree.ref(params), x.ref);
    const want = await values(ld);
    const xs = await values(x);
    for (let i = 0; i < 2; i++) {
      const f = (v: Array) => {
        const [y, l] = bij.forward(tree.ref(params), v.reshape([1, 2]));
        l.dispose();
        return y.reshape([2]);
      };
      const J = jacfwd(f)(np.array(xs.slice(2 * i, 2 * i + 2), { dtype: f64 }));
      const [, logAbsDet] = np.linalg.slogdet(J);
      // The divergence integrates the exact trace; the RK4 map's Jacobian differs by O(h^4).
      assertClose(await values(logAbsDet), [want[i]], 1e-4, 0, `row ${i}`);
      assert.ok(Math.abs(want[i]) > 1e-2, "a map that changes volume");
    }
    tree.dispose(params);
  });

  it("logProb and sample free everything they allocate, and the flow is not jittable", async () => {
    defaultDevice("wasm");
    const field = mlpVectorField({ dim: 2, hidden: [8] });
    const flow = new Flow({
      bijector: continuousFlow(field, { rtol: 1e-4, atol: 1e-4 }),
      base: standardNormal([2]),
    });
    assert.equal(flow.jittable, false);
    const [kp, kq, kx, ks] = splitKey(random.key(9), 4);
    const params = perturbParams(flow.init(kp, { dtype: f32 }) as any, kq, 0.3) as FlowParams<
      any,
      any
    >;
    const x = random.normal(kx, [6, 2]);
    let lp: number[] = [];
    let smp: number[] = [];
    await assertSteadyBuffers(async () => {
      lp = await values(flow.logProb(tree.ref(params), x.ref));
      smp = await values(flow.sample(tree.ref(params), ks.ref, 5));
    }, "logProb and sample");
    assert.ok(lp.every(Number.isFinite) && smp.every(Number.isFinite) && smp.length === 10);
    ks.dispose();
    x.dispose();
    tree.dispose(params);
  });
});
