/**
 * Evaluating and sampling many images goes in small chunks by default, so that a user's
 * 2,000-row file does not ask the engine for more than its 4 GiB wasm memory; and the
 * engine's out-of-memory words become a sentence that says what to do.
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { random, tree } from "@jax-js/jax";
import { buildFlow } from "../src/models/index.js";
import { defaultChunkRows, IMAGE_CHUNK } from "../src/eval/chunk-rows.js";
import { logProbRows } from "../src/eval/log-prob-rows.js";
import { sampleRows } from "../src/eval/sample-rows.js";
import { explainEngineError } from "../src/cli/engine-errors.js";

describe("default chunks", () => {
  it("are 16 images for image flows and thousands of rows for vector flows", () => {
    assert.equal(
      defaultChunkRows(
        buildFlow({ model: "glow", shape: [28, 28, 1], levels: 2, steps: 1, hidden: 8 }),
        2048,
      ),
      IMAGE_CHUNK,
    );
    assert.equal(defaultChunkRows(buildFlow({ model: "maf", dim: 3 }), 2048), 2048);
  });

  it("score 2,000 FashionMNIST-sized images of a tiny Glow, and sample 40, without naming a chunk", async () => {
    // 2,000 images in one jitted program exceeded the 4 GiB wasm memory before chunking by default.
    const flow = buildFlow({ model: "glow", shape: [28, 28, 1], levels: 2, steps: 1, hidden: 8 });
    const params = flow.init(random.key(0));
    const n = 2000;
    const x = Float32Array.from({ length: n * 784 }, (_, i) => ((i * 7919) % 256) / 256 + 1 / 512);
    const logp = await logProbRows(flow, params, x);
    assert.equal(logp.length, n);
    assert.ok(logp.every(Number.isFinite));
    const samples = await sampleRows(flow, params, 40);
    assert.equal(samples.length, 40 * 784);
    assert.ok(samples.every(Number.isFinite));
    tree.dispose(params);
  });
});

describe("engine out-of-memory errors", () => {
  it("say what to do, in one line", () => {
    const message = explainEngineError("Allocation exceeds the 4 GiB memory32 limit");
    assert.ok(message);
    assert.match(message, /ran out of memory.*--batch-size.*fewer rows at once/);
    assert.ok(!message.includes("\n"));
    assert.equal(explainEngineError("cannot read weights.safetensors"), null);
  });
});
