/**
 * Image-conditional flows (a coupling flow whose conditioners also see a context
 * image: a thumbnail or the left half of the image): the contexts themselves, their
 * resizing to each level, exact density and reconstruction given a context, the
 * config through JSON and a checkpoint, and the agreement metric.
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  numpy as np,
  random,
  tree,
  defaultDevice,
  valueAndGrad,
  type Array as JaxArray,
} from "@jax-js/jax";
import { buildFlow } from "../src/models/index.js";
import { resolveImageConfig, type ImageFlowConfig } from "../src/models/image.js";
import {
  contextPreview,
  contextSize,
  imageContext,
  parseContextName,
  samplePixels,
  type ImageContextSpec,
} from "../src/data/image-context.js";
import { contextImage, contextImageChannels } from "../src/nn/context-image.js";
import { spaceToDepth } from "../src/bijectors/squeeze.js";
import { agreementErrors, contextAgreement } from "../src/eval/context-samples.js";
import { fit, type TrainState } from "../src/train/fit.js";
import { loadRun, saveRun } from "../src/io/checkpoint.js";
import { values, assertClose, perturbParams, f64 } from "./helpers/arrays.js";
import { liveBuffers } from "./helpers/live-buffers.js";

const SHAPE = [8, 8, 1];
const DOWN: ImageContextSpec = { kind: "downsample", factor: 4 };
const LEFT: ImageContextSpec = { kind: "left-half" };

/** `n` random 8x8 images (pixels 0..255) and their dequantised values in [0, 1). */
function images(n: number, seed: number): { pixels: Uint8Array; x: Float32Array } {
  let s = seed + 1;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
  const pixels = Uint8Array.from({ length: n * 64 }, () => Math.floor(256 * next()));
  return { pixels, x: Float32Array.from(pixels, (p) => (p + 0.5) / 256) };
}

describe("image contexts (host)", () => {
  // One 4x4 image: pixel (i, j) = 16 i + j.
  const img = Uint8Array.from({ length: 16 }, (_, k) => k + 12 * Math.floor(k / 4));
  it("downsample averages f x f blocks and the left half keeps the first W/2 columns, as pixel / 255", () => {
    const down = Array.from(imageContext(img, 1, { kind: "downsample", factor: 2 }, [4, 4, 1]));
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length / 255;
    assertClose(
      down,
      [mean([0, 1, 16, 17]), mean([2, 3, 18, 19]), mean([32, 33, 48, 49]), mean([34, 35, 50, 51])],
      1e-7,
      0,
      "thumbnail",
    );
    const left = Array.from(imageContext(img, 1, LEFT, [4, 4, 1]));
    assertClose(
      left,
      [0, 1, 16, 17, 32, 33, 48, 49].map((v) => v / 255),
      1e-7,
      0,
      "left half",
    );
    assert.equal(contextSize(DOWN, [28, 28, 1]), 49);
    assert.equal(contextSize(LEFT, [28, 28, 1]), 392);
  });

  it("names parse both ways; samples map back to their pixels; previews are full size", () => {
    assert.deepEqual(parseContextName("downsample4"), DOWN);
    assert.deepEqual(parseContextName("left-half"), LEFT);
    assert.equal(parseContextName("downsample0"), null);
    assert.equal(parseContextName("right-half"), null);
    assert.deepEqual(
      Array.from(samplePixels([0, 0.5 / 256, 17.99 / 256, 0.99999, 1.3, -0.2])),
      [0, 0, 17, 255, 255, 0],
    );
    const preview = contextPreview(imageContext(img, 1, LEFT, [4, 4, 1]), 1, LEFT, [4, 4, 1]);
    assert.equal(preview.length, 16);
    assert.equal(preview[5], Math.fround(17 / 255));
    assert.ok(preview[2] > 0 && preview[2] < 1, "the unknown half is grey");
  });
});

