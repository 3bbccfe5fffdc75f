/**
 * Run directories: a trained (or training) flow on disk, readable without clayflow
 * (docs/CHECKPOINTS.md describes the layout for other languages).
 *
 *   <dir>/weights.safetensors   params/<leaf>, best/<leaf>, optimizer/m, optimizer/v (a weights-only
 *                               run, `clayflow export`, holds params/<leaf> alone);
 *                               __metadata__: format, version, model, training_state (JSON)
 *   <dir>/config.json           { format: "clayflow-run", version: 1, weightsSha256, model, preprocessing, data, training }
 *
 * Saving writes the weights first, then config.json, each atomically (temp file, fsync,
 * rename), so a crash leaves either the previous checkpoint or the new weights beside the
 * previous config. The training state is read from the weights' metadata (written in the
 * same file as the tensors it describes), and config.json's model must agree with it.
 * A failed save says which file it could not write and what is left: the previous checkpoint
 * when the weights failed; a failed FIRST save leaves no half run (nor a directory it made).
 *
 * config.json keeps the SHA-256 of weights.safetensors' bytes (`weightsSha256`), checked on
 * load, so a flipped byte is an error rather than a different model. A mismatch is tolerated
 * only where a save was interrupted between its two files: the weights' training state is then
 * later than the progress config.json records (see docs/CHECKPOINTS.md). Runs written before
 * the checksum existed have none and load as before.
 *
 * Loading trusts nothing: format, version, JSON fields, tensor names, dtypes and shapes are
 * all checked against the model that config.json describes BEFORE any device array is
 * built, nothing from the files is executed (JSON.parse only), and each failure is one
 * sentence naming the file and what is wrong. Training options are checked too
 * (training-options.ts), and every stored tensor must be finite: training never saves a NaN
 * or an infinity (it skips non-finite steps), so one in the file means the file is corrupt.
 * `loadRun` also removes temp files of writes whose process died (kill -9 mid-save).
 *
 * `encodeRun` / `decodeRun` are the same two files in memory (config text, weights bytes),
 * for places without a file system (browsers) or runs kept elsewhere (a database, an upload).
 */
import { node } from "../core/node-builtins.js";
import { numpy as np, random } from "@jax-js/jax";
import type { Flow, FlowParams } from "../distributions/flow.js";
import {
  buildFlow,
  resolveFlowConfig,
  configDim,
  configContextDim,
  type FlowConfig,
  type ResolvedFlowConfig,
} from "../models/index.js";
import { standardizerFromJSON, type Standardizer } from "../data/standardize.js";
import { flatten, type Flattened } from "../train/flat-params.js";
import type { FitOptions, FloatVector, TrainState } from "../train/fit.js";
import { decodeSafetensors, encodeSafetensors, type SafetensorsTensor } from "./safetensors.js";
import { writeFileAtomic } from "./atomic-write.js";
import { sha256Hex } from "../core/sha256.js";
import {
  OPTION_KEYS,
  parseTrainingOptions,
  parseTrainingProgress,
  type TrainingOptionsJSON,
  type TrainingProgress,
} from "./training-options.js";
import { jsonExcerpt, oneLine } from "../core/excerpt.js";

export type { TrainingOptionsJSON, TrainingProgress } from "./training-options.js";

export const RUN_FORMAT = "clayflow-run";
export const RUN_VERSION = 1;
export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "weights.safetensors";

/** What the training data was (for the record; not used to load). */
export interface DataDescription {
  name: string | null;
  /** Column names of the data (CSV header), or null. */
  columns: string[] | null;
  dim: number;
  rows: number | null;
  contextDim: number;
  /** Names of the context columns of a conditional CSV run (`clayflow train --context-columns`), or null. */
  contextColumns: string[] | null;
  /** Fraction of pixels replaced by random values during training (a background model for likelihood ratios); absent when 0. */
  perturb?: number;
  /** Where the training data was read from (files, and how they were found); absent when not recorded. */
  source?: DataSource;
}

