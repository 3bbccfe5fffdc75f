/**
 * Training of a `Flow` on rows of vector data:
 *
 *   const result = await fit(flow, params, { x, rows }, { steps: 2000, optimizer: { kind: "adam", lr: 1e-3 } });
 *
 * minimises the objective (train/objective.ts: by default the mean negative log-likelihood
 * -mean(log p(x_i | c_i)), or flow matching for a flow-matching model) over mini-batches with
 * one jitted step per iteration (`makeTrainStep`: loss, gradient, clipping, Adam/AdamW, and a
 * guard that skips non-finite steps), on the parameters as ONE flat vector (`flatten`).
 *
 * Batches. Each epoch shuffles the training rows with a generator seeded by (seed, epoch) only,
 * and every step takes the next FULL batch of `batchSize` rows (the remainder of an epoch is
 * dropped), so the compiled step sees one shape and a resumed run draws exactly the batches
 * the uninterrupted run would have.
 *
 * Batch norm. Flows whose bijector has `updateState` get their running statistics refreshed
 * from each (finite) training batch by a second jitted function, after the step.
 *
 * Validation. Every `evalEvery` steps (and at the last step) the mean NLL of the validation
 * rows is computed in fixed-size chunks (the last chunk padded, the padding ignored). The
 * parameters with the lowest validation NLL are kept (`bestParams`); `patience` evaluations
 * without an improvement of more than `minDelta` stop the run early.
 *
 * Non-finite steps (a NaN in the batch, an overflow) change nothing and are counted
 * (`skipped`); `maxBadSteps` of them IN A ROW stop the run with an error that says what to try.
 *
 * Everything needed to continue is in `TrainState`, plain JS (typed arrays and numbers):
 * `resume` with it continues the run exactly: the same computations run in the same order, so
 * the parameters match those of an uninterrupted run.
 *
 * Ownership: `fit` consumes `params` (as every jax-js function consumes its arrays) and
 * returns fresh device trees in the result.
 */
import { blockUntilReady, jit, numpy as np, tree, type Array, type DType } from "@jax-js/jax";
import type { Flow, FlowParams } from "../distributions/flow.js";
import type { Params } from "../core/types.js";
import { makeRng } from "../core/prng.js";
import { splitRows, takeRows } from "../data/split.js";
import { flatten, type FlatSpec, type Flattened } from "./flat-params.js";
import { makeTrainStep, type TrainStepConfig, type TrainStepResult } from "./train-step.js";
import type { OptState } from "./optimizer.js";
import { defaultObjective, type TrainObjective } from "./objective.js";
import { yieldToEventLoop } from "../core/event-loop.js";
import { jsonExcerpt } from "../core/excerpt.js";
import { maybeJit, readyForEager } from "../core/maybe-jit.js";

/** Rows of vector data: `x` is [rows, dim] row-major; `cond` is [rows, contextDim] for a conditional flow. */
export interface VectorData {
  x: Float32Array | Float64Array;
  rows: number;
  cond?: Float32Array | Float64Array;
}

/** What `fit` reports to `onProgress` after each step. */
export interface ProgressInfo {
  /** Steps done so far (global, counting a resumed run's earlier steps). */
  step: number;
  totalSteps: number;
  /** This step's training loss (the objective on the batch, e.g. its mean NLL; NaN or Infinity for a skipped step). */
  loss: number;
  /** Validation NLL, on the steps where it was evaluated. */
  validLoss?: number;
  /**
   * Steps per second in this call of `fit`, from the end of its first step (which compiles the
   * training step); NaN on that first step.
   */
  stepsPerSecond: number;
  /** Seconds left at that speed; NaN while it is unknown. */
  etaSeconds: number;
  /** Non-finite (skipped) steps so far. */
  skipped: number;
}

/** One evaluation point of the history. */
export interface HistoryEntry {
  step: number;
  /** Mean training loss of the finite steps since the previous entry (null if there were none). */
  trainLoss: number | null;
  /** Validation NLL (null without validation data). */
  validLoss: number | null;
  /** Training seconds so far (summed over resumed runs). */
  seconds: number;
}

/** A flat host vector of parameters or optimizer state. */
export type FloatVector = Float32Array | Float64Array;

