/** The doctor finds what is wrong with a model and says so; a healthy model passes. */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree } from "@jax-js/jax";
import { buildFlow } from "../src/models/index.js";
import { buildImageFlow } from "../src/models/image.js";
import { Flow } from "../src/distributions/flow.js";
import { standardNormal } from "../src/distributions/standard-normal.js";
import { affine } from "../src/bijectors/affine.js";
import type { Bijector } from "../src/core/types.js";
import { diagnose, formatReport } from "../src/eval/doctor.js";
import { perturbParams } from "./helpers/arrays.js";
import { liveBuffers } from "./helpers/live-buffers.js";

/** A test-only bug: an affine layer whose forward log-det is off by 0.1 nats. */
function wrongLogDet(): Bijector<any> {
  const inner = affine([2]);
  return {
    ...inner,
    kind: "buggy",
    forward: (p, x, c) => {
      const [y, ld] = inner.forward(p, x, c);
      return [y, ld.add(0.1)];
    },
  };
}

/** A test-only bug: the inverse is not the inverse. */
function wrongInverse(): Bijector<any> {
  const inner = affine([2]);
  return {
    ...inner,
    kind: "buggy",
    inverse: (p, y, c) => {
      const [x, ld] = inner.inverse(p, y, c);
      return [x.mul(1.01), ld];
    },
  };
}

