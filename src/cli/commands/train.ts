/** `clayflow train`: fit a flow to a toy density or a CSV file, with checkpoints and pictures. */
import { join } from "node:path";
import { numpy as np, random, tree } from "@jax-js/jax";
import { startEngine } from "../../engine/index.js";
import { VECTOR_MODELS } from "../../models/vector.js";
import { buildFlow, type FlowConfig } from "../../models/index.js";
import {
  FLOW_MATCHING_MODEL,
  FM_COUPLINGS,
  FM_PATHS,
  isFlowMatchingConfig,
  type FlowMatchingCoupling,
  type FlowMatchingPath,
} from "../../models/flow-matching.js";
import { ODE_SOLVERS, type OdeSolver } from "../../ode/solvers.js";
import { fit, evaluateNLL, type FitOptions, type TrainState } from "../../train/fit.js";
import { saveRun, loadRun } from "../../io/checkpoint.js";
import { keepCheckpoint } from "../../io/kept-checkpoints.js";
import { isImageConfig, IMAGE_MODELS, type ImageModel } from "../../models/image.js";
import { isImageFlowMatchingConfig } from "../../models/image-flow-matching.js";
import { IMAGE_DATASET_NAMES, type ImageDatasetName } from "../../data/image-datasets.js";
import {
  IMAGE_FM_DEFAULTS,
  IMAGE_TRAIN_DEFAULTS,
  trainImageRun,
  type ImageTrainSettings,
} from "./train-image.js";
import { parseContextName, type ImageContextSpec } from "../../data/image-context.js";
import { writeFileAtomic } from "../../io/atomic-write.js";
import { savePng } from "../../io/plot.js";
import { densityFigure, lossFigure, samplesFigure } from "../../io/flow-plots.js";
import { ENTROPY_8GAUSSIANS, ENTROPY_CHECKERBOARD } from "../../data/toy2d-density.js";
import { standardizerLogDet } from "../../data/standardize.js";
import type { FlowParams } from "../../distributions/flow.js";
import { UsageError, wasGiven, type Command, type ParsedOptions } from "../args.js";
import { Progress } from "../progress.js";
import { watchInterrupts } from "../interrupt.js";
import { loadDataSource, type DataSource } from "../data-source.js";
import { checkFreshRunDir, createRunDir, inferenceParams, toDataUnits } from "../run-dir.js";
import type { LoadedRun } from "../../io/checkpoint.js";
import { logProbRows } from "../../eval/log-prob-rows.js";
import {
  evenRows,
  summarizeLogLik,
  summaryQuantile,
  writeLogLikSummary,
  LOGLIK_FILE,
  type LogLikSummary,
} from "../../eval/loglik-quantiles.js";

/** Known best-possible test NLLs (the densities' entropies, in nats). */
const ENTROPY: Record<string, number> = {
  "8gaussians": ENTROPY_8GAUSSIANS,
  checkerboard: ENTROPY_CHECKERBOARD,
};

/** The models `clayflow train` fits to vectors: the discrete flows and flow matching. */
const TRAIN_VECTOR_MODELS = [...VECTOR_MODELS, FLOW_MATCHING_MODEL] as const;
type TrainVectorModel = (typeof TRAIN_VECTOR_MODELS)[number];

/** Default --eval-every of flow-matching runs. */
const FLOW_MATCHING_EVAL_EVERY = 5000;

export interface TrainSettings {
  model: TrainVectorModel;
  data: string;
  /** CSV columns that become each row's context (a conditional flow of the others); none by default. */
  contextColumns?: string[];
  out: string;
  steps: number;
  batchSize: number;
  lr: number;
  layers?: number;
  hidden?: number[];
  /** Spline models (nsf, nsf-ar): bins per spline and the half-width of the interval the splines cover. */
  bins?: number;
  tailBound?: number;
  /** Flow matching: the ODE solver of logProb and sampling, its fixed step count, the training path and coupling. */
  solver?: OdeSolver;
  odeSteps?: number;
  path?: FlowMatchingPath;
  coupling?: FlowMatchingCoupling;
  samples: number;
  seed: number;
  evalEvery: number;
  patience?: number;
  checkpointEvery: number;
  /** Also keep a copy of every checkpoint whose step is a multiple of this (see io/kept-checkpoints.ts). */
  keepEvery?: number;
  clipNorm?: number;
  schedule: "constant" | "cosine";
  threads?: number;
  plots: boolean;
}

export interface TrainReport {
  out: string;
  steps: number;
  seconds: number;
  testNLL: number;
  entropy: number | null;
  skipped: number;
}

function parseHidden(raw: string | undefined): number[] | undefined {
  if (raw === undefined) return undefined;
  const widths = raw.split(",").map((s) => Number(s.trim()));
  if (widths.length === 0 || widths.some((w) => !Number.isInteger(w) || w < 1)) {
    throw new UsageError(
      `--hidden must be comma-separated positive integers, e.g. 64,64; got "${raw}"`,
    );
  }
  return widths;
}

