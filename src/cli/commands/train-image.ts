/**
 * Image training behind `clayflow train --data fashion-mnist|mnist`: dequantised
 * pixels in [0, 1) (fresh uniform noise every step), a multi-scale Glow or RealNVP,
 * bits per dimension in the discrete 256-level space, checkpoints with sample
 * grids, and a test-set evaluation with its confidence interval.
 */
import { join } from "node:path";
import { numpy as np, random, tree } from "@jax-js/jax";
import { startEngine } from "../../engine/index.js";
import { makeRng } from "../../core/prng.js";
import type { ImageFlowConfig, ImageModel, ResolvedImageFlowConfig } from "../../models/image.js";
import type { ImageFlowMatchingConfig } from "../../models/image-flow-matching.js";
import { FLOW_MATCHING_MODEL, type FlowMatchingPath } from "../../models/flow-matching.js";
import { buildFlow } from "../../models/index.js";
import type { OdeSolver } from "../../ode/solvers.js";
import { contextName, imageContext, type ImageContextSpec } from "../../data/image-context.js";
import {
  contextAgreement,
  contextGrid,
  type ContextAgreement,
} from "../../eval/context-samples.js";
import { judgeClassSamples, type JudgedSamples } from "../../eval/class-judge.js";
import { loadImageDataset, type ImageDatasetName } from "../../data/image-datasets.js";
import { fit, type FitOptions, type TrainState, type FloatVector } from "../../train/fit.js";
import type { ScheduleConfig } from "../../train/schedules.js";
import { saveRun, loadRun } from "../../io/checkpoint.js";
import { keepCheckpoint } from "../../io/kept-checkpoints.js";
import { writeFileAtomic } from "../../io/atomic-write.js";
import { savePng, imageGrid, linePlot, composePanels } from "../../io/plot.js";
import {
  nllBitsPerDim,
  dequantizeOnce,
  IMAGE_CHUNK,
  imageBitsPerDim,
  oneHotRows,
  scaledPixels,
} from "../../eval/image-bits.js";
import type { Flow, FlowParams } from "../../distributions/flow.js";
import { Progress } from "../progress.js";
import { readyForEager } from "../../core/maybe-jit.js";
import { watchInterrupts } from "../interrupt.js";
import { createRunDir } from "../run-dir.js";

/**
 * What `clayflow train` uses for image data where an option is not given: the recipe of the
 * measured default FashionMNIST run (docs/IMAGES.md). On 2 cores, narrow conditioners
 * with small batches and a higher rate learn more per second than wider ones, and the
 * variational dequantisation gives a tighter bound for a little more work.
 */
export const IMAGE_TRAIN_DEFAULTS = {
  steps: 11000,
  batchSize: 32,
  lr: 2e-3,
  hidden: 32,
  flowSteps: 4,
  dequantization: "variational",
  evalEvery: 1000,
} as const;

/**
 * Flow matching on images where an option is not given. Its likelihood is an ODE solve with a
 * Hutchinson divergence (forward + JVP of the U-Net per evaluation, ~0.45 s per 16 images on
 * 2 cores), so validation and the test figure use fewer images than the discrete flows', and
 * a fixed-step RK4 of 8 steps (32 evaluations) keeps their cost known in advance.
 */
export const IMAGE_FM_DEFAULTS = {
  lr: 1e-3,
  solver: "rk4",
  odeSteps: 8,
  evalEvery: 2000,
  validImages: 64,
  testImages: 500,
} as const;

