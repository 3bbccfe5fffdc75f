/**
 * Shared pieces of the benchmark harness: the workload spec (bench/workloads.json, read by
 * every engine, the Python peer included), the data every engine trains on (generated here,
 * written as raw float32 files that each engine process reads), and the result format each
 * engine process writes.
 */
import { readFileSync, writeFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { makeRng } from "../src/core/prng.js";
import { sampleToy2d } from "../src/data/toy2d.js";
import { loadImageDataset } from "../src/data/image-datasets.js";

export interface VectorModelSpec {
  model: "realnvp" | "maf";
  dim: number;
  layers: number;
  hidden: number[];
  activation: "relu";
  norm: "none";
  /** Soft clamp of the log-scale: s = B * tanh(raw / B). */
  scaleBound: number;
}

/** An image flow exactly as clayflow's `buildImageFlow` config (src/models/image.ts); peers mirror it. */
export interface ImageModelSpec {
  model: "glow";
  /** [H, W, C]. */
  shape: number[];
  levels: number;
  steps: number;
  hidden: number;
  blocks: number;
  logitAlpha: number;
  seed: number;
  /** "variational": the learned noise flow in front (bench/torch_glow.py mirrors it); default uniform. */
  dequantization?: "uniform" | "variational";
}

export type ModelSpec = VectorModelSpec | ImageModelSpec;

export const isImageModel = (m: ModelSpec): m is ImageModelSpec => "shape" in m;

/** Values per row of a workload's data: dim, or H * W * C for images. */
export const rowSize = (m: ModelSpec) =>
  isImageModel(m) ? m.shape.reduce((a, d) => a * d, 1) : m.dim;

export interface Workload {
  id: string;
  title: string;
  /** Overrides the spec's repetitions. */
  repetitions?: number;
  /**
   * Processes per engine (default 1): the engines run in turn, this many rounds, and each
   * engine's repetitions from all its processes are pooled, so the median and the spread see
   * what changes from one process to the next (memory layout, thread placement), not only
   * within one.
   */
  processes?: number;
  /** Set when the workload cannot be run at all (reported as such). */
  unavailable?: string;
  /** Engines that do not run this workload, with the reason (shown as "skipped" like a missing engine). */
  skip?: Record<string, string>;
  /** Overrides the spec's secondsPerRep (slow steps). */
  secondsPerRep?: number;
  model?: ModelSpec;
  /**
   * "fashion-mnist": the first `rows` training images of the Debian package (see
   * src/data/image-datasets.ts), dequantised once: x = (pixel + u) / 256, u ~ U[0, 1) from `seed`.
   */
  data?: { kind: "8gaussians" | "tabular32" | "fashion-mnist"; rows: number; seed: number };
  /**
   * Adam; `warmupSteps` (linear lr warm-up, lr * (s + 1) / W) and `clipNorm` (global-norm
   * clipping) as clayflow's schedules.ts / optimizer.ts, when given.
   */
  optimizer?: {
    kind: "adam";
    lr: number;
    b1: number;
    b2: number;
    eps: number;
    warmupSteps?: number;
    clipNorm?: number;
  };
  /**
   * Training: `warmup` steps (compilation included), then `steps` timed steps per repetition.
   * `microbatch` (clayflow only): the batch's gradient is accumulated over batch / microbatch
   * jitted passes, then one jitted update (one jitted step over the whole batch does not fit).
   */
  train?: { batch: number; warmup: number; steps: number; microbatch?: number };
  /**
   * Image models: ActNorm's data-dependent initialisation sees the first `initRows` rows
   * (default: the training batch).
   */
  initRows?: number;
  /** clayflow's --profile: timed calls per measurement (default max(10, steps / 2)). */
  profileIters?: number;
  /** Log-density of `batch` rows (no gradient): `warmup` calls, then `iters` timed calls per repetition. */
  logProb?: { batch: number; warmup: number; iters: number };
  /**
   * Drawing `n` samples: `warmup` calls, then `iters` timed calls per repetition. Eager engines
   * (no compilation) may warm up with `warmupN` samples instead of `n`. clayflow draws through
   * its `sampleRows` in jitted chunks of `chunk` rows (default: all n in one chunk).
   */
  sample?: { n: number; warmup: number; iters: number; warmupN?: number; chunk?: number };
}

export interface Spec {
  repetitions: number;
  /** Time caps: a repetition stops after this many seconds (at least one call). */
  secondsPerRep: number;
  /**
   * Eager engines whose single sampling call would take longer than this (projected from a
   * warm-up at `warmupN`) report the throughput at `warmupN`, marked as an estimate.
   */
  secondsPerCallCap: number;
  workloads: Workload[];
}

/** Repository root, from build/bench/*.js or bench/*.ts. */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** The workload spec: bench/workloads.json, or the file CLAYFLOW_BENCH_SPEC names (small trial runs). */
export function loadSpec(): Spec {
  return JSON.parse(
    readFileSync(process.env.CLAYFLOW_BENCH_SPEC || join(ROOT, "bench", "workloads.json"), "utf8"),
  ) as Spec;
}

export const repetitionsOf = (spec: Spec, w: Workload) => w.repetitions ?? spec.repetitions;
export const secondsPerRepOf = (spec: Spec, w: Workload) => w.secondsPerRep ?? spec.secondsPerRep;
export const processesOf = (w: Workload) => w.processes ?? 1;

/** The workload's model as a vector flow (w1, w2, w4); throws for an image model. */
export function vectorModel(w: Workload): VectorModelSpec {
  const m = w.model!;
  if (isImageModel(m)) throw new Error(`${w.id}: an image model, not a vector flow`);
  return m;
}

export function workload(spec: Spec, id: string): Workload {
  const w = spec.workloads.find((x) => x.id === id);
  if (!w) throw new Error(`unknown workload "${id}"`);
  return w;
}

/**
 * Smooth, correlated 32-D data: x_0 = z_0, x_i = 0.6 x_{i-1} + 0.5 tanh(2 z_i) + 0.3 z_i with
 * z ~ N(0, I): a non-Gaussian chain that an autoregressive flow can learn.
 */
function tabular32(rows: number, seed: number): Float32Array {
  const rng = makeRng(seed);
  const out = new Float32Array(rows * 32);
  for (let r = 0; r < rows; r++) {
    let prev = 0;
    for (let i = 0; i < 32; i++) {
      const z = rng.normal();
      const v = i === 0 ? z : 0.6 * prev + 0.5 * Math.tanh(2 * z) + 0.3 * z;
      out[r * 32 + i] = v;
      prev = v;
    }
  }
  return out;
}

/** The first `rows` FashionMNIST training images as x = (pixel + u) / 256, [rows, 784]. */
async function fashionMnist(rows: number, seed: number): Promise<Float32Array> {
  const train = await loadImageDataset("fashion-mnist", "train");
  const dims = train.height * train.width;
  if (rows > train.n)
    throw new Error(`fashion-mnist has ${train.n} training images, the workload asks for ${rows}`);
  const rng = makeRng(seed);
  const out = new Float32Array(rows * dims);
  for (let i = 0; i < out.length; i++) out[i] = (train.images[i] + rng.uniform()) / 256;
  return out;
}

export async function makeData(w: Workload): Promise<Float32Array> {
  const d = w.data!;
  if (d.kind === "8gaussians") return sampleToy2d("8gaussians", d.rows, d.seed);
  if (d.kind === "tabular32") return tabular32(d.rows, d.seed);
  if (d.kind === "fashion-mnist") return fashionMnist(d.rows, d.seed);
  throw new Error(`unknown data kind ${(d as { kind: string }).kind}`);
}

export const dataPath = (dir: string, id: string) => join(dir, `${id}.f32`);

/** Write the workloads' data (raw little-endian float32, row-major [rows, dim]) into `dir`. */
export async function writeData(workloads: Workload[], dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const w of workloads) {
    if (!w.data || existsSync(dataPath(dir, w.id))) continue;
    const x = await makeData(w);
    writeFileSync(dataPath(dir, w.id), Buffer.from(x.buffer, x.byteOffset, x.byteLength));
  }
}