function fitOptions(s: TrainSettings): FitOptions {
  const lr =
    s.schedule === "cosine"
      ? {
          kind: "cosine" as const,
          lr: s.lr,
          warmupSteps: Math.min(200, Math.floor(s.steps / 10)),
          totalSteps: s.steps,
          finalFraction: 0.02,
        }
      : s.lr;
  return {
    steps: s.steps,
    batchSize: s.batchSize,
    optimizer: { kind: "adam", lr, ...(s.clipNorm ? { clipNorm: s.clipNorm } : {}) },
    seed: s.seed,
    evalEvery: s.evalEvery,
    patience: s.patience,
    checkpointEvery: s.checkpointEvery,
  };
}

async function writePictures(
  s: TrainSettings,
  data: DataSource,
  run: Awaited<ReturnType<typeof loadRun>>,
  params: FlowParams,
): Promise<string[]> {
  const written: string[] = [];
  const history = run.state.history.map((h) => ({
    step: h.step,
    trainLoss: h.trainLoss ?? undefined,
    validLoss: h.validLoss ?? undefined,
  }));
  if (history.some((h) => Number.isFinite(h.trainLoss) || Number.isFinite(h.validLoss))) {
    await savePng(join(s.out, "loss.png"), lossFigure(history));
    written.push("loss.png");
  }
  // The 2-D pictures show one density; a conditional flow has one per context.
  if (data.dim === 2 && data.contextColumns.length === 0) {
    const x = run.flow.sample(tree.ref(params), random.key(s.seed + 7), 5000);
    const samples = Float32Array.from((await x.data()) as Float32Array);
    await savePng(
      join(s.out, "density.png"),
      // An ODE flow's density costs a solve per chunk: a coarser grid keeps the picture to seconds.
      await densityFigure(run.flow, params, data.test.x, {
        samples,
        ...(run.flow.jittable ? {} : { resolution: 100 }),
      }),
    );
    await savePng(join(s.out, "samples.png"), samplesFigure(samples, data.test.x));
    written.push("density.png", "samples.png");
  }
  return written;
}

/**
 * Score the training rows (up to LOGLIK_MAX_ROWS, evenly spaced) with the parameters `score`
 * uses and store their log-likelihood quantiles beside the run, so `score --flag-quantile`
 * needs no training data. Consumes the loaded run's parameters.
 */
async function writeTrainingLogLik(
  dir: string,
  run: LoadedRun,
  data: DataSource,
): Promise<LogLikSummary> {
  const params = inferenceParams(run);
  let logp: Float64Array;
  const cond = data.train.cond ? evenRows(data.train.cond, data.contextColumns.length) : undefined;
  try {
    logp = toDataUnits(
      run,
      await logProbRows(run.flow, params, evenRows(data.train.x, data.dim), { cond }),
    );
  } finally {
    tree.dispose(params);
  }
  const summary = summarizeLogLik(logp, {
    source: "training rows",
    ofRows: data.train.rows,
    step: run.state.step,
    paramsStep: run.state.best?.step ?? run.state.step,
  });
  await writeLogLikSummary(dir, summary);
  return summary;
}