export interface ImageTrainSettings {
  model: ImageModel | typeof FLOW_MATCHING_MODEL;
  /** Flow matching: the ODE solver of likelihoods and samples, its steps, the training path. */
  solver?: OdeSolver;
  odeSteps?: number;
  path?: FlowMatchingPath;
  data: ImageDatasetName;
  dataDir?: string;
  out: string;
  steps: number;
  batchSize: number;
  /** Peak learning rate, reached after the warm-up. */
  lr: number;
  /**
   * After the warm-up: keep the peak ("constant") or decay it along a half cosine to 2% of
   * the peak at the last step ("cosine", the default), which ends a fixed budget of steps at a
   * low rate.
   */
  schedule?: "constant" | "cosine";
  levels?: number;
  flowSteps?: number;
  hidden?: number;
  blocks?: number;
  /** Condition on the class label (one-hot context for every coupling and prior). */
  conditional?: boolean;
  /**
   * Replace each training pixel by a uniformly random byte with this probability
   * (Ren et al. 2019): a background model for likelihood-ratio OOD scores. Default 0.
   */
  perturb?: number;
  /** "variational": learn the dequantisation noise too (see models/image.ts). The library default is "uniform". */
  dequantization?: "uniform" | "variational";
  /** Condition on a context image computed from each image (a thumbnail, the left half). */
  context?: ImageContextSpec;
  seed: number;
  evalEvery: number;
  checkpointEvery: number;
  /** Also keep a copy of every checkpoint whose step is a multiple of this (see io/kept-checkpoints.ts). */
  keepEvery?: number;
  /** Training images to use (default: all but the validation ones). */
  trainImages?: number;
  validImages: number;
  /** Test images to evaluate at the end (default all). */
  testImages?: number;
  /** Class-conditional runs: judge the samples' classes at the end (default true). */
  judge?: boolean;
  threads?: number;
}

export interface ImageTrainReport {
  steps: number;
  seconds: number;
  testBitsPerDim: number;
  /** Half-width of the 95% confidence interval of the test bits/dim. */
  testBitsPerDimCI: number;
  testImages: number;
  /** Image-conditional runs: how well samples agree with their contexts (see eval/context-samples.ts). */
  agreement?: ContextAgreement[];
  /** Class-conditional runs: how often a classifier labels samples as their requested class. */
  classAgreement?: JudgedSamples;
}

/** The class-agreement figures as printed lines. */
export function classAgreementLines(j: JudgedSamples): string {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  return (
    j.atTemperature
      .map(
        (a) =>
          `samples judged as their requested class at temperature ${a.temperature}: ${pct(a.accuracy)} (per class ${a.byClass.map(pct).join(" ")})\n`,
      )
      .join("") +
    `(the judge, an MLP trained on the training images, labels ${pct(j.judgeTestAccuracy)} of real test images correctly; chance is ${pct(1 / j.atTemperature[0].byClass.length)})\n`
  );
}

/** The learning-rate schedule of an image run: a warm-up of up to 500 steps, then `s.schedule`. */
export function imageSchedule(
  s: Pick<ImageTrainSettings, "lr" | "steps" | "schedule">,
): ScheduleConfig {
  const warmupSteps = Math.min(500, Math.ceil(s.steps / 10));
  return (s.schedule ?? "cosine") === "cosine"
    ? { kind: "cosine", lr: s.lr, warmupSteps, totalSteps: s.steps, finalFraction: 0.02 }
    : { kind: "warmup", lr: s.lr, warmupSteps };
}

/** Test images whose contexts the agreement metric samples from, and the grid's rows. */
const AGREEMENT_IMAGES = 64;
const GRID_ROWS = 8;

/**
 * Context rows of images [from, from + count) for the flow's config: one-hot labels
 * (class-conditional), context images (image-conditional), or undefined.
 */
export function contextRows(
  flow: Flow<any, any>,
  pixels: Uint8Array,
  labels: Uint8Array | undefined,
  from: number,
  count: number,
): Float32Array | undefined {
  const c = flow.config as ResolvedImageFlowConfig;
  if (c.context) {
    const dims = c.shape.reduce((a, d) => a * d, 1);
    return imageContext(
      pixels.subarray(from * dims, (from + count) * dims),
      count,
      c.context,
      c.shape,
    );
  }
  if (c.classes > 0) {
    if (!labels) throw new Error("this flow is class-conditional: labels are needed");
    return oneHotRows(labels, from, count, c.classes);
  }
  return undefined;
}

/** Context rows of the images at `indices` (see `contextRows`). */
export function contextRowsAt(
  flow: Flow<any, any>,
  pixels: Uint8Array,
  labels: Uint8Array | undefined,
  indices: number[],
): Float32Array | undefined {
  const k = flow.contextDim;
  if (k === 0) return undefined;
  const out = new Float32Array(indices.length * k);
  indices.forEach((i, r) => out.set(contextRows(flow, pixels, labels, i, 1)!, r * k));
  return out;
}