/**
 * Everything a run needs to continue, as plain JS (no device arrays). The flat vectors follow
 * `layout` (the leaf order of `flatten`).
 */
export interface TrainState {
  /** Updates attempted so far (finite and skipped). */
  step: number;
  /** Layout of the flat vectors: leaf paths and shapes in vector order, and the float dtype. */
  layout: { paths: string[]; shapes: number[][]; dtype: "float32" | "float64" };
  params: FloatVector;
  optimizer: { step: number; m: FloatVector; v: FloatVector };
  /** Parameters with the lowest validation NLL so far, or null before the first evaluation / without validation. */
  best: { params: FloatVector; validLoss: number; step: number } | null;
  history: HistoryEntry[];
  skipped: number;
  /** Non-finite steps in a row, ending at `step`. */
  badStreak: number;
  /** Evaluations since the best one (early stopping counter). */
  evalsSinceBest: number;
  /** Sum and count of the finite training losses since the last history entry. */
  lossSum: number;
  lossCount: number;
  /** Training seconds so far. */
  seconds: number;
}

/** Options of `fit`. */
export interface FitOptions {
  /** Total number of steps (global: a resumed run continues up to it). Default 1000 unless `epochs` is given. */
  steps?: number;
  /** Alternatively, passes over the training rows (each `floor(rows / batchSize)` steps). */
  epochs?: number;
  /** Rows per step. Default 256 (at most the number of training rows). */
  batchSize?: number;
  /** Optimizer, learning rate (or schedule) and clipping. Default Adam, lr 1e-3. */
  optimizer?: TrainStepConfig;
  /** Seed of the batch order and of the `validFraction` split. Default 0. */
  seed?: number;
  /** Validation rows. */
  valid?: VectorData;
  /** Without `valid`: this fraction of the training rows (a seeded split) is held out for validation. */
  validFraction?: number;
  /** Steps between history entries / validation evaluations. Default: one epoch. */
  evalEvery?: number;
  /** Rows per validation chunk. Default min(1024, validation rows). */
  evalBatchSize?: number;
  /** Stop after this many evaluations without improvement. Default: never. */
  patience?: number;
  /** An improvement must lower the validation NLL by more than this. Default 0. */
  minDelta?: number;
  /** Stop with an error after this many non-finite steps in a row. Default 20. */
  maxBadSteps?: number;
  /** Called after every step. */
  onProgress?: (info: ProgressInfo) => void;
  /** Call `onCheckpoint` every this many steps (and when the run ends). */
  checkpointEvery?: number;
  /** Receives the state to save every `checkpointEvery` steps and at the end; awaited. */
  onCheckpoint?: (state: TrainState) => void | Promise<void>;
  /**
   * Called on every training batch (host memory, row-major) before it goes to the
   * engine, e.g. to add dequantisation noise. It must depend only on the batch and
   * `step` (the global step) so that a resumed run sees the same batches.
   */
  augment?: (batch: FloatVector, step: number) => void;
  /**
   * What to minimise; default `defaultObjective(flow, seed)`: maximum likelihood, or flow
   * matching for a flow-matching model (see train/objective.ts).
   */
  objective?: TrainObjective;
  /** Continue from a saved state; `params` then only gives the tree structure. */
  resume?: TrainState;
  /** Stop cleanly after the current step when aborted. */
  signal?: AbortSignal;
}

/** What `fit` returns: final and best parameters, the history and the state to resume from. */
export interface FitResult<P extends Params = Params, Q extends Params = Params> {
  /** Final parameters. */
  params: FlowParams<P, Q>;
  /** Parameters with the lowest validation NLL (the final ones without validation data). */
  bestParams: FlowParams<P, Q>;
  bestValidLoss: number | null;
  state: TrainState;
  history: HistoryEntry[];
  skipped: number;
  stopReason: "completed" | "earlyStopping" | "aborted";
}

const DEFAULT_OPTIMIZER: TrainStepConfig = { kind: "adam", lr: 1e-3 };

const dtypeName = (d: DType): "float32" | "float64" => (d === np.float64 ? "float64" : "float32");
const newVector = (dtype: DType, n: number): FloatVector =>
  dtype === np.float64 ? new Float64Array(n) : new Float32Array(n);