/** Train (or resume) a run; returns what a report needs. */
export async function trainRun(s: TrainSettings, resume?: TrainState): Promise<TrainReport> {
  await startEngine(s.threads ? { threads: s.threads } : {});
  const data = loadDataSource(s.data, {
    samples: s.samples,
    seed: s.seed,
    contextColumns: s.contextColumns,
  });
  const contextDim = data.contextColumns.length;
  const config: FlowConfig =
    s.model === FLOW_MATCHING_MODEL
      ? {
          model: s.model,
          dim: data.dim,
          hidden: s.hidden,
          solver: s.solver,
          odeSteps: s.odeSteps,
          path: s.path,
          coupling: s.coupling,
          ...(contextDim ? { contextDim } : {}),
        }
      : {
          model: s.model,
          dim: data.dim,
          layers: s.layers,
          hidden: s.hidden,
          seed: s.seed,
          bins: s.bins,
          tailBound: s.tailBound,
          ...(contextDim ? { contextDim } : {}),
        };
  const flow = buildFlow(config);
  // ActNorm's data-dependent initialisation sees a representative batch.
  const initRows = Math.min(data.train.rows, 1024);
  const initBatch = np
    .array(data.train.x.slice(0, initRows * data.dim))
    .reshape([initRows, data.dim]);
  const initCond = data.train.cond
    ? np.array(data.train.cond.slice(0, initRows * contextDim)).reshape([initRows, contextDim])
    : undefined;
  const params = flow.init(random.key(s.seed), { x: initBatch, cond: initCond });
  const runDir = createRunDir(s.out);

  const options = fitOptions(s);
  const describe = {
    name: s.data,
    rows: data.train.rows,
    columns: data.columns,
    ...(contextDim ? { contextColumns: data.contextColumns } : {}),
  };
  const save = async (state: TrainState) => {
    const preprocessing = {
      preprocessing: data.standardizer,
      contextPreprocessing: data.contextStandardizer,
    };
    await saveRun(s.out, { flow, state, ...preprocessing, data: describe, training: options });
    if (s.keepEvery && state.step % s.keepEvery === 0) await keepCheckpoint(s.out, state.step);
  };

  const interrupts = watchInterrupts();
  const progress = new Progress(`train ${s.model} on ${s.data}`);
  // The flow sees standardised columns, so its losses differ from the data's NLL by a constant.
  if (s.model === FLOW_MATCHING_MODEL)
    progress.note(
      "loss: the flow-matching regression loss; valid: NLL in nats per row by the ODE (exact divergence)",
    );
  if (data.standardizer)
    progress.note(
      "loss and valid: NLL in nats per row of the standardised columns (the test NLL at the end is in the data's own units)",
    );
  let result;
  try {
    result = await fit(flow, params, data.train, {
      ...options,
      valid: data.valid,
      resume,
      signal: interrupts.signal,
      onCheckpoint: save,
      onProgress: (p) =>
        progress.update({
          step: p.step,
          total: p.totalSteps,
          loss: p.loss,
          validLoss: p.validLoss,
          stepsPerSecond: p.stepsPerSecond,
          etaSeconds: p.etaSeconds,
          skipped: p.skipped,
        }),
    });
  } catch (e) {
    runDir.discardIfEmpty(); // failed before its first checkpoint: leave no empty run directory
    throw e;
  } finally {
    interrupts.release();
  }
  progress.done();
  if (result.stopReason === "aborted") {
    tree.dispose(result.params);
    tree.dispose(result.bestParams);
    throw interrupts.error(
      `interrupted at step ${result.state.step}; the checkpoint in ${s.out} is saved: continue with clayflow train --resume ${s.out}`,
    );
  }
  tree.dispose(result.params);
  const testNLL = await evaluateNLL(flow, tree.ref(result.bestParams), data.test);
  // Report the likelihood of the data in its own units (undo the standardisation's Jacobian).
  const testNLLData = data.standardizer ? testNLL - standardizerLogDet(data.standardizer) : testNLL;
  const run = await loadRun(s.out);
  const loglik = await writeTrainingLogLik(s.out, run, data);
  const pictures = s.plots ? await writePictures(s, data, run, result.bestParams) : [];
  tree.dispose(result.bestParams);
  const entropy = ENTROPY[s.data] ?? null;
  const report: TrainReport = {
    out: s.out,
    steps: result.state.step,
    seconds: result.state.seconds,
    testNLL: testNLLData,
    entropy,
    skipped: result.skipped,
  };
  await writeFileAtomic(
    join(s.out, "report.json"),
    JSON.stringify({ ...report, testRows: data.test.rows, pictures }, null, 2) + "\n",
  );
  const gap =
    entropy === null
      ? ""
      : ` (best possible ${entropy.toFixed(3)}: gap ${(testNLLData - entropy).toFixed(3)})`;
  process.stdout.write(
    `trained ${s.model} for ${report.steps} steps in ${report.seconds.toFixed(0)} s` +
      (report.skipped ? ` (${report.skipped} non-finite steps skipped)` : "") +
      `\ntest NLL ${testNLLData.toFixed(4)} nats per row${data.standardizer ? " in the data's own units" : ""} on ${data.test.rows} rows${gap}` +
      `\ntraining log-likelihood quantiles in ${LOGLIK_FILE}: 1% ${summaryQuantile(loglik, 0.01).toFixed(4)} nats, ` +
      `median ${summaryQuantile(loglik, 0.5).toFixed(4)} (flag unlikely rows: clayflow score --flag-quantile 0.01)` +
      `\nrun saved in ${s.out}${pictures.length ? `; pictures: ${pictures.join(", ")}` : ""}\n`,
  );
  return report;
}

/**
 * The peak learning rate of a resumed run: the stored one, or --lr when given (the usual
 * late-training drop; the schedule's shape and the optimizer state carry on).
 */
function resumedLr(o: ParsedOptions, stored: number | { lr?: number } | undefined): number {
  if (wasGiven(o, "lr")) {
    const lr = o.lr as number;
    if (!(lr > 0)) throw new UsageError(`--lr must be positive, got ${lr}`);
    return lr;
  }
  return typeof stored === "number" ? stored : (stored?.lr ?? 1e-3);
}

