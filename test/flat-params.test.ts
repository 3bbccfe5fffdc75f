import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, jit, grad, tree, type Array } from "@jax-js/jax";
import {
  flatten,
  leafPaths,
  trainableMask,
  allTrainable,
  ravel,
  concatVectors,
} from "../src/train/flat-params.js";
import { valueAndGradFlat } from "../src/train/train-step.js";
import type { Params } from "../src/core/types.js";
import { values } from "./helpers/arrays.js";
import { liveBuffers } from "./helpers/live-buffers.js";

/** A tree whose keys are deliberately created out of sorted order. */
function sample(): Params {
  return {
    bijector: [
      { logScale: np.array([1, 2]), loc: np.array([3, 4]) },
      {
        w: np.array([
          [5, 6, 7],
          [8, 9, 10],
        ]),
        state: { mean: np.array([11]), var: np.array(12) },
      },
    ],
    base: { mu: np.array([13]) },
  };
}

describe("flatten", () => {
  it("names leaves by path, objects in sorted key order, lists by index", () => {
    const p = sample();
    assert.deepEqual(leafPaths(p), [
      "base.mu",
      "bijector.0.loc",
      "bijector.0.logScale",
      "bijector.1.state.mean",
      "bijector.1.state.var",
      "bijector.1.w",
    ]);
    tree.dispose(p);
  });

  it("ravels into one vector in that order and unravels back to the same tree", async () => {
    const { vector, unravel, spec } = flatten(sample());
    assert.equal(spec.size, 13);
    assert.deepEqual(await values(vector.ref), [13, 3, 4, 1, 2, 11, 12, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(spec.offsets, [0, 1, 3, 5, 6, 7]);
    assert.deepEqual(spec.shapes, [[1], [2], [2], [1], [], [2, 3]]);
    const back = unravel(vector) as any;
    // The rebuilt tree keeps the original key order.
    assert.deepEqual(Object.keys(back), ["bijector", "base"]);
    assert.deepEqual(Object.keys(back.bijector[0]), ["logScale", "loc"]);
    assert.deepEqual(back.bijector[1].w.shape, [2, 3]);
    assert.deepEqual(back.bijector[1].state.var.shape, []);
    assert.deepEqual(await values(back.bijector[1].w.ref), [5, 6, 7, 8, 9, 10]);
    assert.deepEqual(await values(back.bijector[0].logScale.ref), [1, 2]);
    tree.dispose(back);
  });

  it("marks leaves under a `state` key as non-trainable", async () => {
    const { vector, spec } = flatten(sample());
    vector.dispose();
    assert.deepEqual(spec.trainable, [true, true, true, false, false, true]);
    assert.equal(allTrainable(spec), false);
    assert.deepEqual(await values(trainableMask(spec)), [1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1]);
  });

  it("unravel works inside jit, and gradients flow through it (eager grad, jitted valueAndGradFlat)", async () => {
    const flat = flatten(sample());
    const { vector, unravel } = flat;
    const ofTree = (p: any) => {
      tree.dispose(p.base);
      tree.dispose(p.bijector[1].state);
      const [a, b] = p.bijector;
      return a.loc.mul(a.logScale).sum().add(b.w.sum().mul(2)) as Array;
    };
    const f = (v: Array) => ofTree(unravel(v));
    const jf = jit(f);
    assert.deepEqual(await values(jf(vector.ref)), [3 * 1 + 4 * 2 + 2 * 45]);
    // w enters linearly: its cotangent is a constant, the case jax-js 0.1.25 gets wrong under jit(grad).
    const want = [0, 1, 2, 3, 4, 0, 0, 2, 2, 2, 2, 2, 2];
    assert.deepEqual(await values(grad(f)(vector.ref)), want);
    const jg = jit(valueAndGradFlat(ofTree, flat));
    const [value, g] = jg(vector);
    assert.deepEqual(await values(value), [3 * 1 + 4 * 2 + 2 * 45]);
    assert.deepEqual(await values(g), want);
    jf.dispose();
    jg.dispose();
  });

  it("keeps dtype, rejects mixed dtypes and non-array leaves, and leaks nothing", async () => {
    const f64 = flatten({ a: np.zeros([2], { dtype: np.float64 }) });
    assert.equal(f64.vector.dtype, np.float64);
    tree.dispose(f64.unravel(f64.vector));
    const mixed = { a: np.zeros([2]), b: np.zeros([2], { dtype: np.float64 }) };
    assert.throws(() => flatten(mixed), /one dtype.*a: float32.*b: float64/);
    tree.dispose(mixed);
    assert.throws(() => leafPaths({ a: 3 } as any), /"a" is not an array/);

    const before = liveBuffers();
    const { vector, unravel } = flatten(sample());
    tree.dispose(unravel(vector));
    assert.equal(liveBuffers(), before);
  });

  it("rejects a vector of the wrong length", () => {
    const { vector, unravel } = flatten(sample());
    vector.dispose();
    assert.throws(() => unravel(np.zeros([4])), /expected a vector of shape \[13\], got \[4\]/);
  });

  it("ravel is the inverse of unravel, eager and under jit, and checks the tree against the layout", async () => {
    const { vector, unravel, spec } = flatten(sample());
    const want = await values(vector.ref);
    assert.deepEqual(await values(ravel(unravel(vector.ref), spec)), want);
    const jr = jit((v: Array) => ravel(unravel(v), spec));
    assert.deepEqual(await values(jr(vector.ref)), want);
    jr.dispose();

    const before = liveBuffers();
    const missing = unravel(vector.ref) as any;
    tree.dispose(missing.base);
    delete missing.base;
    assert.throws(
      () => ravel(missing, spec),
      /leaves \[bijector.0.loc, .*\] differ from the layout's \[base.mu, /,
    );
    const reshaped = unravel(vector) as any;
    reshaped.base.mu.dispose();
    reshaped.base.mu = np.zeros([2]);
    assert.throws(
      () => ravel(reshaped, spec),
      /leaf "base.mu" has shape \[2\], the layout says \[1\]/,
    );
    assert.equal(liveBuffers(), before - 1);
  });
});

describe("concatVectors", () => {
  it("equals one concatenation for any number of parts (grouped by about sqrt(n))", async () => {
    for (const n of [1, 2, 3, 7, 10, 50]) {
      const sizes = globalThis.Array.from({ length: n }, (_, i) => 1 + ((i * 7) % 5));
      let next = 0;
      const parts = sizes.map((k) => np.arange(next, (next += k)).astype(np.float32));
      const expected = globalThis.Array.from({ length: next }, (_, i) => i);
      assert.deepEqual(await values(concatVectors(parts)), expected, `${n} parts`);
      const jc = jit((...ps: Array[]) => concatVectors(ps));
      let again = 0;
      assert.deepEqual(
        await values(jc(...sizes.map((k) => np.arange(again, (again += k)).astype(np.float32)))),
        expected,
      );
      jc.dispose();
    }
  });
});
