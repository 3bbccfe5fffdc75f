/**
 * MADE's autoregressive property, proved exactly: the Jacobian of every output
 * with respect to every input that the ordering forbids is exactly zero (float64
 * on the "cpu" device, generic perturbed parameters). Also: seeded random
 * orders are reproducible permutations, masks are not parameters, and the
 * masked autoregressive layer's sequential inverse recovers its input.
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree, jacfwd, defaultDevice, type Array } from "@jax-js/jax";
import { mulberry32 } from "../src/core/prng.js";
import { made, madeOrder, type MadeOptions, type MadeParams } from "../src/nn/made.js";
import { maskedAutoregressive } from "../src/bijectors/masked-autoregressive.js";
import { inverseAutoregressive } from "../src/bijectors/inverse-autoregressive.js";
import { splitKey } from "../src/core/keys.js";
import { values, assertClose, perturbParams, f64 } from "./helpers/arrays.js";

const configs: (MadeOptions & { name: string; dense?: boolean })[] = [
  // With D-1 or more hidden units, deterministic orders connect every allowed pair.
  {
    name: "natural, tanh",
    dim: 5,
    hidden: [16],
    outputsPerDim: 2,
    order: "natural",
    activation: "tanh",
    dense: true,
  },
  {
    name: "reversed, tanh",
    dim: 5,
    hidden: [16],
    outputsPerDim: 2,
    order: "reversed",
    activation: "tanh",
    dense: true,
  },
  {
    name: "natural, two layers, context",
    dim: 5,
    hidden: [12, 12],
    contextDim: 3,
    outputsPerDim: 3,
    order: "natural",
  },
  {
    name: "reversed, relu, context",
    dim: 4,
    hidden: [16],
    contextDim: 2,
    outputsPerDim: 2,
    order: "reversed",
  },
  {
    name: "random seed 0",
    dim: 6,
    hidden: [16],
    outputsPerDim: 2,
    order: "random",
    seed: 0,
    activation: "tanh",
    dense: true,
  },
  {
    name: "random seed 11, two layers, context",
    dim: 6,
    hidden: [10, 7],
    contextDim: 2,
    outputsPerDim: 2,
    order: "random",
    seed: 11,
    activation: "tanh",
    dense: true,
  },
  {
    name: "explicit permutation",
    dim: 4,
    hidden: [8],
    outputsPerDim: 1,
    order: [2, 0, 3, 1],
    activation: "tanh",
    dense: true,
  },
  {
    name: "no hidden layer",
    dim: 4,
    hidden: [],
    contextDim: 1,
    outputsPerDim: 2,
    order: "random",
    seed: 4,
    dense: true,
  },
  { name: "one dimension, context", dim: 1, hidden: [4], contextDim: 2, outputsPerDim: 2 },
];

/** Generic float64 parameters on the cpu device (consumes key). */
function genericParams(net: ReturnType<typeof made>, key: Array): MadeParams {
  const [kInit, kPerturb] = splitKey(key, 2);
  return perturbParams(net.init(kInit, f64), kPerturb) as MadeParams;
}