/** Settings of a run being resumed, read back from its config. */
async function resumeSettings(dir: string, o: ParsedOptions): Promise<[TrainSettings, TrainState]> {
  const run = await loadRun(dir);
  tree.dispose(run.params);
  if (run.bestParams) tree.dispose(run.bestParams);
  const t = run.config.training.options;
  const m = run.config.model;
  if (isImageConfig(m))
    throw new UsageError(
      `${dir} holds an image model: use clayflow train --resume ${dir} (image runs resume through the same command)`,
    );
  if (!run.config.data.name)
    throw new Error(`${dir}: the run does not record its data set, so it cannot be resumed`);
  const s: TrainSettings = {
    model: m.model,
    data: run.config.data.name,
    contextColumns: run.config.data.contextColumns ?? [],
    out: dir,
    steps: wasGiven(o, "steps") ? (o.steps as number) : (t.steps ?? 1000),
    batchSize: t.batchSize ?? 256,
    lr: resumedLr(o, t.optimizer?.lr),
    ...(isFlowMatchingConfig(m)
      ? {
          hidden: m.hidden,
          solver: m.solver,
          odeSteps: m.odeSteps,
          path: m.path,
          coupling: m.coupling,
        }
      : { layers: m.layers, hidden: m.hidden, bins: m.bins, tailBound: m.tailBound }),
    samples: run.config.data.rows ?? 20000,
    seed: t.seed ?? 0,
    evalEvery: t.evalEvery ?? 250,
    patience: t.patience,
    checkpointEvery: t.checkpointEvery ?? 500,
    keepEvery: keepEveryOption(o, t.checkpointEvery ?? 500),
    clipNorm: t.optimizer?.clipNorm,
    schedule: typeof t.optimizer?.lr === "object" ? "cosine" : "constant",
    threads: o.threads as number | undefined,
    plots: !o["no-plots"],
  };
  for (const name of [
    "model",
    "data",
    "context-columns",
    "out",
    "batch-size",
    "schedule",
    "layers",
    "hidden",
    "bins",
    "tail-bound",
    "solver",
    "ode-steps",
    "path",
    "coupling",
    "samples",
    "seed",
    "eval-every",
    "checkpoint-every",
    "clip-norm",
    "patience",
  ]) {
    if (wasGiven(o, name))
      throw new UsageError(
        `--${name} cannot change when resuming: the run keeps its own settings (only --steps, --lr, --threads, --keep-every and --no-plots apply)`,
      );
  }
  return [s, run.state];
}

export function settingsFrom(o: ParsedOptions): TrainSettings {
  const model = o.model as string;
  if (!(TRAIN_VECTOR_MODELS as readonly string[]).includes(model)) {
    if ((IMAGE_MODELS as readonly string[]).includes(model)) {
      throw new UsageError(
        `${model} is an image model: it needs image data (--data ${IMAGE_DATASET_NAMES.join(" or ")})${o.data === undefined ? "" : `, not "${o.data}"`}`,
      );
    }
    throw new UsageError(
      `unknown model "${model}": use one of ${TRAIN_VECTOR_MODELS.join(", ")} (vectors) or ${[...IMAGE_MODELS, FLOW_MATCHING_MODEL].join(", ")} (images)`,
    );
  }
  if (!o.data)
    throw new UsageError("--data is required: a toy density name or a CSV file (see --help)");
  if (o.context !== undefined)
    throw new UsageError(
      `--context conditions an image model on part of each image, so it needs image data (--data ${IMAGE_DATASET_NAMES.join(" or ")}), not "${o.data}"`,
    );
  if (!o.out) throw new UsageError("--out DIR is required: where the run is saved");
  for (const name of ["test-images", "no-judge"])
    if (o[name] !== undefined)
      throw new UsageError(
        `--${name} belongs to image runs (--data ${IMAGE_DATASET_NAMES.join(" or ")}), not "${o.data}"`,
      );
  checkCounts(o);
  const schedule = scheduleOption(o.schedule);
  return {
    model: model as TrainVectorModel,
    data: o.data as string,
    contextColumns: contextColumnsOption(o["context-columns"]),
    out: o.out as string,
    steps: o.steps as number,
    batchSize: o["batch-size"] as number,
    lr: o.lr as number,
    layers: o.layers as number | undefined,
    hidden: parseHidden(o.hidden as string | undefined),
    ...splineOptions(model as TrainVectorModel, o),
    ...flowMatchingOptions(model as TrainVectorModel, o),
    samples: o.samples as number,
    seed: o.seed as number,
    // Flow matching's validation NLL is an ODE solve over the validation rows: rarer by default.
    evalEvery:
      model === FLOW_MATCHING_MODEL && !wasGiven(o, "eval-every")
        ? FLOW_MATCHING_EVAL_EVERY
        : (o["eval-every"] as number),
    patience: o.patience as number | undefined,
    checkpointEvery: o["checkpoint-every"] as number,
    keepEvery: keepEveryOption(o, o["checkpoint-every"] as number),
    clipNorm: o["clip-norm"] as number | undefined,
    schedule,
    threads: o.threads as number | undefined,
    plots: !o["no-plots"],
  };
}

/** --solver, --ode-steps, --path and --coupling, which only flow matching has (--layers it has not). */
function flowMatchingOptions(
  model: TrainVectorModel,
  o: ParsedOptions,
): Pick<TrainSettings, "solver" | "odeSteps" | "path" | "coupling"> {
  const given = ["solver", "ode-steps", "path", "coupling"].filter((k) => o[k] !== undefined);
  if (model !== FLOW_MATCHING_MODEL) {
    if (given.length)
      throw new UsageError(
        `--${given[0]} belongs to --model flow-matching (an ODE flow); ${model} is a discrete flow`,
      );
    return {};
  }
  if (o.layers !== undefined)
    throw new UsageError(
      "--layers counts the layers of a discrete flow; flow matching has one vector field (size it with --hidden)",
    );
  const pick = <T extends string>(name: string, known: readonly T[]): T | undefined => {
    const v = o[name];
    if (v === undefined) return undefined;
    if (!(known as readonly unknown[]).includes(v))
      throw new UsageError(`--${name} must be one of ${known.join(", ")}, got "${v}"`);
    return v as T;
  };
  const odeSteps = o["ode-steps"] as number | undefined;
  if (odeSteps !== undefined && !(odeSteps >= 1 && odeSteps <= 100000))
    throw new UsageError(`--ode-steps must be from 1 to 100000, got ${odeSteps}`);
  return {
    solver: pick("solver", ODE_SOLVERS),
    odeSteps,
    path: pick("path", FM_PATHS),
    coupling: pick("coupling", FM_COUPLINGS),
  };
}

