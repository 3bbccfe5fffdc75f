/**
 * clayflow side of the benchmark: one workload in this process.
 *
 *   node build/bench/engine-clayflow.js --workload w1 --data DIR --out result.json [--profile]
 *
 * Threads follow the engine policy (CLAYFLOW_THREADS, else the core count). Training uses
 * `makeTrainStep` exactly as `fit` does: one jitted step on the flat parameter vector, fixed
 * shapes, reading back only the loss each step. Log-density and sampling are jitted with the
 * parameters passed as arguments.
 *
 * --profile adds a per-step split (forward loss only, loss + gradient, full step) and counts
 * the kernel dispatches of each, by wrapping the engine's worker shim (no change to src/).
 */
import "../src/engine/preload.js";
import { jit, numpy as np, random, tree, type Array } from "@jax-js/jax";
import { readFileSync } from "node:fs";
import { startEngine } from "../src/engine/index.js";
import { VirtualWorker } from "../src/engine/node-worker-shim.js";
import { buildFlow } from "../src/models/index.js";
import { flatten } from "../src/train/flat-params.js";
import { makeTrainStep, valueAndGradFlat } from "../src/train/train-step.js";
import type { OptState } from "../src/train/optimizer.js";
import { nll } from "../src/train/losses.js";
import {
  ROOT, batchRows, repetitionsOf, timeReps, engineArgs, loadSpec, now, peakRssMiB, readData, workload, writeResult,
  type EngineResult, type RepFigures,
} from "./common.js";

// Count kernel dispatches: jax-js posts one "kernel" message per chunk (begin = 0 for the first).
const counts = { kernels: 0, chunks: 0, routines: 0 };
const post = VirtualWorker.prototype.postMessage;
VirtualWorker.prototype.postMessage = function (this: VirtualWorker, message: unknown) {
  const m = message as { type?: string; begin?: number };
  if (m.type === "kernel") {
    counts.chunks++;
    if (m.begin === 0) counts.kernels++;
  } else if (m.type === "routine") counts.routines++;
  return post.call(this, message);
};

const args = engineArgs();
const spec = loadSpec();
const w = workload(spec, args.workload);
const engine = await startEngine();
const jaxVersion = JSON.parse(readFileSync(`${ROOT}node_modules/@jax-js/jax/package.json`, "utf8")).version as string;
const result: EngineResult = {
  engine: "clayflow",
  workload: w.id,
  status: "ok",
  reps: [],
  peakRssMiB: 0,
  info: { "jax-js": jaxVersion, device: engine.device, threads: engine.threads, node: process.version },
};

const m = w.model!;
const flow = buildFlow({ model: m.model, dim: m.dim, layers: m.layers, hidden: m.hidden, activation: m.activation, norm: m.norm });
const dim = m.dim;
let params = flow.init(random.key(0));
const reps = repetitionsOf(spec, w);
const figures: RepFigures[] = globalThis.Array.from({ length: reps }, () => ({}));
const profile: Record<string, number | string> = {};

async function timeCalls(n: number, call: () => Promise<void>): Promise<number> {
  const t0 = now();
  for (let i = 0; i < n; i++) await call();
  return (now() - t0) / 1000;
}