describe("doctor", () => {
  for (const model of ["realnvp", "maf"] as const) {
    it(`calls a ${model} with generic parameters healthy`, async () => {
      const flow = buildFlow({ model, dim: 3, layers: 3, hidden: [16] });
      const params = perturbParams(flow.init(random.key(0)) as any, random.key(1), 0.05) as any;
      const data = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i * 1.7) * 2);
      const report = await diagnose(flow, params, { data, samples: 32, jacobianSamples: 4 });
      assert.equal(report.verdict, "healthy", formatReport(report));
      const before = liveBuffers();
      await diagnose(flow, params, { data, samples: 32, jacobianSamples: 4 });
      assert.equal(liveBuffers(), before, "diagnose leaks buffers");
      tree.dispose(params);
    });
  }

  for (const model of ["realnvp", "maf"] as const) {
    it(`checks a conditional ${model} at the contexts it is given`, async () => {
      const flow = buildFlow({ model, dim: 3, layers: 3, hidden: [16], contextDim: 2 });
      const params = perturbParams(flow.init(random.key(0)) as any, random.key(1), 0.05) as any;
      const data = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i * 1.7) * 2);
      const cond = Float32Array.from({ length: 200 }, (_, i) => Math.cos(i * 0.9) * 1.5);
      const report = await diagnose(flow, params, { data, cond, samples: 32, jacobianSamples: 4 });
      assert.equal(report.verdict, "healthy", formatReport(report));
      const before = liveBuffers();
      await diagnose(flow, params, { cond, samples: 32, jacobianSamples: 4 });
      assert.equal(liveBuffers(), before, "diagnose leaks buffers");
      await assert.rejects(
        diagnose(flow, params, { data }),
        /this flow is conditional: pass cond, a context of 2 values for each row checked/,
      );
      await assert.rejects(
        diagnose(flow, params, { cond: new Float32Array(3) }),
        /cond has 3 values, not a whole, non-zero number of contexts of 2/,
      );
      tree.dispose(params);
    });
  }

  it("checks a flow-matching model's round trips and says why it skips the Jacobian", async () => {
    const flow = buildFlow({ model: "flow-matching", dim: 2, hidden: [16], contextDim: 1 });
    const params = perturbParams(flow.init(random.key(0)) as any, random.key(1), 0.3) as any;
    const cond = Float32Array.from({ length: 16 }, (_, i) => Math.cos(i));
    const report = await diagnose(flow, params, { cond, samples: 16 });
    assert.equal(report.verdict, "healthy", formatReport(report));
    assert.deepEqual(
      report.checks.map((c) => c.name).filter((n) => /round|encode/.test(n)).length,
      2,
    );
    assert.equal(report.skipped.length, 1);
    assert.match(
      formatReport(report),
      /skip {2}log-det vs exact Jacobian: not run for a continuous flow/,
    );
    tree.dispose(params);
  });

  it("checks an image flow on images (batches of [n, height, width, channels], not flat rows)", async () => {
    const flow = buildImageFlow({
      model: "glow",
      shape: [4, 4, 1],
      levels: 1,
      steps: 1,
      hidden: 4,
      blocks: 0,
    });
    const params = perturbParams(flow.init(random.key(0)) as any, random.key(1), 0.05) as any;
    // Pixels in (0, 1), as dequantised images reach the flow.
    const data = Float32Array.from({ length: 16 * 16 }, (_, i) => 0.5 + 0.4 * Math.sin(i * 1.7));
    const report = await diagnose(flow, params, { data, samples: 8, jacobianSamples: 2 });
    assert.equal(report.verdict, "healthy", formatReport(report));
    assert.ok(
      report.checks.some((c) => c.name.startsWith("log-det vs exact Jacobian")),
      formatReport(report),
    );
    const before = liveBuffers();
    await diagnose(flow, params, { samples: 8, jacobianSamples: 2 });
    assert.equal(liveBuffers(), before, "diagnose leaks buffers");
    tree.dispose(params);
  });

  it("finds a log-det bug that only shows with a context, and refuses a context for an unconditional flow", async () => {
    // Off by 0.1 nats per unit of context: right at context 0, wrong anywhere else.
    const inner = affine([2]);
    const buggy: Bijector<any> = {
      ...inner,
      kind: "buggy",
      contextDim: 1,
      forward: (p, x, c) => {
        const [y, ld] = inner.forward(p, x);
        return [y, ld.add(c!.reshape([-1]).mul(0.1))];
      },
      inverse: (p, y, c) => {
        c?.dispose();
        return inner.inverse(p, y);
      },
    } as Bijector<any>;
    const flow = new Flow({ bijector: buggy, base: standardNormal([2]) });
    const params = flow.init(random.key(0));
    const zero = await diagnose(flow, params, {
      cond: new Float32Array(16),
      samples: 16,
      jacobianSamples: 2,
    });
    assert.equal(zero.verdict, "healthy", formatReport(zero));
    const one = await diagnose(flow, params, {
      cond: new Float32Array(16).fill(1),
      samples: 16,
      jacobianSamples: 2,
    });
    assert.match(
      formatReport(one),
      /log-determinant differs from the exact Jacobian's by 1\.0e-1 nats/,
    );
    tree.dispose(params);
    const plain = new Flow({ bijector: affine([2]), base: standardNormal([2]) });
    const p2 = plain.init(random.key(0));
    await assert.rejects(
      diagnose(plain, p2, { cond: new Float32Array(4) }),
      /cond was given, but this flow takes no context/,
    );
    tree.dispose(p2);
  });

  it("flags a log-det that disagrees with the exact Jacobian as a bug", async () => {
    const flow = new Flow({ bijector: wrongLogDet(), base: standardNormal([2]) });
    const params = perturbParams(flow.init(random.key(0)) as any, random.key(1)) as any;
    const report = await diagnose(flow, params, { samples: 16, jacobianSamples: 2 });
    assert.equal(report.verdict, "broken");
    assert.match(
      formatReport(report),
      /log-determinant differs from the exact Jacobian's by 1\.0e-1 nats: this is a bug/,
    );
    tree.dispose(params);
  });

  it("flags an inverse that does not invert", async () => {
    const flow = new Flow({ bijector: wrongInverse(), base: standardNormal([2]) });
    const params = flow.init(random.key(0));
    const report = await diagnose(flow, params, { samples: 16, jacobianSamples: 2 });
    assert.equal(report.verdict, "broken");
    assert.match(formatReport(report), /decode\(encode\(x\)\) differs from x/);
    tree.dispose(params);
  });

  it("warns about, rather than blames a bijector for, Jacobians too extreme to check", async () => {
    const flow = new Flow({ bijector: affine([2]), base: standardNormal([2]) });
    // Scales e^30 and e^-30: det J = 1, but the Jacobian's entries span e^60.
    const params = { bijector: { loc: np.zeros([2]), logScale: np.array([30, -30]) }, base: {} };
    const report = await diagnose(flow, params, {
      data: new Float32Array([0.1, 0.2, 0.3, 0.4]),
      samples: 2,
      jacobianSamples: 2,
    });
    const text = formatReport(report);
    assert.ok(!/bug in a bijector/.test(text), text);
    assert.match(text, /too ill-conditioned to check/);
    tree.dispose(params);
  });

  it("flags NaN parameters", async () => {
    const flow = new Flow({ bijector: affine([2]), base: standardNormal([2]) });
    const params = { bijector: { loc: np.array([0, NaN]), logScale: np.zeros([2]) }, base: {} };
    const report = await diagnose(flow, params, { samples: 8, jacobianSamples: 1 });
    assert.equal(report.verdict, "broken");
    assert.match(formatReport(report), /sampling produced NaN/);
    tree.dispose(params);
  });
});