/** --bins and --tail-bound, which only the spline models have. */
function splineOptions(
  model: TrainVectorModel,
  o: ParsedOptions,
): Pick<TrainSettings, "bins" | "tailBound"> {
  const bins = o.bins as number | undefined;
  const tailBound = o["tail-bound"] as number | undefined;
  if (model !== "nsf" && model !== "nsf-ar" && (bins !== undefined || tailBound !== undefined)) {
    throw new UsageError(
      `--bins and --tail-bound shape the splines of --model nsf or nsf-ar; ${model} has none`,
    );
  }
  if (bins !== undefined && !(bins >= 2 && bins <= 256))
    throw new UsageError(`--bins must be from 2 to 256, got ${bins}`);
  if (tailBound !== undefined && !(tailBound > 0 && Number.isFinite(tailBound)))
    throw new UsageError(`--tail-bound must be positive, got ${tailBound}`);
  return { bins, tailBound };
}

/** --context-columns A,B: names of CSV columns (none when absent). */
function contextColumnsOption(raw: unknown): string[] {
  if (raw === undefined) return [];
  const names = String(raw)
    .split(",")
    .map((c) => c.trim());
  if (names.some((c) => c === ""))
    throw new UsageError(
      `--context-columns must be comma-separated column names, e.g. age,income; got "${raw}"`,
    );
  return names;
}

/** Counts and the rate, as given or defaulted, for vector and image runs alike (`--samples`: toy data only). */
function checkCounts(o: ParsedOptions, image = false): void {
  for (const k of [
    "steps",
    "batch-size",
    ...(image ? [] : ["samples"]),
    "eval-every",
    "checkpoint-every",
  ]) {
    if ((o[k] as number) < 1) throw new UsageError(`--${k} must be at least 1`);
  }
  if (!((o.lr as number) > 0)) throw new UsageError("--lr must be positive");
}

const isImageData = (name: unknown): name is ImageDatasetName =>
  (IMAGE_DATASET_NAMES as readonly unknown[]).includes(name);

/** --keep-every N: a positive multiple of the checkpoint interval (only checkpoints can be kept). */
function keepEveryOption(o: ParsedOptions, checkpointEvery: number): number | undefined {
  const n = o["keep-every"] as number | undefined;
  if (n === undefined) return undefined;
  if (!(Number.isInteger(n) && n > 0 && n % checkpointEvery === 0)) {
    throw new UsageError(
      `--keep-every must be a positive multiple of the checkpoint interval (${checkpointEvery} steps), got ${n}`,
    );
  }
  return n;
}

function scheduleOption(v: unknown): "constant" | "cosine" {
  if (v === "constant" || v === "cosine") return v;
  throw new UsageError(`--schedule must be constant or cosine, got "${v}"`);
}

function dequantizationOption(v: unknown): "uniform" | "variational" {
  if (v === undefined) return IMAGE_TRAIN_DEFAULTS.dequantization;
  if (v === "uniform" || v === "variational") return v;
  throw new UsageError(`--dequantization must be uniform or variational, got "${v}"`);
}

