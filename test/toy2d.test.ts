import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { TOY_DATASETS, sampleToy2d, EIGHT_CENTRES } from "../src/data/toy2d.js";
import {
  ENTROPY_8GAUSSIANS,
  ENTROPY_CHECKERBOARD,
  inCheckerboard,
  logDensity8Gaussians,
  logDensityCheckerboard,
} from "../src/data/toy2d-density.js";
import { makeRng } from "../src/core/prng.js";

const N = 20000;

function meanStd(v: number[]): { mean: number; se: number; std: number } {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const varr = v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1);
  return { mean, std: Math.sqrt(varr), se: Math.sqrt(varr / v.length) };
}
const col = (d: Float32Array, c: number) =>
  Array.from({ length: d.length / 2 }, (_, i) => d[2 * i + c]);
const radii = (d: Float32Array) =>
  Array.from({ length: d.length / 2 }, (_, i) => Math.hypot(d[2 * i], d[2 * i + 1]));

test("prng: uniform in [0,1), normal has mean 0 and variance 1, deterministic by seed", () => {
  const a = makeRng(7);
  const b = makeRng(7);
  const u = Array.from({ length: N }, () => a.uniform());
  assert.deepEqual(
    u.slice(0, 5),
    Array.from({ length: 5 }, () => b.uniform()),
  );
  assert.ok(u.every((x) => x >= 0 && x < 1));
  const z = Array.from({ length: N }, () => a.normal());
  const s = meanStd(z);
  assert.ok(Math.abs(s.mean) < 4 * s.se, `normal mean ${s.mean}`);
  // Var of the sample variance of N(0,1) is 2/(n-1).
  assert.ok(Math.abs(s.std ** 2 - 1) < 4 * Math.sqrt(2 / N), `normal variance ${s.std ** 2}`);
  assert.throws(() => makeRng(NaN), /finite/);
});

test("every dataset: shape [n, 2], finite, deterministic by seed, differs across seeds", () => {
  for (const name of TOY_DATASETS) {
    for (const n of [0, 1, 7, 200]) {
      const d = sampleToy2d(name, n, 3);
      assert.ok(d instanceof Float32Array);
      assert.equal(d.length, 2 * n, `${name} n=${n}`);
      assert.ok(d.every(Number.isFinite), name);
    }
    assert.deepEqual(sampleToy2d(name, 100, 11), sampleToy2d(name, 100, 11), name);
    assert.notDeepEqual(sampleToy2d(name, 100, 11), sampleToy2d(name, 100, 12), name);
  }
  assert.throws(() => sampleToy2d("nope" as any, 3, 0), /unknown dataset "nope"/);
  assert.throws(() => sampleToy2d("moons", -1, 0), /non-negative integer/);
});

test("8gaussians: each component has the right centre and weight", () => {
  const d = sampleToy2d("8gaussians", N, 1);
  const r = 4 / 1.414;
  const groups: number[][][] = EIGHT_CENTRES.map(() => [[], []]);
  for (let i = 0; i < N; i++) {
    let best = 0;
    let bestD = Infinity;
    EIGHT_CENTRES.forEach(([cx, cy], k) => {
      const dist = (d[2 * i] - r * cx) ** 2 + (d[2 * i + 1] - r * cy) ** 2;
      if (dist < bestD) [best, bestD] = [k, dist];
    });
    groups[best][0].push(d[2 * i]);
    groups[best][1].push(d[2 * i + 1]);
  }
  EIGHT_CENTRES.forEach(([cx, cy], k) => {
    const m = groups[k][0].length;
    // Binomial count: sd sqrt(N p (1-p)).
    assert.ok(Math.abs(m - N / 8) < 4 * Math.sqrt((N * 7) / 64), `component ${k} count ${m}`);
    const sx = meanStd(groups[k][0]);
    const sy = meanStd(groups[k][1]);
    assert.ok(Math.abs(sx.mean - r * cx) < 5 * sx.se, `component ${k} x ${sx.mean}`);
    assert.ok(Math.abs(sy.mean - r * cy) < 5 * sy.se, `component ${k} y ${sy.mean}`);
    assert.ok(Math.abs(sx.std - 0.5 / 1.414) < 0.02, `component ${k} std ${sx.std}`);
  });
});

test("8gaussians entropy: Monte Carlo -mean log p agrees with the constant within 4 standard errors", () => {
  const d = sampleToy2d("8gaussians", N, 2);
  const nlp = Array.from({ length: N }, (_, i) => -logDensity8Gaussians(d[2 * i], d[2 * i + 1]));
  const s = meanStd(nlp);
  assert.ok(
    Math.abs(s.mean - ENTROPY_8GAUSSIANS) < 4 * s.se,
    `MC ${s.mean} +- ${s.se} vs ${ENTROPY_8GAUSSIANS}`,
  );
  // The constant is below the no-overlap value ln 8 + ln(2 pi e s^2).
  const s2 = (0.5 / 1.414) ** 2;
  assert.ok(ENTROPY_8GAUSSIANS < Math.log(8) + Math.log(2 * Math.PI * Math.E * s2));
});