/** A 32-bit seed for the shuffle of `epoch` that depends only on (seed, epoch). */
export function epochSeed(seed: number, epoch: number): number {
  let h = Math.imul((Math.trunc(seed) >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ Math.imul(epoch + 1, 0xc2b2ae35), 0x27d4eb2f);
  return (h ^ (h >>> 16)) >>> 0;
}

function checkData(where: string, data: VectorData, dim: number, contextDim: number): void {
  if (!data || typeof data !== "object") throw new Error(`${where}: expected { x, rows, cond? }`);
  const { x, rows, cond } = data;
  if (!Number.isInteger(rows) || rows < 0)
    throw new Error(`${where}: rows must be a non-negative integer, got ${rows}`);
  if (!(x instanceof Float32Array || x instanceof Float64Array))
    throw new Error(`${where}: x must be a Float32Array or Float64Array`);
  if (x.length !== rows * dim) {
    throw new Error(
      `${where}: x has ${x.length} values, expected rows * dim = ${rows} * ${dim} = ${rows * dim}`,
    );
  }
  if (contextDim > 0) {
    if (!(cond instanceof Float32Array || cond instanceof Float64Array)) {
      throw new Error(
        `${where}: this flow is conditional (contextDim ${contextDim}): pass cond, [rows, ${contextDim}] row-major`,
      );
    }
    if (cond.length !== rows * contextDim) {
      throw new Error(
        `${where}: cond has ${cond.length} values, expected rows * contextDim = ${rows} * ${contextDim}`,
      );
    }
  } else if (cond !== undefined) {
    throw new Error(`${where}: this flow is unconditional (contextDim 0): do not pass cond`);
  }
}

function positiveInt(name: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1)
    throw new Error(`fit: ${name} must be a positive integer, got ${jsonExcerpt(v)}`);
  return v as number;
}

/** Rows `idx` of row-major `src` ([*, cols]) into a device array [idx.length, cols] of `dtype`. */
function gather(
  src: FloatVector,
  cols: number,
  idx: ArrayLike<number>,
  dtype: DType,
  count = idx.length,
  augment?: (batch: FloatVector) => void,
): Array {
  const buf = newVector(dtype, idx.length * cols);
  for (let k = 0; k < count; k++) {
    const r = idx[k];
    for (let j = 0; j < cols; j++) buf[k * cols + j] = src[r * cols + j];
  }
  augment?.(buf);
  return np.array(buf, { shape: [idx.length, cols], dtype });
}

/** Check that a saved state's layout matches the parameters' (same leaves, shapes, dtype). */
function checkLayout(state: TrainState, spec: FlatSpec): void {
  const a = state.layout;
  const same =
    a &&
    a.dtype === dtypeName(spec.dtype) &&
    a.paths.length === spec.paths.length &&
    a.paths.every(
      (p, i) => p === spec.paths[i] && a.shapes[i].join(",") === spec.shapes[i].join(","),
    );
  if (!same)
    throw new Error(
      "fit: the resume state was saved for a different model (parameter names, shapes or dtype differ)",
    );
  for (const [name, v] of [
    ["params", state.params],
    ["optimizer.m", state.optimizer.m],
    ["optimizer.v", state.optimizer.v],
  ] as const) {
    if (v.length !== spec.size)
      throw new Error(
        `fit: the resume state's ${name} has ${v.length} values, the model has ${spec.size}`,
      );
  }
}

/** Device arrays from a state: the flat params, optimizer state and best params (if any). */
export function stateToDevice(state: TrainState): {
  params: Array;
  optState: OptState;
  best: Array | null;
} {
  const dtype = state.layout.dtype === "float64" ? np.float64 : np.float32;
  const vec = (v: FloatVector) => np.array(v, { shape: [v.length], dtype });
  return {
    params: vec(state.params),
    optState: {
      step: np.array(state.optimizer.step, { dtype: np.int32 }),
      m: vec(state.optimizer.m),
      v: vec(state.optimizer.v),
    },
    best: state.best ? vec(state.best.params) : null,
  };
}

