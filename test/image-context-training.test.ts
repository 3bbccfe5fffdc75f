/**
 * A short real-data run of image-conditional flows on FashionMNIST: a tiny Glow
 * given each garment's 7x7 thumbnail, one given its left half, and the same Glow
 * given nothing, trained the same steps on the same images. Each conditional test
 * bits/dim must fall well below the 8 of a uniform model and below the
 * unconditional model's, by more than three standard errors of the paired
 * per-image difference (the margin comes from the spread of the data, not from a
 * recorded run); samples must agree better with their own contexts than with
 * other images'.
 * Needs the Debian package dataset-fashion-mnist (.ci/run installs it). Separate
 * from image-context.test.ts so that file stays fast.
 */
import "./helpers/setup.js";
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { tree } from "@jax-js/jax";
import { locateImageDataset, loadImageDataset } from "../src/data/image-datasets.js";
import {
  trainImageRun,
  contextRows,
  type ImageTrainSettings,
} from "../src/cli/commands/train-image.js";
import { loadRun } from "../src/io/checkpoint.js";
import { logProbRows } from "../src/eval/log-prob-rows.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");
const clayflow = (...args: string[]) =>
  execFileSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, CLAYFLOW_THREADS: "1" },
    encoding: "utf8",
  });

const available = locateImageDataset("fashion-mnist", "test").found !== null;
const TEST_IMAGES = 300;

describe("FashionMNIST given a 7x7 thumbnail or the left half (short real-data run)", {
  skip: available ? false : "dataset-fashion-mnist is not installed",
}, () => {
  const root = mkdtempSync(join(tmpdir(), "clayflow-ctx-fashion-"));
  after(() => rmSync(root, { recursive: true, force: true }));

  it("beats the same Glow without context, and its samples match their contexts", async () => {
    const common: Omit<ImageTrainSettings, "out"> = {
      model: "glow",
      data: "fashion-mnist",
      steps: 120,
      batchSize: 32,
      lr: 2e-3,
      levels: 1,
      flowSteps: 2,
      hidden: 16,
      blocks: 0,
      seed: 0,
      evalEvery: 120,
      checkpointEvery: 120,
      trainImages: 3000,
      validImages: 200,
      testImages: TEST_IMAGES,
      threads: 1,
    };
    const plainDir = join(root, "plain");
    await trainImageRun({ ...common, out: plainDir });

    // Per-image bits/dim of both models on the same dequantised test images, each
    // image given its own thumbnail: log p(x | context) is logProb with cond.
    const test = await loadImageDataset("fashion-mnist", "test");
    const x = Float32Array.from(
      test.images.subarray(0, TEST_IMAGES * 784),
      (p, i) => (p + ((i * 0.618034) % 1)) / 256,
    );
    const perImage = async (dir: string) => {
      const run = await loadRun(dir);
      tree.dispose(run.params);
      const lp = await logProbRows(run.flow, run.bestParams!, x, {
        batch: 16,
        cond: contextRows(run.flow, test.images, test.labels, 0, TEST_IMAGES),
      });
      tree.dispose(run.bestParams!);
      return Array.from(lp, (v) => (-v / 784 + Math.log(256)) / Math.LN2);
    };
    const without = await perImage(plainDir);

    for (const context of [{ kind: "downsample", factor: 4 }, { kind: "left-half" }] as const) {
      const name = context.kind === "left-half" ? "left-half" : "downsample4";
      const condDir = join(root, name);
      const cond = await trainImageRun({ ...common, out: condDir, context });
      assert.ok(
        cond.testBitsPerDim < 8 - 2,
        `${name}: conditional test ${cond.testBitsPerDim} bits/dim`,
      );
      const given = await perImage(condDir);
      const diff = without.map((v, i) => v - given[i]);
      const mean = diff.reduce((a, b) => a + b, 0) / diff.length;
      const se = Math.sqrt(
        diff.reduce((a, b) => a + (b - mean) ** 2, 0) / (diff.length - 1) / diff.length,
      );
      assert.ok(
        mean > 3 * se,
        `${name}: the context saves ${mean.toFixed(4)} bits/dim, standard error ${se.toFixed(4)}`,
      );

      const report = JSON.parse(readFileSync(join(condDir, "report.json"), "utf8"));
      assert.equal(report.agreement.length, 2);
      for (const a of report.agreement) {
        assert.ok(
          a.matchedMAE < a.shuffledMAE,
          `${name}, temperature ${a.temperature}: own context ${a.matchedMAE}, others' ${a.shuffledMAE}`,
        );
      }
    }

    const thumbDir = join(root, "downsample4");
    assert.match(
      clayflow("eval", "--run", thumbDir, "--images", "32"),
      /bits\/dim on 32 images, each given its downsample4 context/,
    );
    assert.match(
      clayflow("sample", "--run", thumbDir, "-n", "2", "--out", join(thumbDir, "grid.png")),
      /wrote 2 rows/,
    );
    assert.equal(readFileSync(join(thumbDir, "grid.png")).subarray(1, 4).toString(), "PNG");
  });
});
