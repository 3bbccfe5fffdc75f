import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, grad, type Array } from "@jax-js/jax";
import { nll, bitsPerDim, dequantOffset, reverseKL } from "../src/train/losses.js";
import { values, assertClose } from "./helpers/arrays.js";

describe("losses", () => {
  it("nll is the mean negative log-probability in nats", async () => {
    assertClose(await values(nll(np.array([-1, -2, -4.5]))), [2.5], 1e-6, 1e-6, "nll");
  });

  it("a uniform density on dequantised 8-bit data is exactly 8 bits/dim, on [0, 1] and on [-1, 1]", async () => {
    const D = 12;
    assertClose([dequantOffset()], [Math.log(256)], 0, 1e-15, "default offset");
    // Uniform on [0, 1]^D: log p = 0.
    const unit = bitsPerDim(np.zeros([4]), D, { dequantOffset: dequantOffset(256, 1) });
    assertClose(await values(unit), [8], 1e-6, 1e-6, "[0, 1]");
    // Uniform on [-1, 1]^D: log p = -D ln 2.
    const sym = bitsPerDim(np.full([4], -D * Math.LN2), D, {
      dequantOffset: dequantOffset(256, 2),
    });
    assertClose(await values(sym), [8], 1e-6, 1e-6, "[-1, 1]");
  });

  it("a density constant on each dequantisation bin gives the discrete model's bits", async () => {
    // One pixel (D = 1) with pmf q over 256 levels; on [0, 1] its density in bin k is 256 q_k.
    const q = [0.5, 0.25, 0.125];
    const logProb = np.array(q.map((qk) => Math.log(256 * qk)));
    const bpd = await values(bitsPerDim(logProb, 1, { dequantOffset: dequantOffset() }));
    const want = -q.reduce((s, qk) => s + Math.log2(qk), 0) / q.length; // mean -log2 q = 2
    assertClose(bpd, [want], 1e-6, 1e-6, "bits/dim");
    // Without an offset: plain nats -> bits per dim.
    assertClose(
      await values(bitsPerDim(np.array([-10, -20]), 5)),
      [15 / (5 * Math.LN2)],
      1e-6,
      1e-6,
      "no offset",
    );
    assert.throws(() => bitsPerDim(np.zeros([2]), 0), /dims must be a positive integer/);
  });

  it("reverseKL of a normal against a scaled copy of itself is -log Z", async () => {
    const x = random.normal(random.key(0), [64, 2]);
    const logQ = x.ref
      .mul(x.ref)
      .sum(1)
      .mul(-0.5)
      .sub(Math.log(2 * Math.PI));
    const c = 1.7;
    const target = (y: Array) => y.ref.mul(y).sum(1).mul(-0.5).add(c);
    // p~ = e^c N(0, I) * 2 pi, so Z = e^c * 2 pi and KL(q || p) = 0.
    assertClose(
      await values(reverseKL([x, logQ], target)),
      [-(c + Math.log(2 * Math.PI))],
      1e-5,
      1e-5,
      "-log Z",
    );
  });

  it("reverseKL's reparameterised gradient for q = N(mu, 1), p = N(3, 1) is mu - 3 + mean(eps)", async () => {
    const eps = random.normal(random.key(1), [256]);
    const epsMean = (await values(eps.ref.mean()))[0];
    const loss = (mu: Array, e: Array) => {
      const x = e.ref.add(mu);
      const logQ = e.ref.mul(e).mul(-0.5); // log q(mu + eps) up to a constant: free of mu
      return reverseKL([x, logQ], (y) => np.square(y.sub(3)).mul(-0.5));
    };
    const g = await values(grad(loss)(np.array(0.5), eps));
    assertClose(g, [0.5 - 3 + epsMean], 1e-5, 1e-5, "d KL / d mu");
  });

  it("reverseKL rejects a target density that is not one value per sample", () => {
    assert.throws(
      () => reverseKL([np.zeros([4, 2]), np.zeros([4])], (x) => x),
      /one value per sample, shapes \[4, 2\] vs \[4\]/,
    );
  });
});