describe("context images at a level", () => {
  it("a thumbnail is repeated over blocks; a larger image is squeezed", async () => {
    const cond = np.array([1, 2, 3, 4], { shape: [1, 4] }); // 2x2 thumbnail of an 8x8 image
    assert.equal(contextImageChannels(DOWN, SHAPE, 4, 4), 1);
    const up = await values(contextImage(cond.ref, DOWN, SHAPE, 4, 4, np.float32));
    assert.deepEqual(up, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    assert.equal(contextImageChannels(DOWN, SHAPE, 1, 1), 4);
    const squeezed = await values(contextImage(cond, DOWN, SHAPE, 1, 1, np.float32));
    assert.deepEqual(squeezed, [1, 2, 3, 4]);
    assert.throws(() => contextImageChannels(DOWN, SHAPE, 3, 3), /integer factor/);
  });

  it("a left half is completed by its mirror image, with a mask of the given columns", async () => {
    const left = Float32Array.from({ length: 32 }, (_, k) => k + 1); // [8, 4]
    const full: number[] = [];
    for (let i = 0; i < 8; i++) {
      const row = Array.from(left.subarray(4 * i, 4 * i + 4));
      for (const [j, v] of [...row, ...row.reverse()].entries()) full.push(v, j < 4 ? 1 : 0);
    }
    const at8 = await values(
      contextImage(np.array(left).reshape([1, 32]), LEFT, SHAPE, 8, 8, np.float32),
    );
    assert.deepEqual(at8, full);
    assert.equal(contextImageChannels(LEFT, SHAPE, 4, 4), 8);
    const at4 = await values(
      contextImage(np.array(left).reshape([1, 32]), LEFT, SHAPE, 4, 4, np.float32),
    );
    assert.deepEqual(at4, await values(spaceToDepth(np.array(full).reshape([1, 8, 8, 2]))));
  });
});

const CONFIGS: ImageFlowConfig[] = [
  { model: "glow", shape: SHAPE, levels: 2, steps: 1, hidden: 4, blocks: 1, context: DOWN },
  { model: "glow", shape: SHAPE, levels: 2, steps: 1, hidden: 4, blocks: 0, context: LEFT },
  {
    model: "realnvp",
    shape: SHAPE,
    levels: 2,
    hidden: 4,
    blocks: 0,
    context: { kind: "downsample", factor: 2 },
  },
];

for (const config of CONFIGS) {
  const spec = config.context!;
  const k = contextSize(spec, SHAPE);
  describe(`${config.model} given a ${spec.kind === "downsample" ? `downsample${spec.factor}` : "left-half"} context`, () => {
    const { pixels, x } = images(3, 7);
    const context = imageContext(pixels, 3, spec, SHAPE);

    it("has the context's size as contextDim, and samples [n, H, W, C] given contexts", async () => {
      const flow = buildFlow(config);
      assert.equal(flow.contextDim, k);
      const params = flow.init(random.key(0));
      const s = flow.sample(tree.ref(params), random.key(1), 3, {
        cond: np.array(context).reshape([3, k]),
        temperature: 0.7,
      });
      assert.deepEqual(s.shape, [3, ...SHAPE]);
      assert.ok((await values(s)).every(Number.isFinite));
      assert.throws(() => flow.sample(tree.ref(params), random.key(2), 3), /conditional/);
      tree.dispose(params);
    });

    it("samples with the density logProb gives, and inverse(forward(x)) is x (float64)", async () => {
      defaultDevice("cpu");
      try {
        const flow = buildFlow(config);
        const params = perturbParams(
          flow.init(random.key(0), { dtype: f64 }) as any,
          random.key(1),
          0.05,
        ) as any;
        const cond = np.array(Float64Array.from(context), { dtype: f64 }).reshape([3, k]);
        const [s, lp] = flow.sampleAndLogProb(tree.ref(params), random.key(2), 3, {
          cond: cond.ref,
          temperature: 0.7,
        });
        const lp2 = flow.logProb(tree.ref(params), s, cond.ref);
        assertClose(await values(lp), await values(lp2), 1e-8, 1e-8, "log-density of samples");
        const xs = np.array(Float64Array.from(x), { dtype: f64 }).reshape([3, ...SHAPE]);
        const back = flow.decode(
          tree.ref(params),
          flow.encode(tree.ref(params), xs.ref, cond.ref),
          cond,
        );
        assertClose(await values(back), await values(xs), 1e-9, 1e-9, "reconstruction");
        tree.dispose(params);
      } finally {
        defaultDevice("wasm");
      }
    });

    it("leaks no buffers in logProb, sampling and a gradient step of the bijector", async () => {
      const flow = buildFlow(config);
      const params = perturbParams(flow.init(random.key(9)) as any, random.key(10), 0.05) as any;
      const xs = np.array(x).reshape([3, ...SHAPE]);
      const c = np.array(context).reshape([3, k]);
      // The bijector's own objective, as the registry suite's leak check (the context path is the new part).
      const loss = (p: any, xb: JaxArray, cb: JaxArray) => {
        const [y, ld] = flow.bijector.forward(p, xb, cb);
        return y.mul(y.ref).sum().mul(0.5).sub(ld.sum());
      };
      const step = async () => {
        await values(flow.logProb(tree.ref(params), xs.ref, c.ref));
        await values(flow.sample(tree.ref(params), random.key(11), 3, { cond: c.ref }));
        const [value, grads] = valueAndGrad(loss)(tree.ref(params.bijector), xs.ref, c.ref);
        await values(value);
        tree.dispose(grads);
      };
      await step(); // warm-up: constants cached by the first trace may stay alive
      const before = liveBuffers();
      await step();
      assert.equal(liveBuffers(), before, "live buffers changed");
      tree.dispose([params, xs, c]);
    });

    it("the context changes log p(x | context)", async () => {
      const flow = buildFlow(config);
      const params = perturbParams(flow.init(random.key(3)) as any, random.key(4), 0.1) as any;
      const xs = np.array(x).reshape([3, ...SHAPE]);
      const a = await values(
        flow.logProb(tree.ref(params), xs.ref, np.array(context).reshape([3, k])),
      );
      const b = await values(
        flow.logProb(tree.ref(params), xs, np.array(context.map((v) => 1 - v)).reshape([3, k])),
      );
      assert.ok(
        a.some((v, i) => Math.abs(v - b[i]) > 1e-4),
        "the context has no effect",
      );
      tree.dispose(params);
    });
  });
}

describe("image-context configs", () => {
  it("survive JSON: the rebuilt flow gives the same log-densities", async () => {
    const flow = buildFlow(CONFIGS[1]);
    const json = JSON.parse(JSON.stringify(flow.config));
    assert.deepEqual(json.context, LEFT);
    assert.equal(resolveImageConfig({ model: "glow", shape: SHAPE }).context, null);
    const params = perturbParams(flow.init(random.key(5)) as any, random.key(6), 0.05) as any;
    const { pixels, x } = images(2, 3);
    const cond = np.array(imageContext(pixels, 2, LEFT, SHAPE)).reshape([2, 32]);
    const xs = np.array(x).reshape([2, ...SHAPE]);
    const a = await values(flow.logProb(tree.ref(params), xs.ref, cond.ref));
    const b = await values(buildFlow(json).logProb(tree.ref(params), xs, cond));
    assert.deepEqual(a, b);
    tree.dispose(params);
  });

  it("refuse what cannot work, with the reason", () => {
    assert.throws(
      () => buildFlow({ ...CONFIGS[0], classes: 10 }),
      /classes or on a context image, not both/,
    );
    assert.throws(
      () => buildFlow({ ...CONFIGS[0], context: { kind: "downsample", factor: 3 } }),
      /factor must be a positive integer dividing/,
    );
    assert.throws(
      () => buildFlow({ ...CONFIGS[0], context: { kind: "middle" } as never }),
      /context must be/,
    );
    // 12x12 with a 3x3 thumbnail of 4x4 blocks resizes to 6x6 and 3x3; 4x4 (factor 3) to neither.
    buildFlow({
      model: "glow",
      shape: [12, 12, 1],
      levels: 2,
      steps: 1,
      hidden: 2,
      blocks: 0,
      context: { kind: "downsample", factor: 4 },
    });
    assert.throws(
      () =>
        buildFlow({
          model: "glow",
          shape: [12, 12, 1],
          levels: 2,
          steps: 1,
          hidden: 2,
          blocks: 0,
          context: { kind: "downsample", factor: 3 },
        }),
      /integer factor/,
    );
  });

  it("train (jitted step) and come back from a checkpoint with the same model and density", async () => {
    const flow = buildFlow(CONFIGS[1]);
    const { pixels, x } = images(16, 11);
    const cond = imageContext(pixels, 16, LEFT, SHAPE);
    let state: TrainState | undefined;
    const result = await fit(
      flow,
      flow.init(random.key(0)),
      { x, rows: 16, cond },
      {
        steps: 2,
        batchSize: 8,
        validFraction: 0.25,
        evalEvery: 2,
        checkpointEvery: 2,
        optimizer: { kind: "adam", lr: 1e-2 },
        onCheckpoint: (s) => void (state = s),
      },
    );
    const dir = mkdtempSync(join(tmpdir(), "clayflow-ctx-"));
    try {
      await saveRun(dir, { flow, state: state!, data: { name: "toy-images", rows: 16 } });
      const run = await loadRun(dir);
      assert.deepEqual(run.config.model, flow.config);
      assert.equal(run.config.data.contextDim, 32);
      const xs = np.array(x.slice(0, 128)).reshape([2, ...SHAPE]);
      const c = np.array(cond.slice(0, 64)).reshape([2, 32]);
      const a = await values(flow.logProb(tree.ref(result.params), xs.ref, c.ref));
      const b = await values(run.flow.logProb(run.params, xs, c));
      assertClose(a, b, 1e-5, 1e-5, "log-density after the checkpoint");
      assert.ok(a.every(Number.isFinite));
      tree.dispose([result.params, result.bestParams, run.bestParams]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("agreement of samples with their contexts", () => {
  it("compares each sample's context with its own and with every other one", () => {
    const given = Float32Array.from([0, 0, 1, 1]);
    const own = Float32Array.from([0.1, 0, 1, 0.9]);
    const [matched, shuffled] = agreementErrors(given, own, 2, 2);
    assertClose([matched, shuffled], [0.05, 0.95], 1e-7, 0, "errors");
  });

  it("runs on a flow given test-like images (finite figures on the [0, 1] scale)", async () => {
    const flow = buildFlow(CONFIGS[0]);
    const params = flow.init(random.key(8));
    const { pixels } = images(4, 5);
    const a = await contextAgreement(flow, params, pixels, 4, 0, 1);
    assert.equal(a.images, 4);
    assert.ok(
      a.matchedMAE >= 0 && a.matchedMAE <= 1 && a.shuffledMAE >= 0 && a.shuffledMAE <= 1,
      JSON.stringify(a),
    );
    tree.dispose(params);
  });
});