/** Copy of `v` as the typed array of the layout's dtype. */
async function readVector(a: Array, dtype: DType): Promise<FloatVector> {
  const data = await a.data();
  const out = newVector(dtype, data.length);
  out.set(data as ArrayLike<number>);
  return out;
}

/**
 * Read the device side of a run into a `TrainState` (consumes the arrays): the flat params,
 * the optimizer state, and the best params; `rest` supplies the host-side counters.
 */
export async function stateFromDevice(
  spec: FlatSpec,
  params: Array,
  optState: OptState,
  best: { params: Array; validLoss: number; step: number } | null,
  rest: Omit<TrainState, "layout" | "params" | "optimizer" | "best">,
): Promise<TrainState> {
  const dtype = spec.dtype;
  const optStep = (await optState.step.data())[0] as number;
  return {
    ...rest,
    history: rest.history.map((h) => ({ ...h })),
    layout: {
      paths: [...spec.paths],
      shapes: spec.shapes.map((s) => [...s]),
      dtype: dtypeName(dtype),
    },
    params: await readVector(params, dtype),
    optimizer: {
      step: optStep,
      m: await readVector(optState.m, dtype),
      v: await readVector(optState.v, dtype),
    },
    best: best
      ? { params: await readVector(best.params, dtype), validLoss: best.validLoss, step: best.step }
      : null,
  };
}

/** A JSON-able copy of a state (typed arrays become number lists; exact for float32 and float64). */
export function trainStateToJSON(state: TrainState): unknown {
  const list = (v: FloatVector) => globalThis.Array.from(v);
  return {
    ...state,
    params: list(state.params),
    optimizer: {
      step: state.optimizer.step,
      m: list(state.optimizer.m),
      v: list(state.optimizer.v),
    },
    best: state.best ? { ...state.best, params: list(state.best.params) } : null,
  };
}

/** The inverse of `trainStateToJSON` (checks the vector lengths against the layout). */
export function trainStateFromJSON(json: any): TrainState {
  const dtype = json?.layout?.dtype;
  if (dtype !== "float32" && dtype !== "float64")
    throw new Error("trainStateFromJSON: layout.dtype must be float32 or float64");
  const size = (json.layout.shapes as number[][]).reduce(
    (a, s) => a + s.reduce((b, d) => b * d, 1),
    0,
  );
  const vec = (name: string, v: unknown): FloatVector => {
    if (!globalThis.Array.isArray(v) || v.length !== size)
      throw new Error(`trainStateFromJSON: ${name} must be a list of ${size} numbers`);
    return dtype === "float64" ? Float64Array.from(v) : Float32Array.from(v);
  };
  return {
    ...json,
    params: vec("params", json.params),
    optimizer: {
      step: json.optimizer.step,
      m: vec("optimizer.m", json.optimizer.m),
      v: vec("optimizer.v", json.optimizer.v),
    },
    best: json.best ? { ...json.best, params: vec("best.params", json.best.params) } : null,
  };
}

/**
 * Mean negative log-likelihood (nats per row) of `data` under the flow, in chunks of
 * `batchSize` rows (the last one padded; padding ignored). Consumes `params`.
 */
export async function evaluateNLL(
  flow: Flow<any, any>,
  params: FlowParams,
  data: VectorData,
  options: { batchSize?: number } = {},
): Promise<number> {
  const flat = flatten(params);
  const evaluator = makeEvaluator(flow, flat, data, options.batchSize);
  try {
    return await evaluator.nll(flat.vector.ref);
  } finally {
    evaluator.dispose();
    flat.vector.dispose();
  }
}

