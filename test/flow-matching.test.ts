import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree } from "@jax-js/jax";
import { buildFlow } from "../src/models/index.js";
import { resolveFlowMatchingConfig } from "../src/models/flow-matching.js";
import { solveAssignment } from "../src/core/assignment.js";
import { flowMatchingObjective, otPairNoise, defaultObjective } from "../src/train/objective.js";
import { evaluateNLL, fit, type VectorData } from "../src/train/fit.js";
import { makeRng } from "../src/core/prng.js";
import { flatten } from "../src/train/flat-params.js";
import { values } from "./helpers/arrays.js";

/** Every permutation of 0..n-1. */
function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) =>
    Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]),
  );
}
const total = (cost: Float64Array, n: number, col: ArrayLike<number>) =>
  Array.from({ length: n }, (_, i) => cost[i * n + col[i]]).reduce((a, b) => a + b, 0);

// A correlated 2-D Gaussian (cov [[2, 1.2], [1.2, 1]]): its entropy is the best possible NLL.
const DET = 2 * 1 - 1.2 * 1.2;
const ENTROPY = 0.5 * Math.log((2 * Math.PI * Math.E) ** 2 * DET);
function gaussian(rows: number, seed: number): VectorData {
  const rng = makeRng(seed);
  const l11 = Math.sqrt(2);
  const l21 = 1.2 / l11;
  const l22 = Math.sqrt(1 - l21 * l21);
  const x = new Float32Array(rows * 2);
  for (let i = 0; i < rows; i++) {
    const z1 = rng.normal();
    const z2 = rng.normal();
    x[2 * i] = 1 + l11 * z1;
    x[2 * i + 1] = -0.5 + l21 * z1 + l22 * z2;
  }
  return { x, rows };
}

describe("solveAssignment", () => {
  it("finds the least-cost permutation (brute force over every permutation, n = 1..7)", () => {
    const rng = makeRng(4);
    for (let n = 1; n <= 7; n++) {
      for (let trial = 0; trial < 5; trial++) {
        const cost = Float64Array.from({ length: n * n }, () => Math.round(rng.uniform() * 20) - 5);
        const col = solveAssignment(cost, n);
        assert.deepEqual(
          [...col].sort((a, b) => a - b),
          Array.from({ length: n }, (_, i) => i),
          "a permutation",
        );
        const best = Math.min(...permutations(n).map((p) => total(cost, n, p)));
        assert.equal(total(cost, n, col), best, `n = ${n}, trial ${trial}`);
      }
    }
  });

  it("rejects a non-finite cost or a wrong size", () => {
    assert.throws(() => solveAssignment([0, Number.NaN, 1, 2], 2), /cost\[1\] is NaN/);
    assert.throws(() => solveAssignment([0, 1, 2], 2), /expected 2 x 2/);
  });
});