/** `count` distinct image indices below `n`, chosen by `seed`. */
export function pickImages(n: number, count: number, seed: number): number[] {
  const order = makeRng(seed).shuffle(Array.from({ length: n }, (_, i) => i));
  return order.slice(0, Math.min(count, n));
}

/**
 * Fresh uniform noise for each training batch, a function of the global step only
 * (so a resumed run sees the same batches); with `perturb` > 0, each pixel is first
 * replaced by a random byte with that probability.
 */
function dequantizer(seed: number, perturb = 0): (batch: FloatVector, step: number) => void {
  return (batch, step) => {
    const rng = makeRng((Math.imul(seed + 1, 0x9e3779b1) ^ step) >>> 0);
    for (let i = 0; i < batch.length; i++) {
      if (perturb > 0 && rng.uniform() < perturb) batch[i] = Math.floor(rng.uniform() * 256) / 256;
      batch[i] += rng.uniform() / 256;
    }
  };
}

/**
 * A grid of samples at several temperatures, side by side; for a class-conditional
 * flow each row is one class. Does not consume `params`.
 */
export async function sampleGrid(
  flow: Flow<any, any>,
  params: FlowParams,
  n: number,
  seed: number,
  temperatures: number[],
) {
  const [h, w] = flow.eventShape;
  const classes = flow.contextDim;
  const perRow = classes > 0 ? Math.max(1, Math.round(n / classes)) : Math.ceil(Math.sqrt(n));
  const count = classes > 0 ? perRow * classes : n;
  const panels = [];
  for (const t of temperatures) {
    const cond =
      classes > 0
        ? np
            .array(
              oneHotRows(
                Uint8Array.from({ length: count }, (_, i) => Math.floor(i / perRow)),
                0,
                count,
                classes,
              ),
            )
            .reshape([count, classes])
        : undefined;
    const pixels = new Float32Array(count * h * w);
    const keys = [...random.split(random.key(seed), Math.ceil(count / IMAGE_CHUNK))];
    for (let at = 0, k = 0; at < count; at += IMAGE_CHUNK, k++) {
      const m = Math.min(IMAGE_CHUNK, count - at);
      const c = cond ? cond.ref.slice([at, at + m]) : undefined;
      await readyForEager(flow.jittable, params, keys[k], c);
      const x = flow.sample(tree.ref(params), keys[k], m, { temperature: t, cond: c });
      pixels.set(
        ((await x.data()) as Float32Array).map((v) => Math.min(1, Math.max(0, v))),
        at * h * w,
      );
    }
    cond?.dispose();
    panels.push(imageGrid(pixels, count, h, w, { cols: perRow, scale: 2 }));
  }
  return composePanels(panels, 12);
}

/**
 * Test bits/dim of the first `count` images (fixed dequantisation noise), with the
 * half-width of its 95% confidence interval. Does not consume `params`.
 */
export async function evaluateImages(
  flow: Flow<any, any>,
  params: FlowParams,
  pixels: Uint8Array,
  count: number,
  seed: number,
  labels?: Uint8Array,
): Promise<{ testBitsPerDim: number; testBitsPerDimCI: number; testImages: number }> {
  const n = Math.min(count, pixels.length / flow.eventShape.reduce((a, d) => a * d, 1));
  // Conditional flows: each test image's own label or context; log p(x | context) needs no other term.
  const bpds = await imageBitsPerDim(
    flow,
    params,
    pixels,
    n,
    seed,
    contextRows(flow, pixels, labels, 0, n),
  );
  const mean = bpds.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(bpds.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1));
  return { testBitsPerDim: mean, testBitsPerDimCI: (1.96 * sd) / Math.sqrt(n), testImages: n };
}

/** The agreement metric as printed lines. */
export function agreementLines(agreement: ContextAgreement[], spec: ImageContextSpec): string {
  return agreement
    .map(
      (a) =>
        `samples vs their ${contextName(spec)} context (${a.images} test images, temperature ${a.temperature}): mean abs error ${a.matchedMAE.toFixed(4)}, against wrong contexts ${a.shuffledMAE.toFixed(4)}\n`,
    )
    .join("");
}