function makeEvaluator(
  flow: Flow<any, any>,
  flat: Pick<Flattened, "unravel" | "spec">,
  data: VectorData,
  batchSize?: number,
) {
  const dim = flow.eventShape.reduce((a, d) => a * d, 1);
  const contextDim = flow.contextDim;
  checkData("evaluateNLL: data", data, dim, contextDim);
  if (data.rows === 0) throw new Error("evaluateNLL: no rows to evaluate");
  const chunk =
    batchSize === undefined ? Math.min(1024, data.rows) : positiveInt("evalBatchSize", batchSize);
  const dtype = flat.spec.dtype;
  const fn = maybeJit(
    (v: Array, x: Array, ...cond: Array[]) =>
      flow.logProb(flat.unravel(v) as FlowParams, x, ...cond),
    flow.jittable,
  );
  return {
    /** Mean NLL of the rows; consumes `v`. */
    async nll(v: Array): Promise<number> {
      let sum = 0;
      try {
        for (let start = 0; start < data.rows; start += chunk) {
          const count = Math.min(chunk, data.rows - start);
          // Pad with copies of the chunk's first row: finite inputs, results ignored.
          const idx = Int32Array.from({ length: chunk }, (_, k) => start + (k < count ? k : 0));
          const x = gather(data.x, dim, idx, dtype).reshape([chunk, ...flow.eventShape]);
          const cond = data.cond ? [gather(data.cond, contextDim, idx, dtype)] : [];
          await readyForEager(flow.jittable, v, x, cond);
          const lp = (await fn(v.ref, x, ...cond).data()) as ArrayLike<number>;
          for (let k = 0; k < count; k++) sum += lp[k];
        }
      } finally {
        v.dispose();
      }
      return -sum / data.rows;
    },
    dispose: () => fn.dispose(),
  };
}