/** The files a run's data came from: paths as given or found, the place's origin, and whether a known SHA-256 matched. */
export interface DataSource {
  files: string[];
  origin: string;
  verified: boolean;
}

function parseSource(v: unknown): DataSource | null {
  if (!isObject(v)) return null;
  const files = v.files;
  if (
    !Array.isArray(files) ||
    !files.every((f) => typeof f === "string") ||
    typeof v.origin !== "string" ||
    typeof v.verified !== "boolean"
  )
    return null;
  return { files: files as string[], origin: v.origin, verified: v.verified };
}

/** The contents of a run's config.json (docs/CHECKPOINTS.md). */
export interface RunConfig {
  format: typeof RUN_FORMAT;
  version: number;
  /** SHA-256 of weights.safetensors' bytes, lowercase hex; null in runs written before it was kept. */
  weightsSha256: string | null;
  model: ResolvedFlowConfig;
  preprocessing: Standardizer | null;
  /** The standardiser applied to the context before the flow (conditional CSV runs), or null. */
  contextPreprocessing: Standardizer | null;
  data: DataDescription;
  training: {
    options: TrainingOptionsJSON;
    progress: TrainingProgress;
  };
}

/** What `saveRun` and `encodeRun` store: the flow, its training state, preprocessing and data description. */
export interface SaveRunInput {
  /** A flow built by `buildFlow` (its `config` is stored). */
  flow: Flow<any, any>;
  state: TrainState;
  /** The standardiser applied to the data before the flow, if any. */
  preprocessing?: Standardizer | null;
  /** The standardiser applied to the context before the flow, if any. */
  contextPreprocessing?: Standardizer | null;
  data?: {
    name?: string;
    rows?: number;
    columns?: string[];
    contextColumns?: string[];
    perturb?: number;
    source?: DataSource;
  };
  /** Training options (only the JSON-able fields are kept). */
  training?: FitOptions | TrainingOptionsJSON;
  /**
   * Write `state.params` only: no optimizer moments and no best copy (about a third of the
   * bytes), for serving or shipping a model. Such a run loads for inference but cannot resume.
   */
  weightsOnly?: boolean;
}

/** Options of `saveRun` (test hooks). */
export interface SaveRunOptions {
  /** Test hook, passed to `writeFileAtomic` for each file (before its rename). */
  beforeRename?: (tmpPath: string, file: string) => void | Promise<void>;
  /** Test hook: writes each file in place of `writeFileAtomic` (e.g. one that fails with ENOSPC). */
  write?: typeof writeFileAtomic;
}

/** A loaded run: its config, the rebuilt flow, parameters and training state. */
export interface LoadedRun {
  config: RunConfig;
  /** Rebuilt from `config.model` alone. */
  flow: Flow<any, any>;
  params: FlowParams;
  /** Parameters with the best validation NLL, or null when the run had no validation. */
  bestParams: FlowParams | null;
  state: TrainState;
  preprocessing: Standardizer | null;
  contextPreprocessing: Standardizer | null;
  /** Written with `weightsOnly` (clayflow export): `state.optimizer` is zeros and the run cannot resume. */
  weightsOnly: boolean;
}

const fmt = (shape: readonly number[]) => `[${shape.join(", ")}]`;
const SAFE_DTYPE = { float32: "F32", float64: "F64" } as const;

/** JSON with non-finite numbers as the strings "Infinity", "-Infinity", "NaN" (JSON has no such numbers). */
function stringifyNumbers(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    typeof v === "number" && !Number.isFinite(v) ? String(v) : v,
  );
}
function parseNumbers(text: string): unknown {
  return JSON.parse(text, (_k, v) =>
    v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : v === "NaN" ? NaN : v,
  );
}

/** The flow's own parameter layout (leaf paths, shapes, dtype), from a throwaway init. */
function layoutOf(
  flow: Flow<any, any>,
  dtype: "float32" | "float64",
): Pick<Flattened, "spec" | "unravel"> {
  const { vector, spec, unravel } = flatten(
    flow.init(random.key(0), { dtype: dtype === "float64" ? np.float64 : np.float32 }),
  );
  vector.dispose();
  return { spec, unravel };
}