if (w.train) {
  const { batch, warmup, steps } = w.train;
  const data = readData(args.data, w.id);
  const rows = w.data!.rows;
  const flat = flatten(params);
  const { spec: layout, unravel } = flat;
  let p: Array = flat.vector;
  let s: OptState = {
    step: np.array(0, { dtype: np.int32 }),
    m: np.zeros([layout.size], { dtype: layout.dtype }),
    v: np.zeros([layout.size], { dtype: layout.dtype }),
  };
  const o = w.optimizer!;
  const lossFn = (t: any, x: Array) => nll(flow.logProb(t, x, undefined, { training: true }));
  const trainStep = makeTrainStep(lossFn, { kind: "adam", lr: o.lr, b1: o.b1, b2: o.b2, eps: o.eps }, flat);
  let stepIndex = 0;
  const batchArray = () =>
    np.array(batchRows(data, dim, rows, batch, stepIndex++), { shape: [batch, dim], dtype: np.float32 });
  let lossSum = 0;
  const step = async () => {
    const [p2, s2, loss, gradNorm, finite] = trainStep(p, s, batchArray());
    gradNorm.dispose();
    finite.dispose();
    p = p2;
    s = s2;
    lossSum += (await loss.data())[0] as number;
  };
  for (let i = 0; i < warmup; i++) await step();
  result.warmupLoss = lossSum / warmup;
  (await timeReps(reps, steps, spec.secondsPerRep, step)).forEach((sec, r) => (figures[r].train = batch / sec));

  if (args.profile) {
    // Per-step split: the same loss, jitted three ways, on the same batches.
    const fwd = jit((v: Array, x: Array) => lossFn(unravel(v), x));
    const vg = jit((v: Array, x: Array) => valueAndGradFlat((u: Array, y: Array) => lossFn(unravel(u), y))(v, x));
    const measure = async (name: string, call: () => Promise<void>) => {
      for (let i = 0; i < 3; i++) await call();
      const before = { ...counts };
      const n = Math.max(10, Math.round(steps / 2));
      const sec = await timeCalls(n, call);
      profile[`${name} ms/step`] = (1000 * sec) / n;
      profile[`${name} kernels/step`] = (counts.kernels - before.kernels) / n;
      profile[`${name} chunks/step`] = (counts.chunks - before.chunks) / n;
      profile[`${name} routines/step`] = (counts.routines - before.routines) / n;
    };
    await measure("forward loss", async () => {
      await fwd(p.ref, batchArray()).data();
    });
    await measure("loss+grad", async () => {
      const [value, g] = vg(p.ref, batchArray()) as unknown as [Array, Array];
      g.dispose();
      await value.data();
    });
    await measure("full train step", step);
    // Fixed cost of one tiny jitted call (one kernel): the floor under every dispatch.
    const tiny = jit((x: Array) => x.mul(2).add(1));
    await measure("tiny kernel", async () => {
      await tiny(np.zeros([4])).data();
    });
    profile["parameters"] = layout.size;
    fwd.dispose();
    vg.dispose();
    tiny.dispose();
  }
  trainStep.dispose();
  s.step.dispose();
  s.m.dispose();
  s.v.dispose();
  params = unravel(p) as typeof params;
}

if (w.logProb) {
  const { batch, warmup, iters } = w.logProb;
  const data = readData(args.data, w.id);
  const x = np.array(data.slice(0, batch * dim), { shape: [batch, dim], dtype: np.float32 });
  const lp = jit((q: any, y: Array) => flow.logProb(q, y));
  const call = async () => {
    await lp(tree.ref(params), x.ref).data();
  };
  for (let i = 0; i < warmup; i++) await call();
  (await timeReps(reps, iters, spec.secondsPerRep, call)).forEach((sec, r) => (figures[r].logProb = batch / sec));
  lp.dispose();
  x.dispose();
}

if (w.sample) {
  const { n, warmup, iters } = w.sample;
  const draw = jit((q: any, key: Array) => flow.sample(q, key, n));
  let seed = 1;
  const call = async () => {
    await draw(tree.ref(params), random.key(seed++)).data();
  };
  const t0 = now();
  for (let i = 0; i < warmup; i++) await call();
  profile["sample warm-up s (incl. compile)"] = (now() - t0) / 1000;
  (await timeReps(reps, iters, spec.secondsPerRep, call)).forEach((sec, r) => (figures[r].sample = n / sec));
  draw.dispose();
}

tree.dispose(params);
result.reps = figures;
result.peakRssMiB = peakRssMiB();
if (Object.keys(profile).length > 0) result.profile = profile;
writeResult(args.out, result);