describe("made: autoregressive property", () => {
  it("jacfwd lays out the Jacobian as [input, output] (the layout read below)", async () => {
    defaultDevice("cpu");
    const A = np.array(
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      { dtype: f64 },
    );
    const J = jacfwd((v: Array) => np.matmul(A.ref, v))(np.array([1, 1], { dtype: f64 }));
    assert.deepEqual(J.shape, [2, 3]);
    assert.deepEqual(await values(J), [1, 3, 5, 2, 4, 6]);
    A.dispose();
  });

  for (const cfg of configs) {
    it(`Jacobian is zero wherever the ordering forbids dependence (${cfg.name})`, async () => {
      defaultDevice("cpu");
      const { name: _name, dense, ...options } = cfg;
      const net = made(options);
      const D = cfg.dim;
      const P = cfg.outputsPerDim;
      const C = cfg.contextDim ?? 0;
      const [kP, kX, kC] = splitKey(random.key(3), 3);
      const params = genericParams(net, kP);
      const xs = random.normal(kX, [2, D]).astype(f64);
      const conds = C > 0 ? random.normal(kC, [2, C]).astype(f64) : (kC.dispose(), undefined);
      let allowedNonzero = 0;
      let allowedTotal = 0;
      for (let row = 0; row < 2; row++) {
        const c = conds?.ref.slice([row, row + 1]);
        const f = (v: Array) => {
          const x = v.reshape([1, D]);
          const out =
            c === undefined
              ? net.apply(tree.ref(params), x)
              : net.apply(tree.ref(params), x, c.ref);
          return out.reshape([D * P]);
        };
        const jac = jacfwd(f)(xs.ref.slice(row));
        // jax-js 0.1.25 lays the Jacobian out as [input, output] (JAX: [output, input]);
        // the first test below pins this down.
        assert.deepEqual(jac.shape, [D, D * P]);
        const J = await values(jac);
        c?.dispose();
        for (let i = 0; i < D; i++) {
          for (let q = 0; q < P; q++) {
            for (let j = 0; j < D; j++) {
              const v = J[j * D * P + i * P + q];
              if (net.degrees[j] >= net.degrees[i]) {
                assert.equal(
                  v,
                  0,
                  `output ${i}.${q} depends on input ${j} (degrees ${net.degrees[i]}, ${net.degrees[j]})`,
                );
              } else {
                allowedTotal++;
                if (v !== 0) allowedNonzero++;
              }
            }
          }
        }
      }
      // The check is not vacuous: the network does use the inputs it may use.
      if (D > 1) assert.ok(allowedNonzero > 0, "no output depends on any input");
      if (dense) assert.equal(allowedNonzero, allowedTotal, "some allowed dependence is missing");
      tree.dispose(params);
      xs.dispose();
      conds?.dispose();
    });
  }

  it("the context reaches every output, and only through the network", async () => {
    defaultDevice("cpu");
    const net = made({ dim: 3, hidden: [8], contextDim: 2, outputsPerDim: 2, activation: "tanh" });
    const params = genericParams(net, random.key(5));
    const x = random.normal(random.key(6), [1, 3]).astype(f64);
    const f = (c: Array) => net.apply(tree.ref(params), x.ref, c.reshape([1, 2])).reshape([6]);
    const J = await values(jacfwd(f)(random.normal(random.key(7), [2]).astype(f64)));
    assert.ok(
      J.every((v) => v !== 0),
      "some output ignores the context",
    );
    tree.dispose(params);
    x.dispose();
  });
});

describe("made: configuration", () => {
  it("a seeded random order is a reproducible permutation", () => {
    for (const seed of [0, 1, 42, 123456789]) {
      const a = made({ dim: 9, hidden: [16], outputsPerDim: 2, order: "random", seed });
      const b = made(
        JSON.parse(
          JSON.stringify({ dim: 9, hidden: [16], outputsPerDim: 2, order: "random", seed }),
        ),
      );
      assert.deepEqual(a.order, b.order);
      assert.deepEqual(a.degrees, b.degrees);
      assert.deepEqual(
        [...a.order].sort((u, v) => u - v),
        [0, 1, 2, 3, 4, 5, 6, 7, 8],
      );
      assert.deepEqual(madeOrder(9, "random", seed), a.order);
    }
    const orders = new Set([0, 1, 2, 3].map((seed) => madeOrder(9, "random", seed).join(",")));
    assert.ok(orders.size > 1, "the seed does not change the order");
  });

  it("natural and reversed orders, degrees as ranks", () => {
    assert.deepEqual(madeOrder(4, "natural"), [0, 1, 2, 3]);
    assert.deepEqual(madeOrder(4, "reversed"), [3, 2, 1, 0]);
    assert.deepEqual(
      made({ dim: 4, hidden: [4], outputsPerDim: 1, order: [2, 0, 3, 1] }).degrees,
      [2, 4, 1, 3],
    );
  });

  it("mulberry32 is deterministic and in [0, 1)", () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    for (let i = 0; i < 100; i++) {
      const v = a();
      assert.equal(v, b());
      assert.ok(v >= 0 && v < 1);
    }
  });

  it("rejects bad configurations", () => {
    assert.throws(
      () => made({ dim: 3, hidden: [4], outputsPerDim: 1, order: [0, 0, 1] }),
      /permutation/,
    );
    assert.throws(() => made({ dim: 0, hidden: [4], outputsPerDim: 1 }), /dim/);
    assert.throws(() => made({ dim: 3, hidden: [0], outputsPerDim: 1 }), /hidden\[0\]/);
    assert.throws(
      () => made({ dim: 3, hidden: [4], outputsPerDim: 1, order: "sideways" as any }),
      /order/,
    );
  });

  it("masks are not parameters, and the output layer starts at zero", async () => {
    defaultDevice("wasm");
    const net = made({ dim: 4, hidden: [8, 8], contextDim: 2, outputsPerDim: 2 });
    const params = net.init(random.key(0));
    // One weight matrix and one bias per layer: nothing else for an optimizer to move.
    assert.equal(tree.leaves(params).length, 6);
    const out = net.apply(
      params,
      random.normal(random.key(1), [3, 4]),
      random.normal(random.key(2), [3, 2]),
    );
    assert.deepEqual(out.shape, [3, 4, 2]);
    assert.ok((await values(out)).every((v) => v === 0));
  });
});