function resolvedModel(flow: Flow<any, any>, where: string): ResolvedFlowConfig {
  if (flow.config === undefined)
    throw new Error(
      `${where}: the flow has no config; build it with buildFlow so the run can rebuild it`,
    );
  return resolveFlowConfig(flow.config as FlowConfig);
}

/** A run's two files as they are written to disk: config.json's text and weights.safetensors' bytes. */
export interface RunFiles {
  config: string;
  weights: Uint8Array;
}

/** A run in memory, byte for byte the files `saveRun` writes (for browsers, databases, uploads). */
export function encodeRun(run: SaveRunInput): RunFiles {
  return encodeRunFiles(run, "encodeRun");
}

/**
 * Save a run (see the module comment). Creates `dir` if needed. A failure names the file that
 * could not be written and what the directory still holds; a failed first save removes what it
 * wrote (and the directories it created), so no half run is left behind.
 */
export async function saveRun(
  dir: string,
  run: SaveRunInput,
  options: SaveRunOptions = {},
): Promise<void> {
  const { join } = node.path("saveRun");
  const fsp = node.fsp("saveRun");
  const files = encodeRunFiles(run, "saveRun");
  const created = await fsp.mkdir(dir, { recursive: true });
  const first = !(await fsp.stat(join(dir, CONFIG_FILE)).then(
    () => true,
    () => false,
  ));
  const write = options.write ?? writeFileAtomic;
  const hook = (file: string) =>
    options.beforeRename ? { beforeRename: (tmp: string) => options.beforeRename!(tmp, file) } : {};
  const fail = async (e: unknown, file: string, left: string): Promise<never> => {
    if (first) {
      await fsp.unlink(join(dir, WEIGHTS_FILE)).catch(() => {});
      if (created !== undefined) await removeEmptyDirs(dir, created);
    }
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === "ENOSPC"
        ? "no space left on device"
        : err.code === "EDQUOT"
          ? "disk quota exceeded"
          : err.message;
    throw Object.assign(new Error(`saveRun: cannot write ${join(dir, file)}: ${why}; ${left}`), {
      code: err.code,
    });
  };
  // Weights first: they carry the training state; config.json only describes the run.
  try {
    await write(join(dir, WEIGHTS_FILE), files.weights, hook(WEIGHTS_FILE));
  } catch (e) {
    await fail(
      e,
      WEIGHTS_FILE,
      first ? "no checkpoint was saved" : `the previous checkpoint in ${dir} is intact`,
    );
  }
  try {
    await write(join(dir, CONFIG_FILE), files.config, hook(CONFIG_FILE));
  } catch (e) {
    await fail(
      e,
      CONFIG_FILE,
      first
        ? "no checkpoint was saved (its weights were removed)"
        : `the checkpoint in ${dir} is intact and loads at step ${run.state.step} (this save's weights beside the previous ${CONFIG_FILE})`,
    );
  }
}

/** Remove `dir` and its parents up to `top` (the first directory mkdir created) while they are empty. */
async function removeEmptyDirs(dir: string, top: string): Promise<void> {
  const { dirname, resolve } = node.path("saveRun");
  const stop = resolve(top);
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      await node.fsp("saveRun").rmdir(d); // fails, and stops the climb, if anything is inside
    } catch {
      return;
    }
    if (d === stop || dirname(d) === d) return;
  }
}

/**
 * Remove temp files of writes whose process is gone (`writeFileAtomic` names them
 * .<file>.<pid>.<hex>.tmp; a kill -9 mid-save leaves one). Files of a live process (a run
 * training into this directory now) are left alone; any error just leaves the file.
 */
const TEMP_FILE = /^\.(?:weights\.safetensors|config\.json)\.(\d+)\.[0-9a-f]+\.tmp$/;

