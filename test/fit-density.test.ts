/** Reverse-KL fitting learns to sample from an unnormalised density given only as a formula. */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree, type Array } from "@jax-js/jax";
import { buildFlow } from "../src/models/index.js";
import { fitDensity } from "../src/train/fit-density.js";
import { values } from "./helpers/arrays.js";

// Target: N(mean, diag(std^2)), unnormalised (the constant is left out on purpose).
const MEAN = [1.5, -1];
const STD = [0.5, 2];
const target = (x: Array) => {
  const z = x.sub(np.array(MEAN)).div(np.array(STD));
  return z.mul(z.ref).sum(1).mul(-0.5).add(7);
};
// log Z of exp(target): the Gaussian normaliser times e^7.
const LOG_Z = 7 + Math.log(2 * Math.PI) + Math.log(STD[0] * STD[1]);

describe("fitDensity (reverse KL)", () => {
  it("matches the target's moments, and its loss approaches -log Z", async () => {
    const flow = buildFlow({ model: "realnvp", dim: 2, layers: 4, hidden: [32], norm: "none" });
    const { params, losses, skipped } = await fitDensity(flow, flow.init(random.key(0)), target, {
      steps: 600,
      optimizer: { kind: "adam", lr: 5e-3 },
    });
    assert.equal(skipped, 0);
    // The loss is KL(q||p) - log Z >= -log Z; a good fit brings it close.
    const last = losses.slice(-50).reduce((a, b) => a + b, 0) / 50;
    assert.ok(last > -LOG_Z - 0.05, `loss ${last} below its bound ${-LOG_Z}`);
    assert.ok(last < -LOG_Z + 0.05, `KL ${last + LOG_Z} nats after training`);
    const x = await values(flow.sample(tree.ref(params), random.key(1), 20000));
    for (let d = 0; d < 2; d++) {
      const col = x.filter((_, i) => i % 2 === d);
      const m = col.reduce((a, b) => a + b, 0) / col.length;
      const sd = Math.sqrt(col.reduce((a, b) => a + (b - m) ** 2, 0) / col.length);
      assert.ok(Math.abs(m - MEAN[d]) < 0.1 * STD[d] + 0.03, `mean[${d}] ${m} vs ${MEAN[d]}`);
      assert.ok(Math.abs(sd / STD[d] - 1) < 0.08, `std[${d}] ${sd} vs ${STD[d]}`);
    }
    tree.dispose(params);
  });
});