export function readData(dir: string, id: string): Float32Array {
  const buf = readFileSync(dataPath(dir, id));
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/**
 * The rows of training step `i` (batch size `b`): consecutive rows, wrapping around the data.
 * Every engine takes the same rows in the same order (the data are already in random order).
 */
export function batchRows(
  data: Float32Array,
  dim: number,
  rows: number,
  b: number,
  i: number,
): Float32Array {
  const perEpoch = Math.floor(rows / b);
  const start = (i % perEpoch) * b;
  return data.slice(start * dim, (start + b) * dim);
}

/** One repetition's figures, in samples per second. */
export interface RepFigures {
  train?: number;
  logProb?: number;
  sample?: number;
}

/** What one engine process reports for one workload. */
export interface EngineResult {
  engine: string;
  workload: string;
  status: "ok" | "cannot run";
  reason?: string;
  /** Measurements this engine could not make, with the reason (e.g. a missing gradient kernel). */
  cannot?: Partial<Record<keyof RepFigures, string>>;
  reps: RepFigures[];
  /** Peak resident memory of the whole process (getrusage maxrss), MiB. */
  peakRssMiB: number;
  /** Mean training loss over the warm-up steps: the same batches in every engine (a sanity check). */
  warmupLoss?: number;
  /** Engine details (versions, threads, BLAS). */
  info: Record<string, string | number>;
  /** Caveats per measurement (e.g. an estimate from fewer samples). */
  notes?: Partial<Record<keyof RepFigures, string>>;
  /** Extra measurements (clayflow profile). */
  profile?: Record<string, number | string>;
  /**
   * Checks that the engines compute the same model (image workloads): parameter counts, the
   * initial loss, and (PyTorch) the log-density of clayflow's own initial weights.
   */
  check?: Record<string, number | string>;
}

export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export function writeResult(path: string, r: EngineResult): void {
  writeFileSync(path, JSON.stringify(r, null, 1));
}

/** Command-line flags of an engine process: --workload ID --data DIR --out FILE [--profile]. */
export function engineArgs(argv = process.argv.slice(2)): {
  workload: string;
  data: string;
  out: string;
  profile: boolean;
  extra: Record<string, string>;
} {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const extra: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++)
    if (argv[i].startsWith("--") && argv[i + 1] && !argv[i + 1].startsWith("--"))
      extra[argv[i].slice(2)] = argv[i + 1];
  return {
    workload: get("workload")!,
    data: get("data")!,
    out: get("out")!,
    profile: argv.includes("--profile"),
    extra,
  };
}

export const now = () => performance.now();

/**
 * Time `reps` repetitions of up to `iters` calls each; a repetition stops early (after at least
 * one call) once it has run `secondsPerRep`, so slow engines finish in bounded time. Returns
 * the mean seconds per call of each repetition.
 */
export async function timeReps(
  reps: number,
  iters: number,
  secondsPerRep: number,
  call: () => Promise<void>,
): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    let n = 0;
    while (n < iters) {
      await call();
      n++;
      if ((now() - t0) / 1000 >= secondsPerRep) break;
    }
    out.push((now() - t0) / 1000 / n);
  }
  return out;
}
