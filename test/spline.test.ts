/**
 * The rational-quadratic spline on its own: against an independent scalar implementation
 * of the paper's formulas, and at the places users of other spline libraries report
 * failures: inputs on the knots and on the tail bound, inverses outside the tails, NaN
 * gradients at bin edges, and extreme conditioner outputs.
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, jit, grad, defaultDevice, type Array } from "@jax-js/jax";
import {
  rationalQuadraticSpline,
  resolveSplineOptions,
  splineParamCount,
} from "../src/bijectors/rational-quadratic.js";
import { values, assertClose, f32, f64 } from "./helpers/arrays.js";

const K = 5;
const B = 2;
const opts = resolveSplineOptions("test", { bins: K, tailBound: B });
const P = splineParamCount(K);

/** The spline of one value in plain float64 JS, straight from Durkan et al. (eqs. 4 and 5). */
function reference(raw: number[], x: number): { y: number; logSlope: number } {
  if (x < -B || x > B) return { y: x, logSlope: 0 };
  const softmax = (r: number[]) => {
    const m = Math.max(...r);
    const e = r.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  const sizes = (r: number[], min: number) => softmax(r).map((p) => min + (1 - K * min) * p);
  const knots = (s: number[]) =>
    [0, ...s.map((_, i) => s.slice(0, i + 1).reduce((a, b) => a + b, 0))].map((v, i) =>
      i === K ? B : -B + 2 * B * v,
    );
  const xs = knots(sizes(raw.slice(0, K), opts.minBinWidth));
  const ys = knots(sizes(raw.slice(K, 2 * K), opts.minBinHeight));
  const shift = Math.log(Math.expm1(1 - opts.minDerivative));
  const inner = raw.slice(2 * K).map((r) => opts.minDerivative + Math.log1p(Math.exp(r + shift)));
  const d = [1, ...inner, 1];
  let k = 0;
  while (k < K - 1 && x >= xs[k + 1]) k++;
  const w = xs[k + 1] - xs[k],
    h = ys[k + 1] - ys[k],
    s = h / w;
  const xi = (x - xs[k]) / w;
  const t = xi * (1 - xi);
  const den = s + (d[k + 1] + d[k] - 2 * s) * t;
  const y = ys[k] + (h * (s * xi * xi + d[k] * t)) / den;
  const slope = (s * s * (d[k + 1] * xi * xi + 2 * s * t + d[k] * (1 - xi) ** 2)) / (den * den);
  return { y, logSlope: Math.log(slope) };
}

/** One row of raw parameters per input value, [n, P], from a seeded normal of scale `scale`. */
function rawFor(n: number, scale: number, dtype = f64, seed = 0): Array {
  return random.normal(random.key(seed), [n, P]).mul(scale).astype(dtype);
}

async function spline(
  raw: Array,
  x: number[],
  dtype = f64,
  inverse = false,
): Promise<{ y: number[]; logSlope: number[] }> {
  const [y, ls] = rationalQuadraticSpline(raw, np.array(x, { dtype }), opts, inverse);
  return { y: await values(y), logSlope: await values(ls) };
}

describe("rational-quadratic spline", () => {
  it("equals the paper's formulas computed independently (float64), inside and outside the tails", async () => {
    defaultDevice("cpu");
    const xs = [-3, -2, -1.7, -0.9, -0.31, 0, 0.2, 0.77, 1.4, 1.99, 2, 2.5];
    const raw = rawFor(xs.length, 1.5);
    const rows = (await values(raw.ref)).reduce<number[][]>(
      (acc, v, i) => (i % P ? acc[acc.length - 1].push(v) : acc.push([v]), acc),
      [],
    );
    const got = await spline(raw, xs);
    const want = xs.map((x, i) => reference(rows[i], x));
    assertClose(
      got.y,
      want.map((w) => w.y),
      1e-12,
      1e-12,
      "y",
    );
    assertClose(
      got.logSlope,
      want.map((w) => w.logSlope),
      1e-12,
      1e-12,
      "log slope",
    );
    defaultDevice("wasm");
  });

  it("is the identity when every raw output is zero (how each layer starts)", async () => {
    defaultDevice("cpu");
    const xs = [-4, -1.3, 0, 0.6, 1.999, 3];
    const got = await spline(np.zeros([xs.length, P], { dtype: f64 }), xs);
    assertClose(got.y, xs, 1e-12, 1e-12, "y");
    assertClose(
      got.logSlope,
      xs.map(() => 0),
      1e-12,
      1e-12,
      "log slope",
    );
    defaultDevice("wasm");
  });

  it("maps the tail bound to itself in both directions and is continuous across it", async () => {
    defaultDevice("cpu");
    const eps = 1e-9;
    const xs = [-B - eps, -B, -B + eps, B - eps, B, B + eps];
    const raw = rawFor(1, 2).reshape([1, P]);
    const rawRows = np.tile(raw, [xs.length, 1]);
    const fwd = await spline(rawRows.ref, xs);
    const inv = await spline(rawRows, xs, f64, true);
    for (const r of [fwd, inv]) {
      assert.equal(r.y[1], -B);
      assert.equal(r.y[4], B);
      assertClose(r.y, xs, 1e-8, 0, "continuity at the bound");
    }
    defaultDevice("wasm");
  });

  it("inverts inside the interval and is the identity (log-det 0) outside it", async () => {
    defaultDevice("cpu");
    const ys = [-1e6, -7, -B - 1e-3, -1.2, 0.1, 1.9, B + 1e-3, 50];
    const raw = rawFor(ys.length, 2, f64, 1);
    const inv = await spline(raw.ref, ys, f64, true);
    const back = await spline(raw, inv.y, f64, false);
    assertClose(back.y, ys, 1e-10, 1e-12, "forward(inverse(y))");
    assertClose(
      back.logSlope,
      inv.logSlope.map((v) => -v),
      1e-9,
      1e-9,
      "log-det of the inverse",
    );
    for (const i of [0, 1, 2, 6, 7]) {
      assert.equal(inv.y[i], ys[i]);
      assert.equal(inv.logSlope[i], 0);
    }
    defaultDevice("wasm");
  });

  it("is finite, with finite gradients, on every knot and at the bound (float32, under jit)", async () => {
    // Identity parameters put the knots at -B + 2B k / K: feed exactly those values.
    const knots = globalThis.Array.from({ length: K + 1 }, (_, k) => -B + (2 * B * k) / K);
    const xs = [...knots, -B - 1, B + 1];
    for (const inverse of [false, true]) {
      const loss = (raw: Array, x: Array) => {
        const [y, ls] = rationalQuadraticSpline(raw, x, opts, inverse);
        return y.sum().add(ls.sum());
      };
      const dRaw = jit(grad(loss));
      const dX = jit(grad((x: Array, raw: Array) => loss(raw, x)));
      const raw = np.zeros([xs.length, P], { dtype: f32 });
      const g1 = await values(dRaw(raw.ref, np.array(xs, { dtype: f32 })));
      const g2 = await values(dX(np.array(xs, { dtype: f32 }), raw));
      assert.ok(
        g1.every(Number.isFinite),
        `${inverse ? "inverse" : "forward"}: non-finite gradient of the raw outputs at a knot`,
      );
      assert.ok(
        g2.every(Number.isFinite),
        `${inverse ? "inverse" : "forward"}: non-finite gradient of x at a knot`,
      );
      dRaw.dispose();
      dX.dispose();
    }
  });

  it("stays finite and monotone with extreme conditioner outputs, and invertible where float64 can tell", async () => {
    const xs = globalThis.Array.from({ length: 41 }, (_, i) => -B + (i * 2 * B) / 40);
    for (const scale of [30, 1e4]) {
      const rawRow = () => np.tile(rawFor(1, scale, f64, 3).reshape([1, P]), [xs.length, 1]);
      const fwd = await spline(rawRow().astype(f32), xs, f32);
      const back = await spline(rawRow().astype(f32), fwd.y, f32, true);
      assert.ok(
        [...fwd.y, ...fwd.logSlope, ...back.y, ...back.logSlope].every(Number.isFinite),
        `scale ${scale}: non-finite value`,
      );
      for (let i = 1; i < xs.length; i++)
        assert.ok(fwd.y[i] >= fwd.y[i - 1], `scale ${scale}: not monotone at ${xs[i]}`);
      // Bins squeezed to minBinHeight with slopes near minDerivative flatten the map to
      // ~1e-6: float32 cannot invert that to x, float64 can.
      defaultDevice("cpu");
      const fwd64 = await spline(rawRow(), xs);
      const back64 = await spline(rawRow(), fwd64.y, f64, true);
      assertClose(back64.y, xs, 1e-6, 0, `scale ${scale}: inverse(forward(x)) in float64`);
      defaultDevice("wasm");
    }
  });

  it("rejects options that cannot make a spline", () => {
    assert.throws(() => resolveSplineOptions("nsf", { bins: 1 }), /bins must be an integer from 2/);
    assert.throws(
      () => resolveSplineOptions("nsf", { tailBound: -1 }),
      /tailBound must be a positive/,
    );
    assert.throws(
      () => resolveSplineOptions("nsf", { bins: 10, minBinWidth: 0.2 }),
      /minBinWidth must be positive and below 1 \/ bins/,
    );
    assert.throws(
      () => resolveSplineOptions("nsf", { minDerivative: 0 }),
      /minDerivative must be in \(0, 1\)/,
    );
  });
});