describe("flow-matching objective", () => {
  const flow = buildFlow({ model: "flow-matching", dim: 2, hidden: [16] });
  const x = Float32Array.from({ length: 12 }, (_, i) => Math.sin(3 * i) * 2);

  it("draws noise and times that depend only on the step", () => {
    const obj = flowMatchingObjective(flow, { seed: 3 });
    const a = obj.draw!(x, 6, 10);
    const b = obj.draw!(x, 6, 10);
    const c = obj.draw!(x, 6, 11);
    assert.deepEqual(a[0].shape, [6, 2]);
    assert.deepEqual(a[1].shape, [6, 1]);
    assert.deepEqual([...a[0].data], [...b[0].data]);
    assert.notDeepEqual([...a[0].data], [...c[0].data]);
    assert.ok([...a[1].data].every((t) => t >= 0 && t < 1));
  });

  it("the OT coupling pairs the batch's noise with its data by the least total squared distance", () => {
    const rng = makeRng(9);
    const noise = Float32Array.from({ length: 12 }, () => rng.normal());
    const paired = otPairNoise(x, noise, 6, 2);
    const cost = new Float64Array(36);
    for (let i = 0; i < 6; i++)
      for (let j = 0; j < 6; j++)
        cost[i * 6 + j] = (x[2 * i] - noise[2 * j]) ** 2 + (x[2 * i + 1] - noise[2 * j + 1]) ** 2;
    const best = Math.min(...permutations(6).map((p) => total(cost, 6, p)));
    let got = 0;
    for (let i = 0; i < 6; i++)
      got += (x[2 * i] - paired[2 * i]) ** 2 + (x[2 * i + 1] - paired[2 * i + 1]) ** 2;
    assert.ok(Math.abs(got - best) < 1e-4, `${got} vs ${best}`);
    assert.deepEqual(
      [...paired].sort((a, b) => a - b),
      [...noise].sort((a, b) => a - b),
    );
  });

  for (const path of ["ot", "vp"] as const) {
    it(`the ${path} loss of a zero field is the mean squared target velocity`, async () => {
      const obj = flowMatchingObjective(flow, { path });
      const [noise, times] = obj.draw!(x, 6, 0);
      let want = 0;
      for (let i = 0; i < 6; i++) {
        const t = times.data[i];
        for (let k = 0; k < 2; k++) {
          const x0 = noise.data[2 * i + k];
          const x1 = x[2 * i + k];
          const u =
            path === "ot"
              ? x1 - x0
              : (Math.PI / 2) *
                (Math.cos((Math.PI * t) / 2) * x1 - Math.sin((Math.PI * t) / 2) * x0);
          want += u * u;
        }
      }
      want /= 6;
      // A fresh field's output layer is zero: v = 0 everywhere.
      const params = flow.init(random.key(0));
      const loss = obj.loss(
        params,
        np.array(x, { shape: [6, 2] }),
        [
          np.array(noise.data, { shape: noise.shape }),
          np.array(times.data, { shape: times.shape }),
        ],
        undefined,
      );
      const [got] = await values(loss);
      assert.ok(Math.abs(got - want) < 1e-4 * want, `${got} vs ${want}`);
    });
  }

  it("is what fit uses for a flow-matching model, maximum likelihood for the others", () => {
    assert.equal(defaultObjective(flow).name, "flow-matching");
    assert.equal(defaultObjective(buildFlow({ model: "maf", dim: 2 })).name, "nll");
  });
});

describe("flow-matching config", () => {
  it("fills defaults and names what is wrong", () => {
    const c = resolveFlowMatchingConfig({ model: "flow-matching", dim: 3 });
    assert.equal(c.solver, "dopri5");
    assert.equal(c.path, "ot");
    assert.throws(
      () => resolveFlowMatchingConfig({ model: "flow-matching", dim: 3, solver: "rk45" as any }),
      /solver must be one of euler, midpoint, rk4, dopri5/,
    );
    assert.throws(
      () => resolveFlowMatchingConfig({ model: "flow-matching", dim: 3, layers: 4 } as any),
      /unknown field "layers"/,
    );
    assert.throws(
      () => resolveFlowMatchingConfig({ model: "flow-matching", dim: 3, path: "cosine" as any }),
      /path must be ot or vp/,
    );
  });
});

describe("flow-matching training", () => {
  it("a resumed run ends with exactly the parameters of the uninterrupted one (OT coupling)", async () => {
    const data = gaussian(512, 1);
    const config = {
      model: "flow-matching" as const,
      dim: 2,
      hidden: [16],
      coupling: "ot" as const,
    };
    const run = async (steps: number, resume?: any) => {
      const flow = buildFlow(config);
      const r = await fit(flow, flow.init(random.key(0)), data, {
        steps,
        batchSize: 64,
        seed: 5,
        resume,
      });
      tree.dispose(r.bestParams);
      return r;
    };
    const whole = await run(30);
    const half = await run(15);
    tree.dispose(half.params);
    const rest = await run(30, half.state);
    const a = await values(flatten(whole.params).vector);
    const b = await values(flatten(rest.params).vector);
    assert.deepEqual(a, b);
  });

  it("learns a correlated Gaussian to within 0.05 nats of its entropy (ODE likelihood, rk4)", async () => {
    const train = gaussian(8000, 2);
    const test = gaussian(2000, 3);
    const flow = buildFlow({
      model: "flow-matching",
      dim: 2,
      hidden: [64, 64],
      solver: "rk4",
      odeSteps: 20,
    });
    const r = await fit(flow, flow.init(random.key(1)), train, {
      steps: 2000,
      batchSize: 256,
      optimizer: {
        kind: "adam",
        lr: { kind: "cosine", lr: 2e-3, warmupSteps: 100, totalSteps: 2000, finalFraction: 0.02 },
      },
    });
    tree.dispose(r.bestParams);
    const nll = await evaluateNLL(flow, r.params, test);
    // The test sample's own NLL under the true density differs from the entropy by ~0.02 (2000 rows).
    assert.ok(
      Math.abs(nll - ENTROPY) < 0.05,
      `test NLL ${nll.toFixed(4)} vs entropy ${ENTROPY.toFixed(4)}`,
    );
  });
});