export async function trainImageRun(
  s: ImageTrainSettings,
  resume?: TrainState,
): Promise<ImageTrainReport> {
  await startEngine(s.threads ? { threads: s.threads } : {});
  const train = await loadImageDataset(s.data, "train", { dataDir: s.dataDir });
  const test = await loadImageDataset(s.data, "test", { dataDir: s.dataDir });
  const shape = [train.height, train.width, 1];
  const dims = train.height * train.width;
  const validCount = Math.min(s.validImages, train.n - 1);
  const trainCount = Math.min(s.trainImages ?? train.n - validCount, train.n - validCount);
  const trainX = scaledPixels(train.images, 0, trainCount, dims);
  const validX = dequantizeOnce(
    scaledPixels(train.images, train.n - validCount, validCount, dims),
    s.seed + 1,
  );
  const classes = s.conditional ? 10 : 0;
  const flowMatching = s.model === FLOW_MATCHING_MODEL;
  const config: ImageFlowConfig | ImageFlowMatchingConfig = flowMatching
    ? {
        model: FLOW_MATCHING_MODEL,
        shape,
        hidden: s.hidden,
        levels: s.levels,
        blocks: s.blocks,
        classes,
        solver: s.solver,
        odeSteps: s.odeSteps,
        path: s.path,
        probeSeed: s.seed,
      }
    : {
        model: s.model as ImageModel,
        shape,
        levels: s.levels,
        steps: s.flowSteps,
        hidden: s.hidden,
        blocks: s.blocks,
        classes,
        context: s.context,
        seed: s.seed,
        dequantization: s.dequantization,
      };
  const flow = buildFlow(config);
  const k = flow.contextDim;
  const trainCond = contextRows(flow, train.images, train.labels, 0, trainCount);
  const validCond = contextRows(flow, train.images, train.labels, train.n - validCount, validCount);
  // ActNorm's data-dependent init: 16 images give each channel thousands of pixels, and an
  // eager Glow pass on 64 left jax-js's one 4 GiB wasm memory too fragmented for a batch-64 step.
  const initCount = Math.min(16, trainCount);
  const initX = np
    .array(dequantizeOnce(trainX.slice(0, initCount * dims), s.seed + 2))
    .reshape([initCount, ...shape]);
  const initCond = trainCond
    ? np.array(trainCond.slice(0, initCount * k)).reshape([initCount, k])
    : undefined;
  const params = flow.init(random.key(s.seed), { x: initX, cond: initCond });
  const runDir = createRunDir(s.out);
  const gridPicks = pickImages(test.n, GRID_ROWS, s.seed);
  const grid = (p: FlowParams) =>
    s.context
      ? contextGrid(flow, p, test.images, gridPicks, s.seed, [0.7])
      : sampleGrid(flow, p, 64, s.seed, [0.7, 1]);

  const options: FitOptions = {
    steps: s.steps,
    batchSize: s.batchSize,
    optimizer: { kind: "adam", lr: imageSchedule(s), clipNorm: 50 },
    seed: s.seed,
    evalEvery: s.evalEvery,
    evalBatchSize: IMAGE_CHUNK,
    checkpointEvery: s.checkpointEvery,
  };
  const describe = {
    name: s.data,
    rows: trainCount,
    perturb: s.perturb,
    source: {
      files: [train.files.images, train.files.labels, test.files.images, test.files.labels],
      origin: train.origin,
      verified: train.verified && test.verified,
    },
  };
  const progress = new Progress(`train ${s.model} on ${s.data}`);
  progress.note(
    flowMatching
      ? "loss: the flow-matching regression loss (logit space, summed over pixels); valid: NLL in bits per dimension by the ODE (Hutchinson estimate), the unit of the test figure at the end"
      : "loss and valid: NLL in bits per dimension, the unit of the test figure at the end",
  );
  const interrupts = watchInterrupts();
  let result;
  try {
    result = await fit(
      flow,
      params,
      { x: trainX, rows: trainCount, cond: trainCond },
      {
        ...options,
        valid: { x: validX, rows: validCount, cond: validCond },
        augment: dequantizer(s.seed, s.perturb ?? 0),
        resume,
        signal: interrupts.signal,
        onProgress: (p) => {
          progress.update({
            step: p.step,
            total: p.totalSteps,
            loss: flowMatching ? p.loss : nllBitsPerDim(p.loss, dims),
            validLoss: p.validLoss === undefined ? undefined : nllBitsPerDim(p.validLoss, dims),
            stepsPerSecond: p.stepsPerSecond,
            etaSeconds: p.etaSeconds,
            skipped: p.skipped,
          });
        },
        onCheckpoint: async (state) => {
          await saveRun(s.out, { flow, state, data: describe, training: options });
          if (s.keepEvery && state.step % s.keepEvery === 0)
            await keepCheckpoint(s.out, state.step);
          const run = await loadRun(s.out);
          tree.dispose(run.params);
          const shown = run.bestParams ?? null;
          if (shown) {
            await savePng(join(s.out, "samples.png"), await grid(shown));
            tree.dispose(shown);
          }
        },
      },
    );
  } catch (e) {
    runDir.discardIfEmpty(); // failed before its first checkpoint: leave no empty run directory
    throw e;
  } finally {
    interrupts.release();
  }
  progress.done();
  tree.dispose(result.params);
  if (result.stopReason === "aborted") {
    tree.dispose(result.bestParams);
    throw interrupts.error(
      `interrupted at step ${result.state.step}; the checkpoint in ${s.out} is saved: continue with clayflow train --resume ${s.out}`,
    );
  }
  const evaluation = await evaluateImages(
    flow,
    result.bestParams,
    test.images,
    s.testImages ?? test.n,
    s.seed + 3,
    test.labels,
  );
  const report: ImageTrainReport = {
    steps: result.state.step,
    seconds: result.state.seconds,
    ...evaluation,
  };
  if (s.context) {
    report.agreement = [];
    for (const t of [0.7, 1])
      report.agreement.push(
        await contextAgreement(
          flow,
          result.bestParams,
          test.images,
          AGREEMENT_IMAGES,
          s.seed + 5,
          t,
        ),
      );
  }
  // The judge learns from the same training images as the flow.
  if (classes && s.judge !== false)
    report.classAgreement = await judgeClassSamples(
      flow,
      result.bestParams,
      { images: train.images, labels: train.labels, n: trainCount },
      test,
      s.seed + 6,
    );
  const testCount = evaluation.testImages;
  await savePng(join(s.out, "samples.png"), await grid(result.bestParams));
  tree.dispose(result.bestParams);
  const history = result.state.history.filter((h) => h.validLoss !== null);
  if (history.length > 1) {
    await savePng(
      join(s.out, "learning-curve.png"),
      linePlot(
        [
          {
            x: history.map((h) => h.seconds / 60),
            y: history.map((h) => nllBitsPerDim(h.validLoss!, dims)),
            label: "validation",
          },
        ],
        {
          width: 520,
          height: 340,
          title: "bits/dim against training time",
          xlabel: "minutes",
          ylabel: "bits/dim",
        },
      ),
    );
  }
  await writeFileAtomic(
    join(s.out, "report.json"),
    JSON.stringify(
      {
        ...report,
        curve: history.map((h) => ({
          step: h.step,
          seconds: h.seconds,
          validBitsPerDim: nllBitsPerDim(h.validLoss!, dims),
        })),
      },
      null,
      2,
    ) + "\n",
  );
  process.stdout.write(
    `trained ${s.model} on ${s.data} for ${report.steps} steps in ${(report.seconds / 60).toFixed(1)} min\n` +
      `test ${report.testBitsPerDim.toFixed(3)} ± ${report.testBitsPerDimCI.toFixed(3)} bits/dim on ${testCount} images (95% CI)\n` +
      (report.agreement ? agreementLines(report.agreement, s.context!) : "") +
      (report.classAgreement ? classAgreementLines(report.classAgreement) : "") +
      `run saved in ${s.out}; pictures: samples.png (${s.context ? `context | real | 3 samples at temperature 0.7, for ${gridPicks.length} test images` : `temperatures 0.7 and 1${classes ? ", a row per class" : ""}`})${history.length > 1 ? ", learning-curve.png" : ""}\n`,
  );
  return report;
}