/** `clayflow train` options for image data as settings: given values, else IMAGE_TRAIN_DEFAULTS. */
export function imageSettingsFrom(o: ParsedOptions): ImageTrainSettings {
  const model = o.model as string;
  const flowMatching = model === FLOW_MATCHING_MODEL;
  if (!flowMatching && !(IMAGE_MODELS as readonly string[]).includes(model)) {
    throw new UsageError(
      `image data needs an image model: ${IMAGE_MODELS.join(", ")} or ${FLOW_MATCHING_MODEL} (got "${model}")`,
    );
  }
  const fm = flowMatching ? imageFlowMatchingOptions(o) : {};
  if (!flowMatching) flowMatchingOptions(model as TrainVectorModel, o); // refuses --solver & co.
  if (!o.out) throw new UsageError("--out DIR is required: where the run is saved");
  if (o["context-columns"] !== undefined)
    throw new UsageError(
      "--context-columns names columns of a CSV file; image models condition with --conditional or --context",
    );
  if (o.bins !== undefined || o["tail-bound"] !== undefined)
    throw new UsageError(
      "--bins and --tail-bound shape the splines of --model nsf or nsf-ar, which model vectors, not images",
    );
  checkCounts(o, true);
  const context = imageContextOption(o);
  const hidden = o.hidden === undefined ? IMAGE_TRAIN_DEFAULTS.hidden : Number(o.hidden);
  if (!(Number.isInteger(hidden) && hidden > 0))
    throw new UsageError(
      `--hidden for image models is one channel count, e.g. 64; got "${o.hidden}"`,
    );
  const perturb = (o.perturb as number | undefined) ?? 0;
  if (!(perturb >= 0 && perturb < 1))
    throw new UsageError(`--perturb is a probability in [0, 1), e.g. 0.2; got ${o.perturb}`);
  return {
    model: flowMatching ? FLOW_MATCHING_MODEL : (model as ImageModel),
    ...fm,
    data: o.data as ImageDatasetName,
    dataDir: o["data-dir"] as string | undefined,
    out: o.out as string,
    steps: wasGiven(o, "steps") ? (o.steps as number) : IMAGE_TRAIN_DEFAULTS.steps,
    batchSize: wasGiven(o, "batch-size")
      ? (o["batch-size"] as number)
      : IMAGE_TRAIN_DEFAULTS.batchSize,
    lr: wasGiven(o, "lr")
      ? (o.lr as number)
      : flowMatching
        ? IMAGE_FM_DEFAULTS.lr
        : IMAGE_TRAIN_DEFAULTS.lr,
    schedule: scheduleOption(o.schedule),
    levels: o.levels as number | undefined,
    flowSteps: (o["flow-steps"] as number | undefined) ?? IMAGE_TRAIN_DEFAULTS.flowSteps,
    hidden,
    blocks: o.blocks as number | undefined,
    conditional: !!o.conditional,
    perturb,
    dequantization: flowMatching ? "uniform" : dequantizationOption(o.dequantization),
    context,
    seed: o.seed as number,
    evalEvery: wasGiven(o, "eval-every")
      ? (o["eval-every"] as number)
      : flowMatching
        ? IMAGE_FM_DEFAULTS.evalEvery
        : IMAGE_TRAIN_DEFAULTS.evalEvery,
    checkpointEvery: o["checkpoint-every"] as number,
    keepEvery: keepEveryOption(o, o["checkpoint-every"] as number),
    ...imageEvaluation(o, flowMatching),
    threads: o.threads as number | undefined,
  };
}

/**
 * What an image run evaluates, new or resumed: its validation images, --test-images (default
 * all; fewer for flow matching, whose likelihood is an ODE solve per image) and --no-judge.
 */
function imageEvaluation(
  o: ParsedOptions,
  flowMatching: boolean,
): Pick<ImageTrainSettings, "validImages" | "testImages" | "judge"> {
  const n = o["test-images"] as number | undefined;
  if (n !== undefined && !(Number.isInteger(n) && n >= 1))
    throw new UsageError(`--test-images must be a positive integer, got ${n}`);
  return {
    validImages: flowMatching ? IMAGE_FM_DEFAULTS.validImages : 2000,
    testImages: n ?? (flowMatching ? IMAGE_FM_DEFAULTS.testImages : undefined),
    judge: !o["no-judge"],
  };
}

/**
 * Flow matching on images: --solver and --ode-steps (defaults IMAGE_FM_DEFAULTS), --path;
 * refuses what it does not have (--coupling ot, --context, variational dequantisation).
 */
function imageFlowMatchingOptions(
  o: ParsedOptions,
): Pick<ImageTrainSettings, "solver" | "odeSteps" | "path"> {
  const { solver, odeSteps, path, coupling } = flowMatchingOptions(FLOW_MATCHING_MODEL, o);
  if (coupling === "ot")
    throw new UsageError(
      "--coupling ot (minibatch optimal transport) is for vector data in this version; image flow matching pairs noise and images independently",
    );
  for (const name of ["context", "dequantization", "flow-steps"])
    if (wasGiven(o, name))
      throw new UsageError(
        `--${name} belongs to glow and realnvp; image flow matching is class-conditional (--conditional) or unconditional, with uniform dequantisation`,
      );
  return {
    solver: solver ?? IMAGE_FM_DEFAULTS.solver,
    odeSteps: odeSteps ?? IMAGE_FM_DEFAULTS.odeSteps,
    path,
  };
}

/** --context downsampleN | left-half, as a spec (undefined when not given). */
function imageContextOption(o: ParsedOptions): ImageContextSpec | undefined {
  if (o.context === undefined) return undefined;
  const spec = parseContextName(o.context as string);
  if (!spec)
    throw new UsageError(
      `--context must be downsampleN (e.g. downsample4: the 7x7 thumbnail of a 28x28 image) or left-half, got "${o.context}"`,
    );
  if (o.conditional)
    throw new UsageError(
      "--context and --conditional cannot be combined: a model conditions on the class label or on a context image",
    );
  // Both image data sets are 28x28; a factor of 1 would give the whole image as its own context.
  if (spec.kind === "downsample" && (28 % spec.factor !== 0 || spec.factor < 2)) {
    throw new UsageError(
      `--context downsample${spec.factor}: the factor must divide 28 (the images' side) and be at least 2, e.g. downsample4`,
    );
  }
  return spec;
}

