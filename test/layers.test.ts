/** Properties of the layer bijectors that the registry suite does not cover. */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree, defaultDevice, type Array } from "@jax-js/jax";
import { actNorm } from "../src/bijectors/actnorm.js";
import { luLinear } from "../src/bijectors/lu-linear.js";
import { permute, reversePermutation, randomPermutation } from "../src/bijectors/permute.js";
import { sigmoid, logit, tanh } from "../src/bijectors/elementwise.js";
import { values, assertClose, f32, f64 } from "./helpers/arrays.js";

defaultDevice("cpu");

describe("actNorm", () => {
  for (const eventShape of [[4], [2, 2, 3]]) {
    it(`data init gives zero mean and unit variance per channel for ${JSON.stringify(eventShape)}`, async () => {
      const c = eventShape[eventShape.length - 1];
      const layer = actNorm(eventShape);
      const x = random
        .normal(random.key(1), [16, ...eventShape])
        .astype(f64)
        .mul(3)
        .add(5);
      const p = layer.init(random.key(0), { dtype: f64, x: x.ref });
      const positions = eventShape.slice(0, -1).reduce((a, d) => a * d, 1);
      const logScale = await values(p.logScale.ref);
      const [y, logDet] = layer.forward(p, x);
      const flat = y.reshape([-1, c]);
      const mean = await values(flat.ref.mean(0));
      const variance = await values(np.square(flat).mean(0));
      assertClose(mean, new globalThis.Array(c).fill(0), 1e-10, 0, "mean");
      assertClose(
        variance,
        new globalThis.Array(c).fill(1),
        1e-5,
        0,
        "variance (eps 1e-6 on the std)",
      );
      const want = positions * logScale.reduce((a, b) => a + b, 0);
      assertClose(
        await values(logDet),
        new globalThis.Array(16).fill(want),
        1e-10,
        1e-10,
        "log-det",
      );
    });
  }

  it("starts as the identity without data and stays finite on a constant channel", async () => {
    const layer = actNorm([3]);
    const x = np.array(
      [
        [1, 2, 7],
        [3, 4, 7],
      ],
      { dtype: f64 },
    );
    const [y, ld] = layer.forward(layer.init(random.key(0), { dtype: f64 }), x.ref);
    assertClose(await values(y), await values(x.ref), 0, 0, "identity");
    assertClose(await values(ld), [0, 0], 0, 0, "zero log-det");
    const p = layer.init(random.key(0), { dtype: f64, x: x.ref });
    const [y2, ld2] = layer.forward(p, x);
    assert.ok([...(await values(y2)), ...(await values(ld2))].every(Number.isFinite));
  });
});

describe("luLinear", () => {
  /** W^T, read back by pushing the identity rows through the forward map. */
  async function weightT(
    layer: ReturnType<typeof luLinear>,
    c: number,
  ): Promise<[number[], number[]]> {
    const p = layer.init(random.key(0), { dtype: f64 });
    const [y, ld] = layer.forward(p, np.eye(c, undefined, { dtype: f64 }));
    return [await values(y), await values(ld)];
  }

  it("starts as a random rotation, reproducible from the seed", async () => {
    const c = 5;
    const [wt, ld] = await weightT(luLinear([c], { seed: 7 }), c);
    const gram = await values(
      np.matmul(
        np.array(wt, { dtype: f64 }).reshape([c, c]).transpose(),
        np.array(wt, { dtype: f64 }).reshape([c, c]),
      ),
    );
    assertClose(gram, await values(np.eye(c, undefined, { dtype: f64 })), 1e-12, 0, "W W^T = I");
    assertClose(ld, new globalThis.Array(c).fill(0), 1e-12, 0, "|det W| = 1");
    const [again] = await weightT(luLinear([c], { seed: 7 }), c);
    assert.deepEqual(again, wt, "same seed, same rotation");
    const [other] = await weightT(luLinear([c], { seed: 8 }), c);
    assert.notDeepEqual(other, wt, "different seed, different rotation");
    const [id] = await weightT(luLinear([c], { init: "identity" }), c);
    assertClose(id, await values(np.eye(c, undefined, { dtype: f64 })), 0, 0, "identity init");
  });

  it("acts on the channels of every position of an image, log-det times H*W", async () => {
    const image = luLinear([2, 3, 4], { seed: 1 });
    const vector = luLinear([4], { seed: 1 }); // same seed: same P and signs
    const p = image.init(random.key(0), { dtype: f64 });
    p.logS.dispose();
    const q = { ...p, logS: np.array([0.1, -0.2, 0.3, 0.05], { dtype: f64 }) };
    const x = random.normal(random.key(2), [2, 2, 3, 4]).astype(f64);
    const [y, ld] = image.forward(tree.ref(q), x.ref);
    const [yRows, ldRows] = vector.forward(q, x.reshape([12, 4]));
    assertClose(await values(y), await values(yRows), 1e-12, 1e-12, "same map at every position");
    assertClose(
      await values(ld),
      [6 * 0.25, 6 * 0.25],
      1e-12,
      1e-12,
      "log-det = H * W * sum(logS)",
    );
    ldRows.dispose();
  });
});

describe("permutations", () => {
  it("reject lists that are not permutations", () => {
    for (const bad of [[], [0, 0], [1, 2], [0, 1.5], [0, -1]]) {
      assert.throws(() => permute(bad), /perm/, JSON.stringify(bad));
    }
    assert.throws(() => permute([1, 0], { eventShape: [2, 3] }), /last axis/);
    assert.throws(() => randomPermutation(0, 1), /dim/);
  });

  it("permute, reverse and a reproducible random permutation", async () => {
    const x = np.array([[10, 11, 12, 13]], { dtype: f32 });
    const [y] = permute([2, 0, 3, 1]).forward({}, x.ref);
    assert.deepEqual(await values(y), [12, 10, 13, 11]);
    const [r] = reversePermutation(4).forward({}, x.ref);
    assert.deepEqual(await values(r), [13, 12, 11, 10]);
    const [a] = randomPermutation(4, 42).forward({}, x.ref);
    const [b] = randomPermutation(4, 42).forward({}, x);
    const av = await values(a);
    assert.deepEqual(await values(b), av, "same seed, same permutation");
    assert.deepEqual([...av].sort(), [10, 11, 12, 13], "a permutation");
  });
});

describe("squashing maps at the boundaries", () => {
  it("stay finite where the clamps act", async () => {
    for (const dtype of [f32, f64]) {
      const cases: [string, Array, Array][] = [
        ["logit forward", ...logit([2]).forward({}, np.array([[0, 1]], { dtype }))],
        ["sigmoid inverse", ...sigmoid([2]).inverse({}, np.array([[0, 1]], { dtype }))],
        ["tanh inverse", ...tanh([2]).inverse({}, np.array([[-1, 1]], { dtype }))],
        ["tanh forward", ...tanh([2]).forward({}, np.array([[-1e3, 1e3]], { dtype }))],
      ];
      for (const [what, out, ld] of cases) {
        const v = [...(await values(out)), ...(await values(ld))];
        assert.ok(v.every(Number.isFinite), `${what} in ${dtype}: ${v}`);
      }
    }
  });
});