describe("masked autoregressive layer", () => {
  for (const make of [maskedAutoregressive, inverseAutoregressive]) {
    it(`${make.name}: the sequential pass inverts the one-pass direction (float64)`, async () => {
      defaultDevice("cpu");
      const layer = make({ dim: 6, hidden: [12, 12], contextDim: 2, order: "random", seed: 9 });
      const [kI, kP, kX, kC] = splitKey(random.key(8), 4);
      const params = perturbParams(layer.init(kI, { dtype: f64 }), kP, 0.5) as MadeParams;
      const x = random.normal(kX, [4, 6]).astype(f64);
      const cond = random.normal(kC, [4, 2]).astype(f64);
      const [z, ld] = layer.forward(tree.ref(params), x.ref, cond.ref);
      const [x2, ldInv] = layer.inverse(tree.ref(params), z.ref, cond.ref);
      assertClose(await values(x2), await values(x.ref), 1e-10, 1e-10, "inverse(forward(x))");
      assertClose(
        await values(ldInv),
        (await values(ld)).map((v) => -v),
        1e-10,
        1e-10,
        "log-dets",
      );
      // And the other way round.
      const [y, ld2] = layer.inverse(tree.ref(params), x.ref, cond.ref);
      const [x3, ld3] = layer.forward(params, y, cond);
      assertClose(await values(x3), await values(x), 1e-10, 1e-10, "forward(inverse(x))");
      assertClose(
        await values(ld3),
        (await values(ld2)).map((v) => -v),
        1e-10,
        1e-10,
        "log-dets",
      );
      z.dispose();
    });
  }

  it("maskedAutoregressive starts as the identity", async () => {
    defaultDevice("wasm");
    const layer = maskedAutoregressive({ dim: 3, hidden: [8] });
    const params = layer.init(random.key(0));
    const x = random.normal(random.key(1), [2, 3]);
    const [z, ld] = layer.forward(params, x.ref);
    assertClose(await values(z), await values(x), 0, 0, "identity");
    assert.ok((await values(ld)).every((v) => v === 0));
  });

  for (const cfg of configs) {
    it(`sweep gives the outputs of one apply per coordinate, and so the same inverse (${cfg.name})`, async () => {
      defaultDevice("cpu");
      const { name: _name, dense: _dense, ...options } = cfg;
      const net = made(options);
      const D = cfg.dim;
      const P = cfg.outputsPerDim;
      const C = cfg.contextDim ?? 0;
      const rows = 3;
      const [kP, kZ, kC] = splitKey(random.key(17), 3);
      const params = genericParams(net, kP);
      const z = await values(random.normal(kZ, [rows, D]).astype(f64));
      const cond = C > 0 ? random.normal(kC, [rows, C]).astype(f64) : (kC.dispose(), undefined);
      // Some invertible map of (z, outputs): x_c = z_c + sum(out)^2 / 4 + sin(out_0).
      const map = (zc: number, out: number[]) =>
        zc + out.reduce((a, v) => a + v, 0) ** 2 / 4 + Math.sin(out[0]);
      // Reference: fix the coordinates one rank at a time with a full apply each time.
      const x = new Float64Array(rows * D);
      const seen: number[][] = [];
      for (let k = 0; k < D; k++) {
        const c = net.order[k];
        const out = await values(
          net.apply(tree.ref(params), np.array(x, { shape: [rows, D], dtype: f64 }), cond?.ref),
        );
        const outs: number[] = [];
        for (let r = 0; r < rows; r++) {
          const o = out.slice((r * D + c) * P, (r * D + c + 1) * P);
          outs.push(...o);
          x[r * D + c] = map(z[r * D + c], o);
        }
        seen.push(outs);
      }
      // The sweep, with the same map written in jax-js; the outputs it hands over are kept to compare.
      const got: Array[] = [];
      const swept = net.sweep(
        tree.ref(params),
        rows,
        (k, out) => {
          const c = net.order[k];
          got.push(out.ref);
          const zc = np.array(
            globalThis.Array.from({ length: rows }, (_, r) => z[r * D + c]),
            { dtype: f64 },
          );
          const sum = out.ref.sum(1);
          const first = out.slice([], 0);
          return zc.add(sum.ref.mul(sum).div(4)).add(np.sin(first));
        },
        cond?.ref,
      );
      assertClose(await values(swept), [...x], 1e-12, 1e-12, `${cfg.name}: inputs`);
      assert.equal(got.length, D, "one call per rank");
      for (let k = 0; k < D; k++)
        assertClose(
          await values(got[k]),
          seen[k],
          1e-12,
          1e-12,
          `${cfg.name}: outputs of rank ${k}`,
        );
      tree.dispose(params);
      cond?.dispose();
    });
  }
});