async function removeDeadTempFiles(dir: string): Promise<void> {
  const { join } = node.path("loadRun");
  const fsp = node.fsp("loadRun");
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const m = TEMP_FILE.exec(name);
    if (m && !processAlive(Number(m[1]))) await fsp.unlink(join(dir, name)).catch(() => {});
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

function encodeRunFiles(run: SaveRunInput, where: string): RunFiles {
  const { flow, state } = run;
  const model = resolvedModel(flow, where);
  const { spec } = layoutOf(flow, state.layout.dtype);
  const same =
    state.layout.paths.length === spec.paths.length &&
    spec.paths.every(
      (p, i) => p === state.layout.paths[i] && fmt(spec.shapes[i]) === fmt(state.layout.shapes[i]),
    );
  if (!same)
    throw new Error(
      `${where}: the training state's parameters do not match the flow's (different model?)`,
    );
  const size = spec.size;
  for (const [name, v] of [
    ["params", state.params],
    ["optimizer.m", state.optimizer.m],
    ["optimizer.v", state.optimizer.v],
    ["best.params", state.best?.params],
  ] as const) {
    if (v !== undefined && v.length !== size)
      throw new Error(`${where}: state.${name} has ${v.length} values, the flow has ${size}`);
  }

  const dtype = SAFE_DTYPE[state.layout.dtype];
  const tensors = new Map<string, SafetensorsTensor>();
  const leaves = (prefix: string, vec: FloatVector) =>
    spec.paths.forEach((path, i) =>
      tensors.set(`${prefix}/${path}`, {
        dtype,
        shape: spec.shapes[i],
        data: vec.slice(spec.offsets[i], spec.offsets[i] + spec.sizes[i]),
      }),
    );
  const weightsOnly = run.weightsOnly === true;
  leaves("params", state.params);
  if (state.best && !weightsOnly) leaves("best", state.best.params);
  if (!weightsOnly) {
    tensors.set("optimizer/m", { dtype, shape: [size], data: state.optimizer.m });
    tensors.set("optimizer/v", { dtype, shape: [size], data: state.optimizer.v });
  }

  const trainingState = {
    step: state.step,
    layout: state.layout,
    optimizerStep: weightsOnly ? 0 : state.optimizer.step,
    best:
      state.best && !weightsOnly
        ? { step: state.best.step, validLoss: state.best.validLoss }
        : null,
    ...(weightsOnly ? { weightsOnly: true } : {}),
    history: state.history,
    skipped: state.skipped,
    badStreak: state.badStreak,
    evalsSinceBest: state.evalsSinceBest,
    lossSum: state.lossSum,
    lossCount: state.lossCount,
    seconds: state.seconds,
  };
  const metadata = {
    format: RUN_FORMAT,
    version: String(RUN_VERSION),
    model: JSON.stringify(model),
    training_state: stringifyNumbers(trainingState),
  };

  const weights = encodeSafetensors(tensors, metadata);
  const last = state.history[state.history.length - 1];
  const trainingOptions: Record<string, unknown> = {};
  for (const key of OPTION_KEYS) {
    const v = (run.training as Record<string, unknown> | undefined)?.[key];
    if (v !== undefined) trainingOptions[key] = v;
  }
  const config: RunConfig = {
    format: RUN_FORMAT,
    version: RUN_VERSION,
    weightsSha256: sha256Hex(weights),
    model,
    preprocessing: run.preprocessing ?? null,
    contextPreprocessing: run.contextPreprocessing ?? null,
    data: {
      name: run.data?.name ?? null,
      columns: run.data?.columns ?? null,
      dim: configDim(model),
      rows: run.data?.rows ?? null,
      contextDim: configContextDim(model),
      contextColumns: run.data?.contextColumns ?? null,
      ...(run.data?.perturb ? { perturb: run.data.perturb } : {}),
      ...(run.data?.source ? { source: run.data.source } : {}),
    },
    training: {
      options: trainingOptions as TrainingOptionsJSON,
      progress: {
        step: state.step,
        skipped: state.skipped,
        bestStep: state.best?.step ?? null,
        bestValidLoss: state.best?.validLoss ?? null,
        lastTrainLoss: last?.trainLoss ?? null,
        lastValidLoss: last?.validLoss ?? null,
        seconds: state.seconds,
      },
    },
  };

  return { config: stringifyNumbers(config) + "\n", weights };
}

// ---------------------------------------------------------------- loading

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isNum = (v: unknown): v is number => typeof v === "number";

async function readRequired(dir: string, file: string): Promise<Uint8Array> {
  const { join } = node.path("loadRun");
  const { readFile } = node.fsp("loadRun");
  try {
    return await readFile(join(dir, file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error(
        `loadRun: ${dir} has no ${file} (not a clayflow run directory, or its first save did not finish)`,
      );
    }
    throw new Error(`loadRun: cannot read ${join(dir, file)}: ${(e as Error).message}`);
  }
}

function checkVersion(where: string, version: unknown): void {
  if (!Number.isInteger(version) || (version as number) < 1) {
    throw new Error(`${where}: version must be a positive integer, got ${jsonExcerpt(version)}`);
  }
  if ((version as number) > RUN_VERSION) {
    throw new Error(
      `${where}: version ${version} is newer than this clayflow can read (up to ${RUN_VERSION}); upgrade clayflow to load this run`,
    );
  }
}

function parseConfig(path: string, text: string | Uint8Array): RunConfig {
  let raw: unknown;
  try {
    raw = parseNumbers(typeof text === "string" ? text : new TextDecoder().decode(text));
  } catch (e) {
    throw new Error(
      `${path}: not valid JSON, the file is corrupt or truncated (${oneLine((e as Error).message, 100)})`,
    );
  }
  if (!isObject(raw)) throw new Error(`${path}: expected a JSON object`);
  if (raw.format !== RUN_FORMAT)
    throw new Error(`${path}: format is ${jsonExcerpt(raw.format)}, expected "${RUN_FORMAT}"`);
  checkVersion(path, raw.version);
  let model: ResolvedFlowConfig;
  try {
    model = resolveFlowConfig(raw.model as FlowConfig);
  } catch (e) {
    throw new Error(`${path}: model: ${(e as Error).message}`);
  }
  // Runs written before contextPreprocessing existed have no such field: null.
  const standardizer = (
    key: "preprocessing" | "contextPreprocessing",
    width: number,
  ): Standardizer | null => {
    if (raw[key] === null || raw[key] === undefined) return null;
    let s: Standardizer;
    try {
      s = standardizerFromJSON(raw[key]);
    } catch (e) {
      throw new Error(`${path}: ${key}: ${(e as Error).message}`);
    }
    if (s.mean.length !== width)
      throw new Error(`${path}: ${key} has ${s.mean.length} columns, the model takes ${width}`);
    return s;
  };
  const preprocessing = standardizer("preprocessing", configDim(model));
  const contextPreprocessing = standardizer("contextPreprocessing", configContextDim(model));
  const data = isObject(raw.data) ? raw.data : {};
  const names = (v: unknown, width: number) =>
    Array.isArray(v) && v.length === width && v.every((c) => typeof c === "string")
      ? (v as string[])
      : null;
  if (!isObject(raw.training))
    throw new Error(
      `${path}: training must be an object { options, progress }, got ${jsonExcerpt(raw.training)}`,
    );
  const training = {
    options: parseTrainingOptions(path, raw.training.options),
    progress: parseTrainingProgress(path, raw.training.progress),
  };
  const sha = raw.weightsSha256;
  if (sha !== undefined && !(typeof sha === "string" && /^[0-9a-f]{64}$/.test(sha))) {
    throw new Error(
      `${path}: weightsSha256 must be 64 lowercase hex digits (the SHA-256 of ${WEIGHTS_FILE}), got ${jsonExcerpt(sha)}`,
    );
  }
  return {
    format: RUN_FORMAT,
    version: raw.version as number,
    weightsSha256: sha ?? null,
    model,
    preprocessing,
    contextPreprocessing,
    data: {
      name: typeof data.name === "string" ? data.name : null,
      columns: names(data.columns, configDim(model)),
      dim: configDim(model),
      rows: isCount(data.rows) ? data.rows : null,
      contextDim: configContextDim(model),
      contextColumns: names(data.contextColumns, configContextDim(model)),
      ...(typeof data.perturb === "number" && data.perturb > 0 && data.perturb < 1
        ? { perturb: data.perturb }
        : {}),
      ...(parseSource(data.source) ? { source: parseSource(data.source)! } : {}),
    },
    training,
  };
}

/** The training state as stored in the metadata: TrainState without its vectors. */
type SavedTrainingState = Omit<TrainState, "params" | "optimizer" | "best"> & {
  optimizerStep: number;
  best: { step: number; validLoss: number } | null;
  /** Present and true in a weights-only run (no optimizer or best tensors). */
  weightsOnly?: boolean;
};

function parseTrainingState(where: string, text: string | undefined): SavedTrainingState {
  if (text === undefined)
    throw new Error(
      `${where}: __metadata__ has no training_state (not written by clayflow's saveRun?)`,
    );
  let raw: unknown;
  try {
    raw = parseNumbers(text);
  } catch (e) {
    throw new Error(
      `${where}: __metadata__.training_state is not valid JSON (${oneLine((e as Error).message, 100)})`,
    );
  }
  const bad = (field: string, want: string): never => {
    throw new Error(`${where}: __metadata__.training_state.${field} must be ${want}`);
  };
  if (!isObject(raw)) bad("", "an object");
  const r = raw as Record<string, unknown>;
  for (const key of [
    "step",
    "optimizerStep",
    "skipped",
    "badStreak",
    "evalsSinceBest",
    "lossCount",
  ]) {
    if (!isCount(r[key])) bad(key, "a non-negative integer");
  }
  for (const key of ["lossSum", "seconds"]) if (!isNum(r[key])) bad(key, "a number");
  const layout = r.layout as Record<string, unknown>;
  if (
    !isObject(layout) ||
    (layout.dtype !== "float32" && layout.dtype !== "float64") ||
    !Array.isArray(layout.paths) ||
    !layout.paths.every((p) => typeof p === "string") ||
    !Array.isArray(layout.shapes) ||
    layout.shapes.length !== layout.paths.length ||
    !layout.shapes.every((s) => Array.isArray(s) && s.every(isCount))
  ) {
    bad(
      "layout",
      '{ paths: string[], shapes: number[][] (one per path), dtype: "float32" | "float64" }',
    );
  }
  if (r.best !== null && !(isObject(r.best) && isCount(r.best.step) && isNum(r.best.validLoss))) {
    bad("best", "null or { step, validLoss }");
  }
  if (r.weightsOnly !== undefined && r.weightsOnly !== true) bad("weightsOnly", "true or absent");
  if (r.weightsOnly === true && r.best !== null) bad("best", "null in a weights-only run");
  const history = r.history;
  if (
    !Array.isArray(history) ||
    !history.every(
      (h) =>
        isObject(h) &&
        isCount(h.step) &&
        isNum(h.seconds) &&
        (h.trainLoss === null || isNum(h.trainLoss)) &&
        (h.validLoss === null || isNum(h.validLoss)),
    )
  ) {
    bad("history", "a list of { step, trainLoss, validLoss, seconds }");
  }
  return r as unknown as SavedTrainingState;
}

/**
 * The weights' bytes against config.json's checksum. A mismatch is an error unless config.json
 * is from an earlier save than the weights (a save interrupted between its two renames, whose
 * new weights carry a later training state): then the weights load, as they did before
 * checksums, and the next save writes a matching pair.
 */
function checkChecksum(
  config: RunConfig,
  saved: SavedTrainingState,
  bytes: Uint8Array,
  configPath: string,
  weightsPath: string,
): void {
  if (config.weightsSha256 === null) return; // written before checksums were kept
  const actual = sha256Hex(bytes);
  if (actual === config.weightsSha256) return;
  const p = config.training.progress;
  const interrupted = saved.step >= p.step && saved.seconds > p.seconds;
  if (interrupted) return;
  throw new Error(
    `${weightsPath}: its SHA-256 (${actual.slice(0, 12)}…) is not the one ${configPath} records (${config.weightsSha256.slice(0, 12)}…): ` +
      "the checkpoint is corrupt (the file changed after it was saved); restore both files from a copy, e.g. a kept checkpoint in checkpoints/, or retrain",
  );
}

/** Every stored value must be finite: training skips non-finite steps, so a NaN here is damage. */
function checkFinite(weightsPath: string, name: string, data: FloatVector): void {
  let bad = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      bad++;
      if (first < 0) first = i;
    }
  }
  if (bad === 0) return;
  throw new Error(
    `${weightsPath}: tensor ${name} holds ${bad} non-finite value${bad > 1 ? "s" : ""} (${data[first]} at index ${first}): ` +
      "the checkpoint is corrupt (training never saves NaN or infinite weights); restore it from a copy, e.g. a kept checkpoint in checkpoints/, or retrain",
  );
}