test("checkerboard: all mass on the 8 squares, equal weights, entropy ln 32", () => {
  const d = sampleToy2d("checkerboard", N, 4);
  const counts = new Map<string, number>();
  let inside = 0;
  for (let i = 0; i < N; i++) {
    const x = d[2 * i];
    const y = d[2 * i + 1];
    if (inCheckerboard(x, y)) inside++;
    const key = `${Math.floor(x / 2)},${Math.floor(y / 2)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  // Rounding to float32 can push a point within 2^-23 of a cell edge onto the edge (chance ~1e-7 each).
  assert.ok(inside >= N - 2, `inside ${inside} of ${N}`);
  const big = [...counts.entries()].filter(([, c]) => c > 10);
  assert.equal(big.length, 8);
  for (const [key, c] of big)
    assert.ok(Math.abs(c - N / 8) < 4 * Math.sqrt((N * 7) / 64), `${key}: ${c}`);
  // Monte Carlo entropy: -log p is constant on the support, so the standard error is 0.
  const nlp = Array.from(
    { length: N },
    (_, i) => -logDensityCheckerboard(d[2 * i], d[2 * i + 1]),
  ).filter(Number.isFinite);
  const s = meanStd(nlp);
  assert.ok(Math.abs(s.mean - ENTROPY_CHECKERBOARD) < 1e-9);
  assert.ok(Math.abs(ENTROPY_CHECKERBOARD - 3.4657359) < 1e-6);
});

test("rings: four radii 3, 2.25, 1.5, 0.75 with a quarter of the points each", () => {
  const r = radii(sampleToy2d("rings", N, 5));
  for (const c of [3, 2.25, 1.5, 0.75]) {
    const near = r.filter((x) => Math.abs(x - c) < 0.375);
    assert.ok(Math.abs(near.length - N / 4) < 0.01 * N, `radius ${c}: ${near.length}`);
    const s = meanStd(near);
    assert.ok(Math.abs(s.mean - c) < 0.01, `radius ${c} mean ${s.mean}`);
  }
});

test("circles: half on radius 3, half on radius 1.5", () => {
  const r = radii(sampleToy2d("circles", N, 6));
  const outer = r.filter((x) => x > 2.25);
  assert.ok(Math.abs(outer.length - N / 2) < 0.01 * N);
  assert.ok(Math.abs(meanStd(outer).mean - 3) < 0.02);
  assert.ok(Math.abs(meanStd(r.filter((x) => x <= 2.25)).mean - 1.5) < 0.02);
});

test("moons: mean (0, 0.3) and the two arcs' x ranges", () => {
  const d = sampleToy2d("moons", N, 7);
  const x = meanStd(col(d, 0));
  const y = meanStd(col(d, 1));
  // Before the affine map the mean is (0.5, 0.25): outer arc (0, 2/pi), inner (1, 1/2 - 2/pi).
  assert.ok(Math.abs(x.mean - 0) < 4 * x.se + 1e-3, `x mean ${x.mean}`);
  assert.ok(Math.abs(y.mean - 0.3) < 4 * y.se + 1e-3, `y mean ${y.mean}`);
  assert.ok(Math.min(...col(d, 0)) < -2.5 && Math.max(...col(d, 0)) > 2.5);
});

test("pinwheel: centred, 5 arms, radius around 2", () => {
  const d = sampleToy2d("pinwheel", N, 8);
  const x = meanStd(col(d, 0));
  const y = meanStd(col(d, 1));
  assert.ok(Math.abs(x.mean) < 0.05 && Math.abs(y.mean) < 0.05, `${x.mean}, ${y.mean}`);
  const r = meanStd(radii(d));
  assert.ok(Math.abs(r.mean - 2) < 0.05, `radius ${r.mean}`);
});

test("2spirals: point-symmetric, radius within 3*pi/3 plus noise", () => {
  const d = sampleToy2d("2spirals", N, 9);
  const x = meanStd(col(d, 0));
  assert.ok(Math.abs(x.mean) < 4 * x.se + 1e-3);
  const r = radii(d);
  assert.ok(Math.max(...r) < Math.PI + 0.3 + 0.6);
  assert.ok(r.filter((v) => v > 2).length > 0.2 * N);
});

test("swissroll: mean radius E[t]/5 = 0.6 pi", () => {
  const r = meanStd(radii(sampleToy2d("swissroll", N, 10)));
  assert.ok(Math.abs(r.mean - 0.6 * Math.PI) < 0.03, `radius ${r.mean}`);
});
