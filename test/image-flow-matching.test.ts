/**
 * Flow matching on images: the U-Net vector field, Hutchinson's divergence against the exact
 * one, the image model (config, density, encode / decode, sampling without the divergence,
 * checkpoints) and its training objective through the logit preprocessing.
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree } from "@jax-js/jax";
import { unetVectorField, type UnetFieldParams } from "../src/nn/unet-field.js";
import { continuousFlow } from "../src/bijectors/continuous-flow.js";
import { buildFlow } from "../src/models/index.js";
import { resolveImageFlowMatchingConfig } from "../src/models/image-flow-matching.js";
import { flowMatchingObjective } from "../src/train/objective.js";
import { fit } from "../src/train/fit.js";
import { encodeRun, decodeRun } from "../src/io/checkpoint.js";
import { splitKey } from "../src/core/keys.js";
import { perturbParams, values } from "./helpers/arrays.js";
import { assertSteadyBuffers } from "./helpers/live-buffers.js";

const SHAPE = [8, 8, 1];

describe("unetVectorField", () => {
  it("maps [B, H, W, C] to the same shape, starts at zero, and depends on t and the class", async () => {
    const field = unetVectorField({ shape: SHAPE, hidden: 4, levels: 2, contextDim: 3 });
    assert.deepEqual(field.eventShape, SHAPE);
    assert.equal(field.dim, 64);
    const [kp, kx, kq] = splitKey(random.key(0), 3);
    const p0 = field.init(kp);
    const x = random.normal(kx, [2, ...SHAPE]);
    const c = np.array([
      [1, 0, 0],
      [0, 1, 0],
    ]);
    const v0 = await values(field.apply(tree.ref(p0), x.ref, np.full([2, 1], 0.3), c.ref));
    assert.equal(v0.length, 2 * 64);
    assert.ok(
      v0.every((v) => v === 0),
      "the zero output convolution starts the field at 0",
    );
    const p = perturbParams(p0, kq, 0.3) as UnetFieldParams;
    const at = async (t: number, cls: number[][]) =>
      values(field.apply(tree.ref(p), x.ref, np.full([2, 1], t), np.array(cls)));
    const a = await at(0.3, [
      [1, 0, 0],
      [0, 1, 0],
    ]);
    const b = await at(0.8, [
      [1, 0, 0],
      [0, 1, 0],
    ]);
    const d = await at(0.3, [
      [0, 0, 1],
      [0, 0, 1],
    ]);
    const diff = (u: number[], w: number[]) => Math.max(...u.map((v, i) => Math.abs(v - w[i])));
    assert.ok(a.every(Number.isFinite));
    assert.ok(diff(a, b) > 1e-3, "time changes the velocity");
    assert.ok(diff(a, d) > 1e-3, "the class changes the velocity");
    tree.dispose(p);
    x.dispose();
    c.dispose();
  });

  it("rejects shapes the levels cannot halve, and frees what it allocates", async () => {
    assert.throws(
      () => unetVectorField({ shape: [6, 6, 1], levels: 3 }),
      /3 levels halve the image 2 times, so H and W must be divisible by 4; got \[6, 6, 1\]/,
    );
    assert.throws(() => unetVectorField({ shape: [8, 8] }), /shape must be \[H, W, C\]/);
    const field = unetVectorField({ shape: SHAPE, hidden: 4 });
    const p = perturbParams(field.init(random.key(1)), random.key(2)) as UnetFieldParams;
    await assertSteadyBuffers(async () => {
      const v = field.apply(
        tree.ref(p),
        random.normal(random.key(3), [2, ...SHAPE]),
        np.full([2, 1], 0.5),
      );
      await v.data();
    }, "unetVectorField.apply");
    tree.dispose(p);
  });
});

describe("continuousFlow on images: Hutchinson's divergence", () => {
  it("agrees with the exact divergence within its reported standard error, deterministically", async () => {
    const field = unetVectorField({ shape: SHAPE, hidden: 4 });
    const params = {
      field: perturbParams(field.init(random.key(4)), random.key(5), 0.2) as UnetFieldParams,
    };
    const ode = { solver: "rk4" as const, steps: 4 };
    const exact = continuousFlow(field, ode);
    const probes = 64;
    const hutch = continuousFlow(field, ode, { kind: "hutchinson", probes, seed: 7 });
    const x = random.normal(random.key(6), [3, ...SHAPE]);
    const [z1, ld1] = exact.forward(tree.ref(params), x.ref);
    const [z2, ld2] = hutch.forward(tree.ref(params), x.ref);
    const [e, h] = [await values(ld1), await values(ld2)];
    const se = hutch.lastStats!.probeStdErr!;
    assert.ok(se > 0, `the standard error is reported (${se})`);
    assert.equal(exact.lastStats!.probeStdErr, null);
    // The same velocity, so the same latent (to float32 rounding).
    const [za, zb] = [await values(z1), await values(z2)];
    assert.ok(za.every((v, i) => Math.abs(v - zb[i]) < 1e-4));
    for (let r = 0; r < 3; r++)
      assert.ok(
        Math.abs(e[r] - h[r]) < 5 * se,
        `row ${r}: exact ${e[r]}, Hutchinson ${h[r]} (standard error ${se})`,
      );
    // The probes come from the seed: the same input gives the same estimate.
    const [z3, ld3] = hutch.forward(tree.ref(params), x.ref);
    z3.dispose();
    assert.deepEqual(await values(ld3), h);
    // One probe: an estimate without a spread to report.
    const one = continuousFlow(field, ode, { kind: "hutchinson", seed: 1 });
    const [z4, ld4] = one.forward(tree.ref(params), x);
    z4.dispose();
    assert.ok((await values(ld4)).every(Number.isFinite));
    assert.equal(one.lastStats!.probeStdErr, null);
    tree.dispose(params);
    assert.throws(
      () => continuousFlow(field, ode, { kind: "hutchinson", probes: 0 }),
      /probes must be a positive integer/,
    );
  });
});

const TINY = {
  model: "flow-matching" as const,
  shape: SHAPE,
  hidden: 4,
  classes: 3,
  solver: "rk4" as const,
  odeSteps: 4,
};

describe("image flow matching (model)", () => {
  it("resolves its config with defaults and names what is wrong", () => {
    const c = resolveImageFlowMatchingConfig({ model: "flow-matching", shape: [28, 28, 1] });
    assert.equal(c.hidden, 32);
    assert.equal(c.divergence, "hutchinson");
    assert.equal(c.probes, 1);
    assert.equal(c.coupling, "none");
    assert.throws(
      () => buildFlow({ ...TINY, coupling: "ot" }),
      /coupling ot \(minibatch optimal transport\) is for vector data/,
    );
    assert.throws(() => buildFlow({ ...TINY, levels: 5 }), /must be divisible by 16/);
    assert.throws(() => buildFlow({ ...TINY, steps: 3 } as never), /unknown field "steps"/);
    assert.throws(() => buildFlow({ ...TINY, divergence: "trace" as never }), /divergence must be/);
  });

  it("gives a finite density of pixels in [0, 1), encodes and decodes back, samples without the divergence", async () => {
    // dopri5 at tight tolerances: the round trip then measures the inverse, not the solver.
    const flow = buildFlow({ ...TINY, solver: "dopri5", rtol: 1e-6, atol: 1e-6 });
    assert.equal(flow.jittable, false);
    assert.deepEqual(flow.eventShape, SHAPE);
    const [kp, kq, kx, ks] = splitKey(random.key(8), 4);
    const p0 = flow.init(kp);
    const params = { bijector: perturbParams(p0.bijector, kq, 0.2), base: p0.base };
    const x = random
      .uniform(kx, [2, ...SHAPE])
      .mul(0.98)
      .add(0.01);
    const cond = np.array([
      [1, 0, 0],
      [0, 0, 1],
    ]);
    const lp = await values(flow.logProb(tree.ref(params), x.ref, cond.ref));
    assert.ok(lp.every(Number.isFinite), `log p ${lp}`);
    const z = flow.encode(tree.ref(params), x.ref, cond.ref);
    const back = await values(flow.decode(tree.ref(params), z, cond.ref));
    const orig = await values(x);
    const err = Math.max(...orig.map((v, i) => Math.abs(v - back[i])));
    assert.ok(err < 1e-3, `decode(encode(x)) within ${err} of x`);
    const s = await values(flow.sample(tree.ref(params), ks, 2, { cond: cond.ref }));
    assert.equal(s.length, 2 * 64);
    assert.ok(
      s.every((v) => v > 0 && v < 1),
      "samples are pixels in (0, 1)",
    );
    tree.dispose(params);
  });

  it("trains by flow matching through its logit preprocessing, and its checkpoint rebuilds the density", async () => {
    const flow = buildFlow({ ...TINY, classes: 0 });
    // Images of one bright bar each (the row by the image index): a simple, learnable data set.
    const rows = 64;
    const x = new Float32Array(rows * 64).fill(0.1);
    for (let r = 0; r < rows; r++) for (let j = 0; j < 8; j++) x[r * 64 + (r % 8) * 8 + j] = 0.9;
    const result = await fit(
      flow,
      flow.init(random.key(9)),
      { x, rows },
      {
        steps: 60,
        batchSize: 32,
        optimizer: { kind: "adam", lr: 3e-3 },
        evalEvery: 20,
        valid: { x: x.slice(0, 16 * 64), rows: 16 },
        evalBatchSize: 16,
        objective: flowMatchingObjective(flow, { seed: 2 }),
        seed: 0,
      },
    );
    const losses = result.state.history.map((h) => h.trainLoss!);
    assert.equal(losses.length, 3);
    assert.ok(losses[2] < 0.7 * losses[0], `loss ${losses.join(" -> ")}`);
    assert.ok(result.state.history.every((h) => Number.isFinite(h.validLoss)));
    const batch = () => np.array(x.slice(0, 2 * 64)).reshape([2, ...SHAPE]);
    const lp = await values(flow.logProb(tree.ref(result.params), batch()));
    const run = decodeRun(encodeRun({ flow, state: result.state, data: { name: "bars", rows } }));
    assert.equal((run.flow.config as { model: string }).model, "flow-matching");
    const lp2 = await values(run.flow.logProb(run.params, batch()));
    lp2.forEach((v, i) => assert.ok(Math.abs(v - lp[i]) < 1e-3, `${v} vs ${lp[i]}`));
    if (run.bestParams) tree.dispose(run.bestParams);
    tree.dispose(result.params);
    tree.dispose(result.bestParams);
  });
});