/** Load and validate a run directory (see the module comment). */
export async function loadRun(dir: string): Promise<LoadedRun> {
  const { join } = node.path("loadRun");
  const { stat } = node.fsp("loadRun");
  let info;
  try {
    info = await stat(dir);
  } catch {
    throw new Error(`loadRun: run directory ${dir} does not exist`);
  }
  if (!info.isDirectory()) throw new Error(`loadRun: ${dir} is not a directory`);
  await removeDeadTempFiles(dir);
  const files = {
    config: await readRequired(dir, CONFIG_FILE),
    weights: await readRequired(dir, WEIGHTS_FILE),
  };
  return decodeRunFiles(files, join(dir, CONFIG_FILE), join(dir, WEIGHTS_FILE));
}

/**
 * A run from its two files in memory (what `encodeRun` returns, or the bytes of a run
 * directory's files), with every check of `loadRun`; errors name the files as config.json
 * and weights.safetensors.
 */
export function decodeRun(files: { config: string | Uint8Array; weights: Uint8Array }): LoadedRun {
  return decodeRunFiles(files, CONFIG_FILE, WEIGHTS_FILE);
}

function decodeRunFiles(
  files: { config: string | Uint8Array; weights: Uint8Array },
  configPath: string,
  weightsPath: string,
): LoadedRun {
  const config = parseConfig(configPath, files.config);
  const bytes = files.weights;

  let decoded;
  try {
    decoded = decodeSafetensors(bytes);
  } catch (e) {
    throw new Error(`${weightsPath}: corrupt or truncated file (${(e as Error).message})`);
  }
  const { tensors, metadata } = decoded;
  if (metadata.format !== RUN_FORMAT) {
    throw new Error(
      `${weightsPath}: __metadata__.format is ${jsonExcerpt(metadata.format)}, expected "${RUN_FORMAT}" (not written by clayflow's saveRun?)`,
    );
  }
  checkVersion(`${weightsPath}: __metadata__`, Number(metadata.version));
  let savedModel: unknown;
  try {
    savedModel = resolveFlowConfig(JSON.parse(metadata.model ?? "null"));
  } catch (e) {
    throw new Error(
      `${weightsPath}: __metadata__.model is not a valid model config (${oneLine((e as Error).message, 120)})`,
    );
  }
  if (JSON.stringify(savedModel) !== JSON.stringify(config.model)) {
    throw new Error(
      `${weightsPath} was written for a different model than ${configPath} describes; the two files do not belong together`,
    );
  }
  const saved = parseTrainingState(weightsPath, metadata.training_state);

  // The model's own layout, and the file's tensors checked against it.
  const flow = buildFlow(config.model);
  const { spec, unravel } = layoutOf(flow, saved.layout.dtype);
  const sameLayout =
    saved.layout.paths.length === spec.paths.length &&
    spec.paths.every(
      (p, i) => p === saved.layout.paths[i] && fmt(spec.shapes[i]) === fmt(saved.layout.shapes[i]),
    );
  const dtype = SAFE_DTYPE[saved.layout.dtype];
  const expected = new Map<string, number[]>();
  const prefixes = ["params", ...(saved.best ? ["best"] : [])];
  for (const prefix of prefixes)
    spec.paths.forEach((p, i) => expected.set(`${prefix}/${p}`, spec.shapes[i]));
  const weightsOnly = saved.weightsOnly === true;
  if (!weightsOnly) {
    expected.set("optimizer/m", [spec.size]);
    expected.set("optimizer/v", [spec.size]);
  }
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t)
      throw new Error(
        `${weightsPath}: ${name} is missing; the model config needs it with shape ${fmt(shape)}`,
      );
    if (fmt(t.shape) !== fmt(shape))
      throw new Error(
        `${weightsPath}: ${name} has shape ${fmt(t.shape)}, the model config needs ${fmt(shape)}`,
      );
    if (t.dtype !== dtype)
      throw new Error(
        `${weightsPath}: ${name} has dtype ${t.dtype}, expected ${dtype} (the run's ${saved.layout.dtype})`,
      );
  }
  for (const name of tensors.keys()) {
    if (!expected.has(name)) {
      throw new Error(
        `${weightsPath}: unexpected tensor ${jsonExcerpt(name)}, which is not part of this model's run`,
      );
    }
  }
  if (!sameLayout) {
    throw new Error(
      `${weightsPath}: __metadata__.training_state.layout does not match the model's parameter list`,
    );
  }
  for (const name of expected.keys())
    checkFinite(weightsPath, name, tensors.get(name)!.data as FloatVector);
  // Last, so that a file edited by hand gets the specific message above rather than this one.
  checkChecksum(config, saved, bytes, configPath, weightsPath);

  // Everything checked: assemble the flat vectors, then the device arrays.
  const vector = (prefix: string): FloatVector => {
    const out =
      saved.layout.dtype === "float64" ? new Float64Array(spec.size) : new Float32Array(spec.size);
    spec.paths.forEach((p, i) =>
      out.set(tensors.get(`${prefix}/${p}`)!.data as FloatVector, spec.offsets[i]),
    );
    return out;
  };
  const state: TrainState = {
    step: saved.step,
    layout: saved.layout,
    params: vector("params"),
    optimizer: weightsOnly
      ? {
          step: 0,
          m: vectorOfZeros(saved.layout.dtype, spec.size),
          v: vectorOfZeros(saved.layout.dtype, spec.size),
        }
      : {
          step: saved.optimizerStep,
          m: tensors.get("optimizer/m")!.data as FloatVector,
          v: tensors.get("optimizer/v")!.data as FloatVector,
        },
    best: saved.best
      ? { params: vector("best"), validLoss: saved.best.validLoss, step: saved.best.step }
      : null,
    history: saved.history,
    skipped: saved.skipped,
    badStreak: saved.badStreak,
    evalsSinceBest: saved.evalsSinceBest,
    lossSum: saved.lossSum,
    lossCount: saved.lossCount,
    seconds: saved.seconds,
  };
  const device = (v: FloatVector): FlowParams =>
    unravel(np.array(v, { shape: [v.length], dtype: spec.dtype })) as FlowParams;
  return {
    config,
    flow,
    params: device(state.params),
    bestParams: state.best ? device(state.best.params) : null,
    state,
    preprocessing: config.preprocessing,
    contextPreprocessing: config.contextPreprocessing,
    weightsOnly,
  };
}

const vectorOfZeros = (dtype: "float32" | "float64", n: number): FloatVector =>
  dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
