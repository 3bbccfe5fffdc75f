import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree } from "@jax-js/jax";
import { mlp } from "../src/nn/mlp.js";
import { splitKey } from "../src/core/keys.js";
import { values, f32, f64 } from "./helpers/arrays.js";

describe("mlp", () => {
  it("has the documented parameter shapes and a zero output layer", async () => {
    const net = mlp({ inDim: 3, outDim: 4, hidden: [8, 6], contextDim: 2 });
    const p = net.init(random.key(0), f64);
    assert.deepEqual(
      p.layers.map(({ w, b }) => [w.shape, b.shape]),
      [
        [[5, 8], [8]],
        [[8, 6], [6]],
        [[6, 4], [4]],
      ],
    );
    assert.ok(p.layers.every(({ w, b }) => w.dtype === f64 && b.dtype === f64));
    const [out, hiddenW] = [p.layers[2], p.layers[0].w];
    assert.ok(
      (await values(out.w.ref)).every((v) => v === 0),
      "output weights are zero",
    );
    assert.ok(
      (await values(out.b.ref)).every((v) => v === 0),
      "output bias is zero",
    );
    // He-uniform for relu: |w| <= sqrt(6 / fanIn), and not all zero.
    const w = await values(hiddenW.ref);
    const limit = Math.sqrt(6 / 5);
    assert.ok(
      w.every((v) => Math.abs(v) <= limit) && w.some((v) => v !== 0),
      "hidden weights in the He range",
    );
    tree.dispose(p);
  });

  it("uses Glorot-uniform limits for tanh", async () => {
    const net = mlp({ inDim: 4, outDim: 2, hidden: [16], activation: "tanh" });
    const p = net.init(random.key(1));
    assert.equal(p.layers[0].w.dtype, f32, "float32 by default");
    const w = await values(p.layers[0].w.ref);
    const limit = Math.sqrt(6 / (4 + 16));
    assert.ok(w.every((v) => Math.abs(v) <= limit));
    assert.ok(Math.max(...w.map(Math.abs)) > limit / 2, "spread over the range");
    tree.dispose(p);
  });

  for (const activation of ["relu", "tanh", "gelu"] as const) {
    it(`outputs zeros of shape [batch, outDim] at init (${activation})`, async () => {
      const net = mlp({ inDim: 3, outDim: 4, hidden: [8], activation });
      const [k, kx] = splitKey(random.key(2), 2);
      const y = net.apply(net.init(k), random.normal(kx, [6, 3]));
      assert.deepEqual(y.shape, [6, 4]);
      assert.ok((await values(y)).every((v) => v === 0));
    });
  }

  it("with no hidden layers is a single (zero) linear layer", async () => {
    const net = mlp({ inDim: 2, outDim: 3, hidden: [] });
    const p = net.init(random.key(3));
    assert.equal(p.layers.length, 1);
    const y = net.apply(p, np.ones([4, 2]));
    assert.deepEqual(y.shape, [4, 3]);
    y.dispose();
  });

  it("concatenates the context to the input", async () => {
    // Hand-set a linear net: out = [x, cond] @ w + b, so each column is checkable.
    const net = mlp({ inDim: 2, outDim: 1, hidden: [], contextDim: 1 });
    tree.dispose(net.init(random.key(4)));
    const params = { layers: [{ w: np.array([[1], [10], [100]]), b: np.array([0.5]) }] };
    const x = np.array([
      [1, 2],
      [3, 4],
    ]);
    const cond = np.array([[5], [6]]);
    assert.deepEqual(await values(net.apply(params, x, cond)), [
      1 + 20 + 500 + 0.5,
      3 + 40 + 600 + 0.5,
    ]);
  });

  it("the output depends on the context once the output layer is non-zero", async () => {
    const net = mlp({ inDim: 2, outDim: 2, hidden: [4], contextDim: 3 });
    const [k, kx, k1, k2] = splitKey(random.key(5), 4);
    const init = net.init(k);
    init.layers[1].w.dispose();
    const p = { layers: [init.layers[0], { w: np.ones([4, 2]), b: init.layers[1].b }] };
    const x = random.normal(kx, [3, 2]);
    const a = await values(net.apply(tree.ref(p), x.ref, random.normal(k1, [3, 3])));
    const b = await values(net.apply(p, x, random.normal(k2, [3, 3])));
    assert.ok(a.some((v, i) => Math.abs(v - b[i]) > 1e-6));
  });

  it("computes in the input's dtype, casting the context to it", async () => {
    const net = mlp({ inDim: 2, outDim: 2, hidden: [3], contextDim: 1 });
    const y = net.apply(
      net.init(random.key(6), f64),
      np.ones([2, 2], { dtype: f64 }),
      np.ones([2, 1], { dtype: f32 }),
    );
    assert.equal(y.dtype, f64);
    y.dispose();
  });

  it("rejects a missing or mis-shaped context and a mis-shaped input", () => {
    const net = mlp({ inDim: 2, outDim: 2, hidden: [3], contextDim: 2 });
    const p = net.init(random.key(7));
    assert.throws(
      () => net.apply(tree.ref(p), np.ones([4, 2])),
      /conditional: pass a context of shape \[batch, 2\]/,
    );
    assert.throws(
      () => net.apply(tree.ref(p), np.ones([4, 2]), np.ones([4, 3])),
      /expected context of shape \[4, 2\], got \[4, 3\]/,
    );
    assert.throws(
      () => net.apply(tree.ref(p), np.ones([4, 3]), np.ones([4, 2])),
      /expected input of shape \[batch, 2\], got \[4, 3\]/,
    );
    tree.dispose(p);
  });

  it("unconditional nets accept and dispose a context", async () => {
    const net = mlp({ inDim: 2, outDim: 1, hidden: [3] });
    const y = net.apply(net.init(random.key(8)), np.ones([2, 2]), np.ones([2, 5]));
    assert.deepEqual(await values(y), [0, 0]);
  });

  it("validates its options", () => {
    assert.throws(
      () => mlp({ inDim: 0, outDim: 1, hidden: [] }),
      /inDim must be a positive integer/,
    );
    assert.throws(
      () => mlp({ inDim: 1, outDim: 1, hidden: [4, 0] }),
      /hidden\[1\] must be a positive integer/,
    );
    assert.throws(
      () => mlp({ inDim: 1, outDim: 1, hidden: [], contextDim: -1 }),
      /contextDim must be a non-negative integer/,
    );
    assert.throws(
      () => mlp({ inDim: 1, outDim: 1, hidden: [], activation: "sigmoid" as never }),
      /unknown activation/,
    );
  });
});
