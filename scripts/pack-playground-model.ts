/**
 * Packs a class-conditional FashionMNIST run (trained by `clayflow train`) for the playground's
 * Images tab: the run's best parameters alone (`clayflow export`), a manifest with the figures
 * the page shows and the out-of-distribution threshold it applies, and a few test garments.
 *
 *   npm run pack:model -- --run DIR [--command "clayflow train ..."] [--out web/playground/models/fashion-class]
 *                         [--held-out 1000] [--test 1000]
 *
 * The threshold is calibrated on the run's validation images (the last 2,000 of the training
 * split, which training never fitted), with the page's own compressor (CompressionStream), and
 * measured on test images: FashionMNIST (in) against MNIST digits (out). The validation images
 * and their bits/dim ship too, so that the page recalibrates with its browser's compressor.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startEngine } from "../src/engine/index.js";
import { loadRun } from "../src/io/checkpoint.js";
import { exportRun } from "../src/cli/commands/export.js";
import { loadImageDataset, type ImageDataset } from "../src/data/image-datasets.js";
import { classScores } from "../src/eval/class-scores.js";
import { complexityBitsPerDimAsync } from "../src/eval/ood/complexity.js";
import { auroc } from "../src/eval/ood/metrics.js";
import { thresholdAtFalseAlarmRate } from "../src/eval/ood/threshold.js";
import { tree } from "@jax-js/jax";

const CLASS_NAMES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];
const VALIDATION_IMAGES = 2000; // clayflow train's default --valid-images: the tail of the training split
const GARMENTS_PER_CLASS = 10;
const FALSE_ALARM_RATE = 0.01;
const SEED = 7; // the dequantisation noise of every figure here and in the page

const { values } = parseArgs({
  options: {
    run: { type: "string" },
    out: { type: "string", default: "web/playground/models/fashion-class" },
    "held-out": { type: "string", default: "1000" },
    test: { type: "string", default: "1000" },
    threads: { type: "string", default: "2" },
    command: { type: "string" },
  },
});
if (!values.run)
  throw new Error(
    "--run DIR is required: a class-conditional FashionMNIST run written by clayflow train --conditional",
  );
const runDir = resolve(values.run);
const out = resolve(values.out!);
const heldOut = Number(values["held-out"]);
const testCount = Number(values.test);

await startEngine({ threads: Number(values.threads) });
rmSync(out, { recursive: true, force: true });
await exportRun.run({ run: runDir, out, params: "best" });
const run = await loadRun(out);
if (run.flow.contextDim !== 10 || run.config.data.name !== "fashion-mnist")
  throw new Error(`${runDir} is not a class-conditional FashionMNIST run`);
const report = JSON.parse(readFileSync(join(runDir, "report.json"), "utf8"));

const say = (m: string) => process.stderr.write(`${m}\n`);
async function scored(d: ImageDataset, from: number, count: number) {
  const pixels = d.images.subarray(from * 784, (from + count) * 784);
  const t0 = performance.now();
  const s = await classScores(run.flow, run.params, pixels, count, SEED);
  const complexity = new Float64Array(count);
  for (let i = 0; i < count; i++)
    complexity[i] = await complexityBitsPerDimAsync(
      pixels.subarray(i * 784, (i + 1) * 784),
      28,
      28,
    );
  const score = s.bitsPerDim.map((b, i) => b - complexity[i]);
  let correct = 0;
  for (let i = 0; i < count; i++) {
    const p = s.posterior.subarray(i * 10, (i + 1) * 10);
    if (p.indexOf(Math.max(...p)) === d.labels[from + i]) correct++;
  }
  say(
    `${d.name}:${d.split} [${from}, ${from + count}): ${count} images in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  return { s, complexity, score, accuracy: correct / count };
}
const mean = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => a + b, 0) / v.length;

const train = await loadImageDataset("fashion-mnist", "train", {});
const test = await loadImageDataset("fashion-mnist", "test", {});
const digits = await loadImageDataset("mnist", "test", {});
const valid = await scored(
  train,
  train.n - VALIDATION_IMAGES,
  Math.min(heldOut, VALIDATION_IMAGES),
);
// The page recalibrates the threshold on these with its own browser's compressor (deflate
// implementations differ by a few bytes per image, which moves the score by a few hundredths).
const validFrom = train.n - VALIDATION_IMAGES;
writeFileSync(
  join(out, "validation.u8"),
  train.images.subarray(validFrom * 784, (validFrom + valid.score.length) * 784),
);
const threshold = thresholdAtFalseAlarmRate(valid.score, FALSE_ALARM_RATE);
const inTest = await scored(test, 0, testCount);
const outTest = await scored(digits, 0, testCount);
const rate = (v: Float64Array) => v.filter((x) => x > threshold).length / v.length;

// The first ten test images of each class, for interpolation and restyling in the page.
const picks: number[] = [];
for (let c = 0; c < 10; c++)
  for (let i = 0; picks.length < (c + 1) * GARMENTS_PER_CLASS; i++)
    if (test.labels[i] === c) picks.push(i);
const garmentPixels = new Uint8Array(picks.length * 784);
picks.forEach((p, k) => garmentPixels.set(test.images.subarray(p * 784, (p + 1) * 784), k * 784));
const garmentSet: ImageDataset = {
  ...test,
  images: garmentPixels,
  labels: Uint8Array.from(picks, (p) => test.labels[p]),
  n: picks.length,
};
const garments = await scored(garmentSet, 0, picks.length);
writeFileSync(join(out, "garments.u8"), garmentPixels);

const round = (v: number, d = 4) => Number(v.toFixed(d));
const manifest = {
  name: "fashion-class",
  about:
    "A class-conditional Glow on FashionMNIST, trained by clayflow's own CLI, packed by scripts/pack-playground-model.ts",
  command: values.command ?? null, // the clayflow train command that made the run, as given
  classes: CLASS_NAMES,
  shape: [28, 28, 1],
  trainedSteps: run.state.step,
  trainingSeconds: round(run.state.seconds, 0),
  test: {
    bitsPerDim: round(report.testBitsPerDim),
    ci95: round(report.testBitsPerDimCI),
    images: report.testImages,
    given: "its class",
  },
  marginalTestBitsPerDim: round(mean(inTest.s.bitsPerDim)),
  classifierTestAccuracy: round(inTest.accuracy, 3),
  sampleClassAgreement:
    report.classAgreement?.atTemperature?.map((a: { temperature: number; accuracy: number }) => ({
      temperature: a.temperature,
      accuracy: a.accuracy,
    })) ?? null,
  ood: {
    score:
      "complexity-corrected: marginal bits/dim minus PNG-filtered deflate bits/dim (CompressionStream)",
    threshold: round(threshold),
    falseAlarmRate: FALSE_ALARM_RATE,
    calibration: `the ${1 - FALSE_ALARM_RATE} quantile of ${valid.score.length} validation images (the last of the training split)`,
    seed: SEED,
    fashionTestFlagged: round(rate(inTest.score), 4),
    mnistTestFlagged: round(rate(outTest.score), 4),
    auroc: round(auroc(inTest.score, outTest.score)),
    aurocRawBitsPerDim: round(auroc(inTest.s.bitsPerDim, outTest.s.bitsPerDim)),
    testImages: testCount,
    validation: {
      file: "validation.u8",
      count: valid.score.length,
      bitsPerDim: Array.from(valid.s.bitsPerDim, (v) => round(v)),
    },
  },
  garments: {
    file: "garments.u8",
    count: picks.length,
    testIndices: picks,
    labels: Array.from(garmentSet.labels),
    bitsPerDim: Array.from(garments.s.bitsPerDim, (v) => round(v)),
    complexity: Array.from(garments.complexity, (v) => round(v)),
  },
};
writeFileSync(join(out, "model.json"), `${JSON.stringify(manifest, null, 1)}\n`);
tree.dispose(run.params);
say(
  JSON.stringify(
    { ...manifest, garments: undefined, ood: { ...manifest.ood, validation: undefined } },
    null,
    1,
  ),
);
