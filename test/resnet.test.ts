import "./helpers/setup.js";
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree, jit, grad, defaultDevice, type Array } from "@jax-js/jax";
import { resnet, type ResnetParams } from "../src/nn/resnet.js";
import { splitKey } from "../src/core/keys.js";
import { liveBuffers } from "./helpers/live-buffers.js";
import { values, assertClose, perturbParams, f32, f64 } from "./helpers/arrays.js";

after(() => defaultDevice("wasm"));

const perturbed = (net: ReturnType<typeof resnet>, seed: number, dtype = f32): ResnetParams => {
  const [k, kp] = splitKey(random.key(seed), 2);
  return perturbParams(net.init(k, dtype), kp) as ResnetParams;
};

describe("resnet", () => {
  it("has the documented parameter shapes and starts with zero branch scales and output", async () => {
    const net = resnet({ inChannels: 2, outChannels: 4, hidden: 8, blocks: 2, contextChannels: 3 });
    const p = net.init(random.key(0), f64);
    assert.deepEqual(p.input.w.shape, [3, 3, 5, 8]);
    assert.equal(p.blocks.length, 2);
    assert.deepEqual(
      p.blocks.map((b) => [b.conv1.w.shape, b.conv2.w.shape, b.scale.shape]),
      [
        [[3, 3, 8, 8], [3, 3, 8, 8], [8]],
        [[3, 3, 8, 8], [3, 3, 8, 8], [8]],
      ],
    );
    assert.deepEqual([p.output.w.shape, p.output.b.shape], [[3, 3, 8, 4], [4]]);
    assert.ok((tree.leaves(p) as Array[]).every((a) => a.dtype === f64));
    for (const zero of [p.output.w, p.output.b, p.blocks[0].scale, p.blocks[1].scale]) {
      assert.ok((await values(zero.ref)).every((v) => v === 0));
    }
    assert.ok(
      (await values(p.blocks[0].conv1.w.ref)).some((v) => v !== 0),
      "hidden convolutions are not zero",
    );
    tree.dispose(p);
  });

  for (const contextChannels of [0, 2]) {
    it(`outputs zeros of shape [B, H, W, outChannels] at init (context ${contextChannels})`, async () => {
      const net = resnet({ inChannels: 3, outChannels: 6, hidden: 8, blocks: 2, contextChannels });
      const [k, kx, kc] = splitKey(random.key(1), 3);
      const x = random.normal(kx, [2, 7, 5, 3]);
      const y = contextChannels
        ? net.apply(net.init(k), x, random.normal(kc, [2, 7, 5, 2]))
        : (kc.dispose(), net.apply(net.init(k), x));
      assert.deepEqual(y.shape, [2, 7, 5, 6]);
      assert.ok((await values(y)).every((v) => v === 0));
    });
  }

  it("kernel 1 is a per-pixel network", async () => {
    const net = resnet({ inChannels: 1, outChannels: 1, hidden: 4, blocks: 1, kernel: 1 });
    const p = perturbed(net, 2);
    assert.deepEqual(p.input.w.shape, [1, 1, 1, 4]);
    // Changing one pixel changes only that pixel's output.
    const x = np.zeros([1, 3, 3, 1]);
    const x2 = np.pad(np.ones([1, 1, 1, 1]), [
      [0, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    const a = await values(net.apply(tree.ref(p), x));
    const b = await values(net.apply(p, x2));
    const changed = a.map((v, i) => v !== b[i]);
    assert.deepEqual(changed, [false, false, false, false, true, false, false, false, false]);
  });

  it("3x3 convolutions see the neighbours: receptive field 2 + 2 * blocks pixels each way", async () => {
    const net = resnet({ inChannels: 1, outChannels: 1, hidden: 4, blocks: 1 });
    const p = perturbed(net, 3, f64);
    const size = 11;
    const x = np.zeros([1, size, size, 1], { dtype: f64 });
    const bump = np.pad(np.ones([1, 1, 1, 1], { dtype: f64 }), [
      [0, 0],
      [5, 5],
      [5, 5],
      [0, 0],
    ]);
    const a = await values(net.apply(tree.ref(p), x));
    const b = await values(net.apply(p, bump));
    // 4 convolutions of radius 1: the bump at (5, 5) reaches rows/cols 1..9 only.
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        const reach = Math.max(Math.abs(i - 5), Math.abs(j - 5)) <= 4;
        if (!reach)
          assert.equal(a[i * size + j], b[i * size + j], `pixel (${i}, ${j}) is out of reach`);
      }
    }
    assert.notEqual(a[1 * size + 5], b[1 * size + 5], "the edge of the receptive field is reached");
  });

  it("the output depends on the context once the parameters are perturbed", async () => {
    const net = resnet({ inChannels: 2, outChannels: 2, hidden: 6, blocks: 1, contextChannels: 1 });
    const p = perturbed(net, 4);
    const [kx, k1, k2] = splitKey(random.key(5), 3);
    const x = random.normal(kx, [2, 4, 4, 2]);
    const a = await values(net.apply(tree.ref(p), x.ref, random.normal(k1, [2, 4, 4, 1])));
    const b = await values(net.apply(p, x, random.normal(k2, [2, 4, 4, 1])));
    assert.ok(a.some((v, i) => Math.abs(v - b[i]) > 1e-4));
  });

  for (const [dtype, device, tol] of [
    [f32, "wasm", 2e-5],
    [f64, "cpu", 1e-12],
  ] as const) {
    it(`jit == eager for the output and the parameter gradient (${dtype})`, async () => {
      defaultDevice(device);
      const net = resnet({
        inChannels: 2,
        outChannels: 3,
        hidden: 6,
        blocks: 2,
        contextChannels: 1,
      });
      const p = perturbed(net, 6, dtype);
      const [kx, kc] = splitKey(random.key(7), 2);
      const x = random.normal(kx, [2, 5, 4, 2]).astype(dtype);
      const cond = random.normal(kc, [2, 5, 4, 1]).astype(dtype);
      const apply = (p: ResnetParams, x: Array, c: Array) => net.apply(p, x, c);
      const loss = (p: ResnetParams, x: Array, c: Array) => {
        const y = net.apply(p, x, c);
        return y.ref.mul(y).sum();
      };
      const jApply = jit(apply);
      const jGrad = jit(grad(loss));
      const eager = await values(apply(tree.ref(p), x.ref, cond.ref));
      const s = Math.max(1, ...eager.map(Math.abs));
      assertClose(
        await values(jApply(tree.ref(p), x.ref, cond.ref)),
        eager,
        tol * s,
        tol,
        "jit apply",
      );
      const gE = tree.leaves(grad(loss)(tree.ref(p), x.ref, cond.ref)) as Array[];
      const gJ = tree.leaves(jGrad(p, x, cond)) as Array[];
      assert.equal(gJ.length, gE.length);
      for (let i = 0; i < gE.length; i++) {
        const want = await values(gE[i]);
        const sg = Math.max(1, ...want.map(Math.abs));
        assertClose(await values(gJ[i]), want, tol * sg, tol, `gradient leaf ${i}`);
      }
      jApply.dispose();
      jGrad.dispose();
      defaultDevice("wasm");
    });
  }

  it("computes in the input's dtype, casting the context to it", async () => {
    const net = resnet({ inChannels: 1, outChannels: 1, hidden: 2, blocks: 1, contextChannels: 1 });
    const y = net.apply(
      net.init(random.key(8), f64),
      np.ones([1, 3, 3, 1], { dtype: f64 }),
      np.ones([1, 3, 3, 1]),
    );
    assert.equal(y.dtype, f64);
    y.dispose();
  });

  it("frees every buffer it allocates (apply, grad, jit(grad))", async () => {
    const net = resnet({ inChannels: 2, outChannels: 2, hidden: 4, blocks: 2, contextChannels: 1 });
    const loss = (p: ResnetParams, x: Array, c: Array) => {
      const y = net.apply(p, x, c);
      return y.ref.mul(y).sum();
    };
    const jGrad = jit(grad(loss));
    const round = async (seed: number) => {
      const p = perturbed(net, seed);
      const [kx, kc] = splitKey(random.key(seed), 2);
      const x = random.normal(kx, [2, 4, 3, 2]);
      const c = random.normal(kc, [2, 4, 3, 1]);
      await values(net.apply(tree.ref(p), x.ref, c.ref));
      tree.dispose(grad(loss)(tree.ref(p), x.ref, c.ref));
      tree.dispose(jGrad(p, x, c));
    };
    await round(9);
    const before = liveBuffers();
    await round(10);
    await round(11);
    assert.equal(liveBuffers(), before);
    jGrad.dispose();
  });

  it("rejects a missing or mis-shaped context and a mis-shaped input, consuming the arguments", () => {
    const net = resnet({ inChannels: 2, outChannels: 2, hidden: 3, blocks: 1, contextChannels: 2 });
    const before = liveBuffers();
    const p = () => net.init(random.key(12));
    assert.throws(
      () => net.apply(p(), np.ones([1, 4, 4, 2])),
      /conditional: pass a context of shape \[1, 4, 4, 2\]/,
    );
    assert.throws(
      () => net.apply(p(), np.ones([1, 4, 4, 2]), np.ones([1, 4, 3, 2])),
      /expected context of shape \[1, 4, 4, 2\], got \[1, 4, 3, 2\]/,
    );
    assert.throws(
      () => net.apply(p(), np.ones([1, 4, 4, 3]), np.ones([1, 4, 4, 2])),
      /expected input of shape \[batch, height, width, 2\], got \[1, 4, 4, 3\]/,
    );
    assert.equal(liveBuffers(), before);
  });

  it("unconditional nets accept and dispose a context", async () => {
    const net = resnet({ inChannels: 1, outChannels: 1, hidden: 2, blocks: 0 });
    const y = net.apply(net.init(random.key(13)), np.ones([1, 2, 2, 1]), np.ones([1, 2, 2, 5]));
    assert.deepEqual(await values(y), [0, 0, 0, 0]);
  });

  it("validates its options", () => {
    assert.throws(
      () => resnet({ inChannels: 0, outChannels: 1, hidden: 2, blocks: 1 }),
      /inChannels must be a positive integer/,
    );
    assert.throws(
      () => resnet({ inChannels: 1, outChannels: 1, hidden: 2, blocks: -1 }),
      /blocks must be a non-negative integer/,
    );
    assert.throws(
      () => resnet({ inChannels: 1, outChannels: 1, hidden: 2, blocks: 1, contextChannels: 1.5 }),
      /contextChannels must be/,
    );
    assert.throws(
      () => resnet({ inChannels: 1, outChannels: 1, hidden: 2, blocks: 1, kernel: 5 as never }),
      /kernel must be 1 or 3/,
    );
    assert.throws(
      () =>
        resnet({ inChannels: 1, outChannels: 1, hidden: 2, blocks: 1, activation: "elu" as never }),
      /unknown activation/,
    );
  });
});