/** Train `flow` by maximum likelihood on `data`; see the module comment. Consumes `params`. */
export async function fit<P extends Params, Q extends Params>(
  flow: Flow<P, Q>,
  params: FlowParams<P, Q>,
  data: VectorData,
  options: FitOptions = {},
): Promise<FitResult<P, Q>> {
  const dim = flow.eventShape.reduce((a, d) => a * d, 1);
  const contextDim = flow.contextDim;
  const flat = flatten(params);
  const { spec, unravel } = flat;
  const dtype = spec.dtype;
  // The live device state; released (whatever happens) in `finally`.
  let p: Array = flat.vector;
  let s: OptState | null = null;
  let best: { params: Array; validLoss: number; step: number } | null = null;
  const disposers: (() => void)[] = [];
  const release = async () => {
    const live = [p, ...(s ? [s.step, s.m, s.v] : []), ...(best ? [best.params] : [])].filter(
      (a) => a.refCount > 0,
    );
    // Realise first: disposing a not-yet-computed result (e.g. after an error) leaves its
    // inputs' buffers alive in jax-js 0.1.25.
    await blockUntilReady(live).catch(() => {});
    live.forEach((a) => a.dispose());
    disposers.forEach((d) => d());
  };

  try {
    // ---- options and data ----
    checkData("fit: data", data, dim, contextDim);
    const seed = options.seed ?? 0;
    if (!Number.isFinite(seed)) throw new Error(`fit: seed must be a finite number, got ${seed}`);
    const optimizer = options.optimizer ?? DEFAULT_OPTIMIZER;
    const maxBadSteps = positiveInt("maxBadSteps", options.maxBadSteps ?? 20);
    const minDelta = options.minDelta ?? 0;
    if (!(minDelta >= 0)) throw new Error(`fit: minDelta must be >= 0, got ${minDelta}`);
    const patience =
      options.patience === undefined ? Infinity : positiveInt("patience", options.patience);
    const checkpointEvery =
      options.checkpointEvery === undefined
        ? 0
        : positiveInt("checkpointEvery", options.checkpointEvery);

    let trainIdx: Int32Array = Int32Array.from({ length: data.rows }, (_, i) => i);
    let valid: VectorData | null = null;
    if (options.valid) {
      checkData("fit: valid", options.valid, dim, contextDim);
      if (options.valid.rows > 0) valid = options.valid;
    } else if (options.validFraction) {
      const split = splitRows(data.rows, { valid: options.validFraction, seed });
      trainIdx = split.train;
      valid = {
        x: takeRows(data.x, dim, split.valid),
        rows: split.valid.length,
        cond: data.cond ? takeRows(data.cond, contextDim, split.valid) : undefined,
      };
      if (valid.rows === 0) valid = null;
    }
    const nTrain = trainIdx.length;
    if (nTrain === 0) throw new Error("fit: no training rows");
    const batchSize = Math.min(positiveInt("batchSize", options.batchSize ?? 256), nTrain);
    const stepsPerEpoch = Math.floor(nTrain / batchSize);
    const totalSteps =
      options.steps !== undefined
        ? positiveInt("steps", options.steps)
        : options.epochs !== undefined
          ? positiveInt("epochs", options.epochs) * stepsPerEpoch
          : 1000;
    const evalEvery = positiveInt(
      "evalEvery",
      options.evalEvery ?? Math.min(stepsPerEpoch, totalSteps),
    );

    // ---- state ----
    let step = 0;
    let history: HistoryEntry[] = [];
    let skipped = 0;
    let badStreak = 0;
    let evalsSinceBest = 0;
    let lossSum = 0;
    let lossCount = 0;
    let secondsBefore = 0;
    if (options.resume) {
      const r = options.resume;
      checkLayout(r, spec);
      const dev = stateToDevice(r);
      p.dispose();
      p = dev.params;
      s = dev.optState;
      if (dev.best) best = { params: dev.best, validLoss: r.best!.validLoss, step: r.best!.step };
      ({ step, skipped, badStreak, evalsSinceBest, lossSum, lossCount } = r);
      history = r.history.map((h) => ({ ...h }));
      secondsBefore = r.seconds;
    } else {
      s = {
        step: np.array(0, { dtype: np.int32 }),
        m: np.zeros([spec.size], { dtype }),
        v: np.zeros([spec.size], { dtype }),
      };
    }

    // ---- compiled functions ----
    // The batch is (x) or (x, cond): never pass `undefined` to a jitted function.
    // The batch is (x, ...extras, cond?): the objective's host draws (noise, times) after x.
    const objective = options.objective ?? defaultObjective(flow, seed);
    let extraCount = -1;
    const trainStep = makeTrainStep(
      (t: any, x: Array, ...rest: Array[]) =>
        objective.loss(t, x, rest.slice(0, extraCount), rest[extraCount]),
      optimizer,
      flat,
    );
    disposers.push(() => trainStep.dispose());
    // Running statistics (batch norm): refreshed from the batch when the step was finite.
    const refresh = flow.bijector.updateState
      ? jit((v: Array, ok: Array, x: Array, ...cond: Array[]) => {
          const updated = flatten(
            flow.updateState(unravel(v.ref) as FlowParams<P, Q>, x, ...cond) as Params,
          ).vector;
          const keep = np.logicalAnd(ok, np.all(np.isfinite(updated.ref)));
          return np.where(keep, updated, v);
        })
      : null;
    if (refresh) disposers.push(() => refresh.dispose());
    const evaluator = valid ? makeEvaluator(flow, flat, valid, options.evalBatchSize) : null;
    if (evaluator) disposers.push(() => evaluator.dispose());

    const snapshot = () =>
      stateFromDevice(
        spec,
        p.ref,
        tree.ref(s!) as OptState,
        best ? { params: best.params.ref, validLoss: best.validLoss, step: best.step } : null,
        {
          step,
          history,
          skipped,
          badStreak,
          evalsSinceBest,
          lossSum,
          lossCount,
          seconds: secondsBefore + (performance.now() - t0) / 1000,
        },
      );

    // ---- the loop ----
    const t0 = performance.now();
    const startStep = step;
    // The first step of a call compiles the training step (seconds to minutes): speed and ETA
    // count only the steps after it, or a 30-second run's first line would predict an hour.
    let warmAt: number | null = null;
    let epoch = -1;
    let order: Int32Array = trainIdx;
    let stopReason: FitResult["stopReason"] = "completed";
    let lastCheckpoint = -1;
    const lr =
      typeof optimizer.lr === "number" ? String(optimizer.lr) : JSON.stringify(optimizer.lr);

    while (step < totalSteps) {
      if (options.signal?.aborted) {
        stopReason = "aborted";
        break;
      }
      const e = Math.floor(step / stepsPerEpoch);
      if (e !== epoch) {
        epoch = e;
        order = makeRng(epochSeed(seed, epoch)).shuffle(trainIdx.slice());
      }
      const at = (step % stepsPerEpoch) * batchSize;
      const idx = order.subarray(at, at + batchSize);
      const stepNow = step;
      let hostBatch: FloatVector | null = null;
      const x = gather(data.x, dim, idx, dtype, idx.length, (b) => {
        options.augment?.(b, stepNow);
        hostBatch = b;
      }).reshape([batchSize, ...flow.eventShape]);
      const cond = data.cond ? [gather(data.cond, contextDim, idx, dtype)] : [];
      const extras = (objective.draw?.(hostBatch!, batchSize, stepNow) ?? []).map((e) =>
        np.array(e.data, { shape: e.shape, dtype }),
      );
      extraCount = extras.length;

      const [p2, s2, lossA, gradNorm, finiteA]: TrainStepResult = trainStep(
        p,
        s!,
        ...(refresh ? [x.ref, ...extras, ...cond.map((c) => c.ref)] : [x, ...extras, ...cond]),
      );
      gradNorm.dispose();
      p = p2;
      s = s2;
      if (refresh) p = refresh(p, finiteA.ref, x, ...cond);
      // Reading back flushes the queued work (hundreds of unread steps overflow the engine's stack).
      const loss = (await lossA.data())[0] as number;
      const finite = !!(await finiteA.data())[0];
      // With one thread the kernels run as microtasks, so nothing above lets the event loop
      // turn: yield once per step, or a Ctrl-C (SIGINT) waits for the end of training.
      await yieldToEventLoop();
      step++;

      if (finite) {
        badStreak = 0;
        lossSum += loss;
        lossCount++;
      } else {
        skipped++;
        badStreak++;
        if (badStreak >= maxBadSteps) {
          throw new Error(
            `fit: ${badStreak} training steps in a row (up to step ${step}) gave a non-finite loss or gradient, so the run stopped. ` +
              `Try a lower learning rate (optimizer.lr is ${lr}), gradient clipping (optimizer.clipNorm, e.g. 1), ` +
              `or standardising the data (fitStandardizer), and check the data for NaN or infinite values.`,
          );
        }
      }

      let validLoss: number | undefined;
      const last = step === totalSteps;
      if (step % evalEvery === 0 || last) {
        if (evaluator) {
          validLoss = await evaluator.nll(p.ref);
          if (best === null || validLoss < best.validLoss - minDelta) {
            best?.params.dispose();
            best = { params: p.ref, validLoss, step };
            evalsSinceBest = 0;
          } else evalsSinceBest++;
        }
        history.push({
          step,
          trainLoss: lossCount > 0 ? lossSum / lossCount : null,
          validLoss: validLoss ?? null,
          seconds: secondsBefore + (performance.now() - t0) / 1000,
        });
        lossSum = 0;
        lossCount = 0;
        if (evalsSinceBest >= patience) stopReason = "earlyStopping";
      }

      warmAt ??= performance.now();
      if (options.onProgress) {
        const timed = step - startStep - 1;
        const elapsed = (performance.now() - warmAt) / 1000;
        const stepsPerSecond = timed > 0 && elapsed > 0 ? timed / elapsed : Number.NaN;
        options.onProgress({
          step,
          totalSteps,
          loss,
          validLoss,
          skipped,
          stepsPerSecond,
          etaSeconds: stepsPerSecond > 0 ? (totalSteps - step) / stepsPerSecond : Number.NaN,
        });
      }
      if (options.onCheckpoint && checkpointEvery > 0 && step % checkpointEvery === 0) {
        await options.onCheckpoint(await snapshot());
        lastCheckpoint = step;
      }
      if (stopReason !== "completed") break;
      if (options.signal?.aborted) {
        stopReason = "aborted";
        break;
      }
    }

    const state = await snapshot();
    if (options.onCheckpoint && lastCheckpoint !== step) await options.onCheckpoint(state);
    const bestVec: Array = best ? (best as { params: Array }).params.ref : p.ref;
    const result: FitResult<P, Q> = {
      params: unravel(p.ref) as FlowParams<P, Q>,
      bestParams: unravel(bestVec) as FlowParams<P, Q>,
      bestValidLoss: state.best?.validLoss ?? null,
      state,
      history: state.history,
      skipped,
      stopReason,
    };
    return result;
  } finally {
    await release();
  }
}
