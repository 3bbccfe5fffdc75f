/** `clayflow eval`: test bits/dim of an image run, with its 95% confidence interval. */
import { tree } from "@jax-js/jax";
import { startEngine } from "../../engine/index.js";
import { isImageConfig, type ResolvedImageFlowConfig } from "../../models/image.js";
import { isImageFlowMatchingConfig } from "../../models/image-flow-matching.js";
import { contextName } from "../../data/image-context.js";
import {
  IMAGE_DATASET_NAMES,
  loadImageDataset,
  type ImageDatasetName,
} from "../../data/image-datasets.js";
import { UsageError, type Command } from "../args.js";
import { inferenceParams, openRun } from "../run-dir.js";
import { testCurve } from "../test-curve.js";
import { judgeClassSamples } from "../../eval/class-judge.js";
import { classAgreementLines, evaluateImages, IMAGE_FM_DEFAULTS } from "./train-image.js";

export const evaluate: Command = {
  spec: {
    name: "eval",
    summary: "test bits/dim of an image run (FashionMNIST / MNIST) with a 95% confidence interval",
    usage: "clayflow eval --run DIR [--images N] [--curve]",
    options: {
      run: {
        type: "string",
        help: "run directory written by clayflow train",
        value: "DIR",
        required: true,
      },
      images: {
        type: "int",
        help: `test images to evaluate (default: all 10,000, flow-matching ${IMAGE_FM_DEFAULTS.testImages}; with --curve, 2,000 per checkpoint)`,
      },
      curve: {
        type: "boolean",
        help: "evaluate every kept checkpoint (train with --keep-every) and write DIR/test-curve.json and .png",
      },
      "data-dir": { type: "string", help: "folder holding the datasets", value: "DIR" },
      threads: { type: "int", help: "engine threads" },
      "no-judge": {
        type: "boolean",
        help: "class-conditional runs: skip the class-agreement check (a classifier labels 2,000 samples, 1,000 at each of two temperatures)",
      },
    },
  },
  async run(o) {
    await startEngine(o.threads ? { threads: o.threads as number } : {});
    const run = await openRun(o.run as string);
    const name = run.config.data.name;
    if (
      !isImageConfig(run.config.model) ||
      !(IMAGE_DATASET_NAMES as readonly unknown[]).includes(name)
    ) {
      tree.dispose(run.params);
      if (run.bestParams) tree.dispose(run.bestParams);
      throw new UsageError(`${o.run} is not an image run; for tabular data use clayflow score`);
    }
    const test = await loadImageDataset(name as ImageDatasetName, "test", {
      dataDir: o["data-dir"] as string | undefined,
    });
    const runSeed = run.config.training.options.seed ?? 0;
    const seed = runSeed + 3;
    if (o.curve) {
      tree.dispose(run.params);
      if (run.bestParams) tree.dispose(run.bestParams);
      const curve = await testCurve(
        o.run as string,
        run,
        test.images,
        test.labels,
        (o.images as number | undefined) ?? 2000,
        seed,
        (p) =>
          process.stdout.write(
            `step ${p.step} (${p.minutes.toFixed(1)} min): test ${p.testBitsPerDim.toFixed(3)} ± ${p.testBitsPerDimCI.toFixed(3)} bits/dim\n`,
          ),
      );
      process.stdout.write(
        `${curve.points.length} checkpoints on ${curve.testImages} test images: ${o.run}/test-curve.json, ${o.run}/test-curve.png\n`,
      );
      return;
    }
    const params = inferenceParams(run);
    try {
      const r = await evaluateImages(
        run.flow,
        params,
        test.images,
        (o.images as number | undefined) ??
          (isImageFlowMatchingConfig(run.config.model) ? IMAGE_FM_DEFAULTS.testImages : test.n),
        seed,
        test.labels,
      );
      const m = run.config.model as ResolvedImageFlowConfig;
      // Conditional runs: log p(x | label or context), each test image given its own.
      const given = m.context
        ? `, each given its ${contextName(m.context)} context`
        : m.classes
          ? ", each given its label"
          : "";
      process.stdout.write(
        `${o.run}: test ${r.testBitsPerDim.toFixed(3)} ± ${r.testBitsPerDimCI.toFixed(3)} bits/dim on ${r.testImages} images${given} (95% CI), step ${run.state.step}\n`,
      );
      if (m.classes && !o["no-judge"]) {
        const train = await loadImageDataset(name as ImageDatasetName, "train", {
          dataDir: o["data-dir"] as string | undefined,
        });
        process.stdout.write(
          classAgreementLines(await judgeClassSamples(run.flow, params, train, test, runSeed + 6)),
        );
      }
    } finally {
      tree.dispose(params);
    }
  },
};