/** Settings of an image run being resumed, read back from its config. */
async function resumeImage(dir: string, o: ParsedOptions): Promise<void> {
  const run = await loadRun(dir);
  tree.dispose(run.params);
  if (run.bestParams) tree.dispose(run.bestParams);
  const m = run.config.model;
  if (!isImageConfig(m) || !isImageData(run.config.data.name))
    throw new Error(`${dir}: not an image run`);
  const t = run.config.training.options;
  const lr = resumedLr(o, t.optimizer?.lr);
  const steps = wasGiven(o, "steps") ? (o.steps as number) : (t.steps ?? 1000);
  if (run.state.step >= steps)
    throw new UsageError(
      `${dir} already finished its ${steps} steps; pass a larger --steps to train further`,
    );
  for (const name of [
    "model",
    "data",
    "context",
    "conditional",
    "levels",
    "flow-steps",
    "hidden",
    "blocks",
    "perturb",
    "dequantization",
    "schedule",
    "solver",
    "ode-steps",
    "path",
  ]) {
    if (wasGiven(o, name))
      throw new UsageError(
        `--${name} cannot change when resuming: the run keeps its own settings (only --steps, --lr, --threads, --keep-every and --data-dir apply)`,
      );
  }
  await trainImageRun(
    {
      model: m.model,
      data: run.config.data.name,
      dataDir: o["data-dir"] as string | undefined,
      out: dir,
      steps,
      batchSize: t.batchSize ?? 64,
      lr,
      schedule:
        typeof t.optimizer?.lr === "object" && t.optimizer.lr.kind === "cosine"
          ? "cosine"
          : "constant",
      ...(isImageFlowMatchingConfig(m)
        ? {
            solver: m.solver,
            odeSteps: m.odeSteps,
            path: m.path,
            dequantization: "uniform" as const,
          }
        : {
            flowSteps: m.steps,
            context: m.context ?? undefined,
            dequantization: m.dequantization,
          }),
      levels: m.levels,
      hidden: m.hidden,
      blocks: m.blocks,
      conditional: m.classes > 0,
      perturb: run.config.data.perturb,
      seed: t.seed ?? 0,
      evalEvery: t.evalEvery ?? 500,
      checkpointEvery: t.checkpointEvery ?? 500,
      keepEvery: keepEveryOption(o, t.checkpointEvery ?? 500),
      trainImages: run.config.data.rows ?? undefined,
      ...imageEvaluation(o, isImageFlowMatchingConfig(m)),
      threads: o.threads as number | undefined,
    },
    run.state,
  );
}

