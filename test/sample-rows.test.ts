/**
 * sampleRows: many samples in jitted chunks. Exact row count with a padded last chunk,
 * reproducible per seed, the same distribution as the flow (a fitted-free identity MAF
 * gives its standard normal base), temperature scales it, and conditional flows need
 * their context rows.
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { random, tree } from "@jax-js/jax";
import { buildFlow } from "../src/models/index.js";
import { cachedSamplerCount, sampleRows } from "../src/eval/sample-rows.js";

const moments = (x: Float32Array) => {
  const mean = x.reduce((a, v) => a + v, 0) / x.length;
  return [mean, x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length];
};

describe("sampleRows", () => {
  it("draws exactly n rows of the flow's distribution, chunk by chunk", async () => {
    // A MAF starts as the identity (zero output layers): samples are its standard normal base.
    const flow = buildFlow({ model: "maf", dim: 3, layers: 2, hidden: [8] } as any);
    const params = flow.init(random.key(0), {});
    const a = await sampleRows(flow, params, 2500, { seed: 7, batch: 1024 });
    assert.equal(a.length, 2500 * 3);
    const [mean, variance] = moments(a);
    assert.ok(Math.abs(mean) < 0.05, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.06, `variance ${variance}`);
    // The padded last chunk's rows are real samples too, not zeros.
    const [, tailVar] = moments(a.subarray(2048 * 3));
    assert.ok(tailVar > 0.8, `variance of the last chunk's rows ${tailVar}`);
    assert.deepEqual(await sampleRows(flow, params, 2500, { seed: 7, batch: 1024 }), a);
    assert.notDeepEqual(await sampleRows(flow, params, 2500, { seed: 8, batch: 1024 }), a);
    const [, hot] = moments(await sampleRows(flow, params, 2500, { seed: 7, temperature: 0.5 }));
    assert.ok(Math.abs(hot - 0.25) < 0.02, `variance at temperature 0.5: ${hot}`);
    await assert.rejects(sampleRows(flow, params, 0), /n must be a positive integer/);
    tree.dispose(params);
  });

  it("needs one context row per sample for a conditional flow", async () => {
    const flow = buildFlow({ model: "maf", dim: 2, layers: 1, hidden: [8], contextDim: 3 } as any);
    const params = flow.init(random.key(1), {});
    await assert.rejects(
      sampleRows(flow, params, 10),
      /pass 10 context rows of 3 values \(30 values\), got 0/,
    );
    const x = await sampleRows(flow, params, 10, { cond: new Float32Array(30).fill(1), batch: 4 });
    assert.equal(x.length, 20);
    assert.ok(x.every(Number.isFinite));
    tree.dispose(params);
  });

  it("keeps at most 4 compiled samplers per flow, also while calls overlap", async () => {
    const flow = buildFlow({ model: "maf", dim: 2, layers: 1, hidden: [4] } as any);
    const params = flow.init(random.key(2), {});
    const temps = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
    for (const temperature of temps) await sampleRows(flow, params, 8, { temperature, batch: 8 });
    assert.equal(cachedSamplerCount(flow), 4);
    // Overlapping calls with more temperatures than the cache holds: an evicted sampler still
    // in use is disposed only when its call ends, and every call gets its rows.
    const all = await Promise.all(
      temps.map((temperature, i) =>
        sampleRows(flow, params, 20, { temperature, batch: 8, seed: i }),
      ),
    );
    all.forEach((x) => assert.ok(x.length === 40 && x.every(Number.isFinite)));
    assert.equal(cachedSamplerCount(flow), 4);
    // The same call again gives the same rows (recompiled or not).
    assert.deepEqual(
      await sampleRows(flow, params, 20, { temperature: 0.5, batch: 8, seed: 0 }),
      all[0],
    );
    tree.dispose(params);
  });
});
