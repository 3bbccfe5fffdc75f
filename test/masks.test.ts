import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree, jit, defaultDevice, type Array } from "@jax-js/jax";
import {
  alternatingMask,
  channelMask,
  checkerboardMask,
  halfMask,
  maskSplit,
  validateMask,
} from "../src/bijectors/masks.js";
import { additiveCoupling } from "../src/bijectors/additive-coupling.js";
import { affineCoupling } from "../src/bijectors/affine-coupling.js";
import { perturbParams, values, f32, f64 } from "./helpers/arrays.js";
import type { Bijector } from "../src/core/types.js";
import { splitKey } from "../src/core/keys.js";

const T = true;
const F = false;

describe("masks", () => {
  it("halfMask passes the first ceil(dim / 2) coordinates; flip swaps", () => {
    assert.deepEqual(halfMask(4), [T, T, F, F]);
    assert.deepEqual(halfMask(5), [T, T, T, F, F]);
    assert.deepEqual(halfMask(5, true), [F, F, F, T, T]);
    assert.deepEqual(halfMask(2, true), [F, T]);
  });

  it("alternatingMask passes i % 2 === parity", () => {
    assert.deepEqual(alternatingMask(5, 0), [T, F, T, F, T]);
    assert.deepEqual(alternatingMask(5, 1), [F, T, F, T, F]);
  });

  it("checkerboardMask is row-major over [H, W, C]", () => {
    assert.deepEqual(checkerboardMask(2, 3, 0), [T, F, T, F, T, F]);
    assert.deepEqual(checkerboardMask(2, 2, 1), [F, T, T, F]);
    assert.deepEqual(checkerboardMask(1, 2, 0, 2), [T, T, F, F]);
  });

  it("channelMask splits the channels in halves, repeated per pixel", () => {
    assert.deepEqual(channelMask(4, 0), [T, T, F, F]);
    assert.deepEqual(channelMask(3, 1), [F, F, T]);
    assert.deepEqual(channelMask(2, 0, 2), [T, F, T, F]);
  });

  it("rejects masks with an empty part and bad arguments", () => {
    assert.throws(() => halfMask(1), /no transformed \(false\) entry/);
    assert.throws(() => halfMask(1, true), /no pass-through \(true\) entry/);
    assert.throws(() => alternatingMask(1, 1), /no pass-through/);
    assert.throws(() => checkerboardMask(1, 1, 0), /no transformed/);
    assert.throws(() => channelMask(1, 0, 4), /no transformed/);
    assert.throws(() => halfMask(0), /dim must be a positive integer/);
    assert.throws(() => alternatingMask(4, 2 as 0), /parity must be 0 or 1/);
    assert.throws(() => validateMask("here", [T, F], 3), /here: mask has 2 entries, expected 3/);
    assert.throws(() => validateMask("here", [1, 0], 2), /mask must be a list of booleans/);
    assert.throws(
      () => affineCoupling({ dim: 3, mask: [T, T, T], hidden: [4] }),
      /affineCoupling: mask has no transformed/,
    );
    assert.throws(
      () => additiveCoupling({ dim: 3, mask: [F, F, F], hidden: [4] }),
      /additiveCoupling: mask has no pass-through/,
    );
    assert.throws(
      () => affineCoupling({ dim: 3, mask: [T, F], hidden: [4] }),
      /mask has 2 entries, expected 3/,
    );
    assert.throws(
      () => affineCoupling({ dim: 3, mask: [T, F, F], hidden: [4], scaleBound: 0 }),
      /scaleBound must be/,
    );
  });

  for (const mask of [halfMask(5), halfMask(5, true), alternatingMask(5, 0), [F, T, T, F, T]]) {
    it(`maskSplit splits and merges exactly (${mask.map(Number).join("")})`, async () => {
      const parts = maskSplit(mask);
      const x = np.arange(10).reshape([2, 5]).astype(f32);
      const [a, b] = parts.split(x.ref);
      assert.deepEqual(a.shape, [2, parts.passIndices.length]);
      assert.deepEqual(b.shape, [2, parts.transformIndices.length]);
      const rows = (idx: number[]) => [0, 1].flatMap((r) => idx.map((i) => r * 5 + i));
      assert.deepEqual(await values(a.ref), rows(parts.passIndices));
      assert.deepEqual(await values(b.ref), rows(parts.transformIndices));
      assert.deepEqual(await values(parts.merge(a, b)), await values(x));
    });
  }
});

describe("coupling layers pass the masked coordinates through exactly", () => {
  const makers: ((mask: boolean[]) => Bijector<any>)[] = [
    (mask: boolean[]) => additiveCoupling({ dim: 5, mask, hidden: [8] }),
    (mask: boolean[]) => affineCoupling({ dim: 5, mask, hidden: [8], contextDim: 2 }),
  ];
  for (const make of makers) {
    for (const mask of [halfMask(5, true), alternatingMask(5, 1)]) {
      const b = make(mask);
      it(`${b.kind} (${mask.map(Number).join("")}), eager and jit, float32 and float64`, async () => {
        for (const dtype of [f32, f64]) {
          defaultDevice(dtype === f64 ? "cpu" : "wasm");
          const [kInit, kP, kX, kC] = splitKey(random.key(11), 4);
          const params = perturbParams(b.init(kInit, { dtype }), kP);
          const x = random.normal(kX, [4, 5]).astype(dtype).mul(3);
          const cond = random.normal(kC, [4, 2]).astype(dtype);
          const call = (f: (...a: any[]) => [Array, Array], p: any, v: Array) =>
            b.contextDim > 0 ? f(p, v, cond.ref) : f(p, v);
          const fwd = jit((p: any, v: Array, c?: Array) => b.forward(p, v, c));
          const xs = await values(x.ref);
          for (const [name, f] of [
            ["eager", b.forward.bind(b)],
            ["jit", fwd],
          ] as const) {
            const [y, ld] = call(f as any, tree.ref(params), x.ref);
            ld.dispose();
            const ys = await values(y);
            ys.forEach((v, i) => {
              if (mask[i % 5])
                assert.equal(v, xs[i], `${name} ${dtype}: coordinate ${i % 5} changed`);
            });
            assert.ok(
              ys.some((v, i) => !mask[i % 5] && v !== xs[i]),
              `${name} ${dtype}: transformed part unchanged`,
            );
          }
          fwd.dispose();
          tree.dispose(params);
          x.dispose();
          cond.dispose();
        }
        defaultDevice("wasm");
      });
    }
  }
});