export const train: Command = {
  spec: {
    name: "train",
    summary: "fit a flow to a 2-D toy density or a CSV file; saves checkpoints and pictures",
    usage:
      "clayflow train --data NAME|FILE.csv --out DIR [options]   |   clayflow train --resume DIR",
    options: {
      model: {
        type: "string",
        help: `flow: ${TRAIN_VECTOR_MODELS.join(", ")} (vectors); glow, realnvp, flow-matching (images)`,
        default: "realnvp",
        value: "NAME",
      },
      data: {
        type: "string",
        help: "moons, 8gaussians, checkerboard, rings, pinwheel, 2spirals, circles, swissroll, a CSV file, or fashion-mnist / mnist",
        value: "NAME|FILE",
      },
      "data-dir": {
        type: "string",
        help: "folder holding the image datasets (else CLAYFLOW_DATA_DIR, the cache, /usr/share/datasets)",
        value: "DIR",
      },
      levels: {
        type: "int",
        help: "image models: multi-scale levels (flow-matching: U-Net resolutions; default 2)",
      },
      "flow-steps": {
        type: "int",
        help: `glow: flow steps per level (default ${IMAGE_TRAIN_DEFAULTS.flowSteps})`,
      },
      blocks: {
        type: "int",
        help: "image models: residual blocks per conditioner (flow-matching: per U-Net level; default 1)",
      },
      "no-judge": {
        type: "boolean",
        help: "class-conditional image runs: skip the class-agreement check at the end (a classifier labels 2,000 samples)",
      },
      "test-images": {
        type: "int",
        help: `image data: test images of the final bits/dim (default all; flow-matching ${IMAGE_FM_DEFAULTS.testImages}, an ODE solve each)`,
      },
      conditional: {
        type: "boolean",
        help: "image models: condition on the class label (sample grids get a row per class)",
      },
      dequantization: {
        type: "string",
        help: `image models: uniform, or variational (a learned noise flow per pixel, a tighter bound; default ${IMAGE_TRAIN_DEFAULTS.dequantization})`,
        value: "KIND",
      },
      perturb: {
        type: "number",
        help: "image models: replace each training pixel by a random one with this probability (a background model for clayflow ood --score ratio, e.g. 0.2)",
      },
      context: {
        type: "string",
        help: "image models: condition on part of each image: downsample4 (its 7x7 thumbnail) or left-half",
        value: "KIND",
      },
      "context-columns": {
        type: "string",
        help: "CSV data: condition on these columns (a flow of the other columns given them), e.g. age,income",
        value: "A,B",
      },
      out: { type: "string", help: "run directory to create", value: "DIR" },
      resume: {
        type: "string",
        help: "continue the run in DIR from its last checkpoint",
        value: "DIR",
      },
      steps: {
        type: "int",
        help: `training steps in total (images: ${IMAGE_TRAIN_DEFAULTS.steps})`,
        default: 10000,
      },
      "batch-size": {
        type: "int",
        help: `rows per step (images: ${IMAGE_TRAIN_DEFAULTS.batchSize})`,
        default: 256,
      },
      lr: {
        type: "number",
        help: `learning rate (Adam; images: ${IMAGE_TRAIN_DEFAULTS.lr}); with --resume, a new peak rate from the next step on (e.g. a lower one late in training)`,
        default: 1e-3,
      },
      schedule: {
        type: "string",
        help: "learning-rate schedule after the warm-up: constant, or cosine (decays to 2% of --lr at the last step)",
        default: "cosine",
      },
      "clip-norm": { type: "number", help: "clip gradients to this global norm" },
      layers: { type: "int", help: "coupling / autoregressive layers (default per model)" },
      bins: {
        type: "int",
        help: "nsf, nsf-ar: bins of each rational-quadratic spline (default 8)",
      },
      "tail-bound": {
        type: "number",
        help: "nsf, nsf-ar: the splines cover [-B, B] (data standardised for CSV), the identity outside (default 5)",
        value: "B",
      },
      solver: {
        type: "string",
        help: `flow-matching: the ODE solver of likelihoods and samples: ${ODE_SOLVERS.join(", ")} (default dopri5, adaptive; images ${IMAGE_FM_DEFAULTS.solver} with ${IMAGE_FM_DEFAULTS.odeSteps} steps)`,
        value: "NAME",
      },
      "ode-steps": {
        type: "int",
        help: "flow-matching: steps of the fixed-step solvers euler, midpoint, rk4 (default 100)",
      },
      path: {
        type: "string",
        help: "flow-matching: the probability path trained on: ot (straight lines, rectified flow) or vp (variance-preserving; default ot)",
        value: "KIND",
      },
      coupling: {
        type: "string",
        help: "flow-matching: pair noise and data in each batch: none, or ot (exact minibatch optimal transport; default none)",
        value: "KIND",
      },
      hidden: {
        type: "string",
        help: `hidden widths of each conditioner, e.g. 64,64 (image models: one channel count, default ${IMAGE_TRAIN_DEFAULTS.hidden})`,
        value: "W,W",
      },
      samples: { type: "int", help: "training rows drawn from a toy density", default: 20000 },
      seed: { type: "int", help: "seed for initialisation, batches and toy data", default: 0 },
      "eval-every": {
        type: "int",
        help: `steps between validation evaluations (images: ${IMAGE_TRAIN_DEFAULTS.evalEvery}; flow-matching: ${FLOW_MATCHING_EVAL_EVERY})`,
        default: 250,
      },
      patience: { type: "int", help: "stop after this many evaluations without improvement" },
      "checkpoint-every": { type: "int", help: "steps between checkpoints", default: 500 },
      "keep-every": {
        type: "int",
        help: "also keep a copy of the checkpoint every N steps (a multiple of --checkpoint-every) in DIR/checkpoints/, e.g. for clayflow eval --curve",
        value: "N",
      },
      threads: {
        type: "int",
        help: "engine threads (default: CLAYFLOW_THREADS or the core count)",
      },
      "no-plots": { type: "boolean", help: "do not write PNG pictures" },
    },
    examples: [
      "clayflow train --data 8gaussians --out runs/8g",
      "clayflow train --model maf --data table.csv --out runs/table --steps 20000",
      "clayflow train --model nsf --data checkerboard --out runs/cb --bins 16",
      "clayflow train --model flow-matching --data checkerboard --out runs/cb-fm --steps 40000 --lr 2e-3",
      "clayflow train --model maf --data table.csv --context-columns age,income --out runs/given",
      "clayflow train --resume runs/8g",
      "clayflow train --model glow --data fashion-mnist --out runs/fashion --steps 20000",
      "clayflow train --model glow --data fashion-mnist --context downsample4 --out runs/fashion-7x7",
    ],
  },
  async run(o) {
    if (o.resume) {
      const peek = await loadRun(o.resume as string);
      tree.dispose(peek.params);
      if (peek.bestParams) tree.dispose(peek.bestParams);
      if (peek.weightsOnly) {
        throw new UsageError(
          `${o.resume} holds weights only (written by clayflow export): it has no optimizer state to resume from; resume the run it was exported from`,
        );
      }
      if (isImageConfig(peek.config.model)) return resumeImage(o.resume as string, o);
      const [settings, state] = await resumeSettings(o.resume as string, o);
      if (state.step >= settings.steps) {
        throw new UsageError(
          `${settings.out} already finished its ${settings.steps} steps; pass a larger --steps to train further`,
        );
      }
      await trainRun(settings, state);
      return;
    }
    if (isImageData(o.data)) {
      const settings = imageSettingsFrom(o);
      checkFreshRunDir(settings.out);
      await trainImageRun(settings);
      return;
    }
    const settings = settingsFrom(o);
    checkFreshRunDir(settings.out);
    await trainRun(settings);
  },
};
