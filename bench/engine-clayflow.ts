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
 * the kernel dispatches of each, by wrapping the engine's worker shim (no change to src/); it
 * also times every kernel dispatch of the loss+gradient pass (dispatches run one at a time, so
 * first chunk posted -> last chunk answered is that kernel's wall time) and reports the kernels
 * that take the most time, by kernel hash and work size.
 *
 * Image workloads (w3): the flow is `buildFlow(model)` with the model fields as its config,
 * initialised as `clayflow train` does, `flow.init(key(seed), { x })` with x = the first training
 * batch (ActNorm's data-dependent init). The initial flat parameter vector, its layout and the
 * log-density of that batch are written next to the data (`<id>-clayflow-init.*`), so the
 * PyTorch peer can load the same weights and compare. With `train.microbatch` the batch's
 * gradient is accumulated over jitted passes of `microbatch` rows and one jitted update applies
 * it (the same schedule, clipping, Adam and non-finite guard as `makeTrainStep`): one jitted step
 * over a whole batch of 64 exceeds jax-js's 4 GiB wasm memory.
 */
import "../src/engine/preload.js";
import { blockUntilReady, jit, numpy as np, random, tree, type Array } from "@jax-js/jax";
import { sampleRows } from "../src/eval/sample-rows.js";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startEngine } from "../src/engine/index.js";
import { VirtualWorker } from "../src/engine/node-worker-shim.js";
import { buildFlow } from "../src/models/index.js";
import { flatten } from "../src/train/flat-params.js";
import { makeTrainStep, valueAndGradFlat } from "../src/train/train-step.js";
import {
  adamUpdate,
  globalNorm,
  resolveOptimizerConfig,
  type OptState,
} from "../src/train/optimizer.js";
import { makeSchedule } from "../src/train/schedules.js";
import { nll } from "../src/train/losses.js";
import {
  ROOT,
  batchRows,
  isImageModel,
  repetitionsOf,
  rowSize,
  secondsPerRepOf,
  timeReps,
  engineArgs,
  loadSpec,
  now,
  peakRssMiB,
  readData,
  workload,
  writeResult,
  type EngineResult,
  type RepFigures,
} from "./common.js";

// Count kernel dispatches: jax-js posts one "kernel" message per chunk (begin = 0 for the first).
const counts = { kernels: 0, chunks: 0, routines: 0 };
/** Per-kernel wall times, while `kernelTimes.on`: hash -> { calls, ms, size (elements of work) }. */
const kernelTimes = {
  on: false,
  byHash: new Map<string, { calls: number; ms: number; size: number }>(),
  routineMs: 0,
  routines: 0,
};
let inFlight: { key: string; t0: number; pending: number; routine: boolean } | null = null;
const post = VirtualWorker.prototype.postMessage;
VirtualWorker.prototype.postMessage = function (this: VirtualWorker, message: unknown) {
  const m = message as { type?: string; begin?: number; end?: number; kernelHash?: string };
  if (m.type === "kernel") {
    counts.chunks++;
    if (m.begin === 0) counts.kernels++;
  } else if (m.type === "routine") counts.routines++;
  if (kernelTimes.on && (m.type === "kernel" || m.type === "routine")) {
    // jax-js runs one dispatch at a time and sets onmessage per chunk before posting it.
    if (m.begin === 0 || m.type === "routine")
      inFlight = {
        key: m.kernelHash ?? "routine",
        t0: now(),
        pending: 0,
        routine: m.type === "routine",
      };
    const flight = inFlight!;
    flight.pending++;
    if (m.type === "kernel") {
      const e = kernelTimes.byHash.get(flight.key) ?? { calls: 0, ms: 0, size: 0 };
      if (m.begin === 0) e.calls++;
      e.size = Math.max(e.size, m.end!);
      kernelTimes.byHash.set(flight.key, e);
    }
    const reply = this.onmessage;
    this.onmessage = (event) => {
      if (--flight.pending === 0) {
        const ms = now() - flight.t0;
        if (flight.routine) {
          kernelTimes.routineMs += ms;
          kernelTimes.routines++;
        } else kernelTimes.byHash.get(flight.key)!.ms += ms;
      }
      reply?.(event);
    };
  }
  return post.call(this, message);
};

const args = engineArgs();
const spec = loadSpec();
const w = workload(spec, args.workload);
const engine = await startEngine();
const jaxVersion = JSON.parse(readFileSync(`${ROOT}node_modules/@jax-js/jax/package.json`, "utf8"))
  .version as string;
const result: EngineResult = {
  engine: "clayflow",
  workload: w.id,
  status: "ok",
  reps: [],
  peakRssMiB: 0,
  info: {
    "jax-js": jaxVersion,
    device: engine.device,
    threads: engine.threads,
    node: process.version,
  },
};

const m = w.model!;
const image = isImageModel(m);
const flow = isImageModel(m)
  ? buildFlow({ ...m })
  : buildFlow({
      model: m.model,
      dim: m.dim,
      layers: m.layers,
      hidden: m.hidden,
      activation: m.activation,
      norm: m.norm,
    });
const dim = rowSize(m);
const eventShape = flow.eventShape;
const data = w.data ? readData(args.data, w.id) : null;
/** Rows [n, ...eventShape] of the data, from `start`. */
const rowsArray = (values: Float32Array, n: number) =>
  np.array(values, { shape: [n, ...eventShape], dtype: np.float32 });
let params: any;
let initCheck: (() => Promise<void>) | null = null;
if (isImageModel(m)) {
  // As `clayflow train`: ActNorm's data-dependent init sees a batch of training images (see initRows).
  const batch = w.initRows ?? w.train!.batch;
  const initX = data!.slice(0, batch * dim);
  params = flow.init(random.key(m.seed), { x: rowsArray(initX, batch) });
  // Export the initial weights (their log-density on this batch is computed at the very end:
  // run here, an eager batch-64 pass fragments jax-js's size-class allocator enough that the
  // training pass no longer fits in the 4 GiB wasm memory).
  const { vector, unravel, spec: layout } = flatten(tree.ref(params));
  const values = (await vector.ref.data()) as Float32Array;
  tree.dispose(unravel(vector));
  const base = join(args.data, `${w.id}-clayflow-init`);
  writeFileSync(`${base}.f32`, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
  initCheck = async () => {
    const v = np.array(values, { dtype: np.float32 });
    const logp = new Float32Array(batch);
    for (let at = 0; at < batch; at += 16) {
      const x = rowsArray(initX.slice(at * dim, (at + 16) * dim), 16);
      logp.set((await flow.logProb(unravel(v.ref) as any, x).data()) as Float32Array, at);
    }
    v.dispose();
    writeFileSync(
      `${base}.json`,
      JSON.stringify({
        paths: layout.paths,
        shapes: layout.shapes,
        offsets: layout.offsets,
        size: layout.size,
        logProb: [...logp],
      }),
    );
    result.check = {
      ...result.check,
      "clayflow parameters": layout.size,
      "clayflow initial loss (first batch)": -logp.reduce((a, b) => a + b, 0) / batch,
    };
  };
} else params = flow.init(random.key(0));
const reps = repetitionsOf(spec, w);
const secondsPerRep = secondsPerRepOf(spec, w);
const figures: RepFigures[] = globalThis.Array.from({ length: reps }, () => ({}));
const profile: Record<string, number | string> = {};

async function timeCalls(n: number, call: () => Promise<void>): Promise<number> {
  const t0 = now();
  for (let i = 0; i < n; i++) await call();
  return (now() - t0) / 1000;
}

if (w.train) {
  const { batch, warmup, steps } = w.train;
  const micro = w.train.microbatch ?? batch;
  if (batch % micro !== 0)
    throw new Error(`${w.id}: microbatch ${micro} does not divide batch ${batch}`);
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
  const optimizer = {
    kind: "adam" as const,
    b1: o.b1,
    b2: o.b2,
    eps: o.eps,
    lr: o.warmupSteps ? { kind: "warmup" as const, lr: o.lr, warmupSteps: o.warmupSteps } : o.lr,
    ...(o.clipNorm ? { clipNorm: o.clipNorm } : {}),
  };
  const lossFn = (t: any, x: Array) => nll(flow.logProb(t, x, undefined, { training: true }));
  let stepIndex = 0;
  const batchArray = () => rowsArray(batchRows(data!, dim, rows, batch, stepIndex++), batch);
  let lossSum = 0;
  let firstLoss: number | null = null;
  let run: () => Promise<number>;
  let grad: ((v: Array, x: Array) => [Array, Array]) & { dispose(): void };
  const disposers: (() => void)[] = [];
  if (micro === batch) {
    const trainStep = makeTrainStep(lossFn, optimizer, flat);
    disposers.push(() => trainStep.dispose());
    run = async () => {
      const [p2, s2, loss, gradNorm, finite] = trainStep(p, s, batchArray());
      gradNorm.dispose();
      finite.dispose();
      p = p2;
      s = s2;
      return (await loss.data())[0] as number;
    };
    grad = jit((v: Array, x: Array) => valueAndGradFlat(lossFn, flat)(v, x)) as any;
  } else {
    // Gradient accumulation: mean of the micro-batch gradients (the loss is a mean over rows).
    grad = jit((v: Array, x: Array) => valueAndGradFlat(lossFn, flat)(v, x)) as any;
    const resolved = resolveOptimizerConfig(optimizer);
    const schedule = makeSchedule(
      typeof optimizer.lr === "number" ? { kind: "constant", lr: optimizer.lr } : optimizer.lr,
      layout.dtype,
    );
    const n = batch / micro;
    // The update of makeTrainStep (train-step.ts) on the accumulated gradient.
    const update = jit((q: Array, st: OptState, gs: Array[], ls: Array[]) => {
      const g = gs.reduce((a, b) => a.add(b)).div(n);
      const value = ls.reduce((a, b) => a.add(b)).div(n);
      const gradNorm = globalNorm(g.ref);
      const finite = np.logicalAnd(np.isfinite(value.ref), np.isfinite(gradNorm.ref));
      const lr = schedule(st.step.ref);
      const [next, nextState] = adamUpdate(resolved, g, tree.ref(st), q.ref, lr, { gradNorm });
      const keep = (a: Array, b: Array) => np.where(finite.ref, a, b);
      const out: [Array, OptState, Array] = [
        keep(next, q),
        {
          step: keep(nextState.step, st.step),
          m: keep(nextState.m, st.m),
          v: keep(nextState.v, st.v),
        },
        value,
      ];
      finite.dispose();
      return out;
    });
    disposers.push(() => update.dispose());
    run = async () => {
      const rowsNow = batchRows(data!, dim, rows, batch, stepIndex++);
      const gs: Array[] = [];
      const ls: Array[] = [];
      for (let k = 0; k < n; k++) {
        // A fresh array per micro-batch: a slice (a view) into the jitted function is much slower.
        const x = rowsArray(rowsNow.subarray(k * micro * dim, (k + 1) * micro * dim), micro);
        const [value, g] = grad(p.ref, x);
        // jax-js is lazy: without this wait each gradient is computed only when the next pass or the
        // update needs it, and two passes' intermediates are alive at once.
        await blockUntilReady([value, g]);
        ls.push(value);
        gs.push(g);
      }
      const [p2, s2, loss] = update(p, s, gs, ls) as unknown as [Array, OptState, Array];
      p = p2;
      s = s2;
      return (await loss.data())[0] as number;
    };
  }
  const step = async () => {
    const loss = await run();
    firstLoss ??= loss;
    lossSum += loss;
  };
  const t0 = now();
  for (let i = 0; i < warmup; i++) await step();
  profile["train warm-up s (incl. compile)"] = (now() - t0) / 1000;
  result.warmupLoss = lossSum / warmup;
  if (image) result.check = { ...result.check, "clayflow loss of training step 1": firstLoss! };
  (await timeReps(reps, steps, secondsPerRep, step)).forEach(
    (sec, r) => (figures[r].train = batch / sec),
  );

  if (args.profile) {
    // Per-step split: the same loss, jitted three ways, on the same batches (per micro-batch,
    // times batch / micro, when the step is accumulated).
    const n = batch / micro;
    const microArray = () => rowsArray(batchRows(data!, dim, rows, micro, stepIndex++), micro);
    const fwd = jit((v: Array, x: Array) => lossFn(unravel(v), x));
    const iters = w.profileIters ?? Math.max(10, Math.round(steps / 2));
    const measure = async (name: string, perStep: number, call: () => Promise<void>, warm = 3) => {
      for (let i = 0; i < warm; i++) await call();
      const before = { ...counts };
      const sec = await timeCalls(iters, call);
      profile[`${name} ms/step`] = (perStep * 1000 * sec) / iters;
      profile[`${name} kernels/step`] = (perStep * (counts.kernels - before.kernels)) / iters;
      profile[`${name} chunks/step`] = (perStep * (counts.chunks - before.chunks)) / iters;
      profile[`${name} routines/step`] = (perStep * (counts.routines - before.routines)) / iters;
    };
    const warmProfile = micro === batch ? 3 : 1;
    await measure(
      "forward loss",
      n,
      async () => {
        await fwd(p.ref, microArray()).data();
      },
      warmProfile,
    );
    const gradCall = async () => {
      // Wait for the gradient too: jax-js is lazy, and reading only the loss leaves the backward
      // pass unrun (or, disposed unread, never run).
      const [value, g] = grad(p.ref, microArray());
      await blockUntilReady([value, g]);
      value.dispose();
      g.dispose();
    };
    await measure("loss+grad", n, gradCall, micro === batch ? 3 : 0);
    await measure("full train step", 1, step, micro === batch ? 3 : 0);
    // Kernel by kernel, over the loss+gradient pass.
    kernelTimes.on = true;
    const k0 = now();
    for (let i = 0; i < iters; i++) await gradCall();
    const timedMs = now() - k0;
    kernelTimes.on = false;
    const perCall = (x: number) => (x * n) / iters;
    const all = [...kernelTimes.byHash.values()];
    const kernelMs = all.reduce((a, e) => a + e.ms, 0);
    profile["kernel-timed loss+grad ms/step"] = perCall(timedMs);
    profile["kernel time ms/step"] = perCall(kernelMs);
    profile["routine time ms/step"] = perCall(kernelTimes.routineMs);
    profile["distinct kernels"] = all.length;
    const top = [...kernelTimes.byHash.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12);
    profile["top kernels"] = JSON.stringify(
      top.map(([hash, e]) => ({
        hash: hash.slice(0, 8),
        calls: perCall(e.calls),
        size: e.size,
        ms: perCall(e.ms),
        usPerCall: (1000 * e.ms) / e.calls,
      })),
    );
    // Fixed cost of one tiny jitted call (one kernel): the floor under every dispatch.
    const tiny = jit((x: Array) => x.mul(2).add(1));
    await measure("tiny kernel", 1, async () => {
      await tiny(np.zeros([4])).data();
    });
    // The engine's own matmul ceiling in this process: what every FLOP of the step could cost at best.
    const matmulRate = async (name: string, m: number, k: number, n: number) => {
      const mm = jit((a: Array, b: Array) => np.matmul(a, b));
      const a = random.uniform(random.key(1), [m, k]);
      const b = random.uniform(random.key(2), [k, n]);
      const call = async () => (await mm(a.ref, b.ref).blockUntilReady()).dispose();
      for (let i = 0; i < 3; i++) await call();
      const calls = 10;
      const sec = await timeCalls(calls, call);
      profile[`${name} GFLOP/s`] = (2 * m * k * n * calls) / sec / 1e9;
      a.dispose();
      b.dispose();
      mm.dispose();
    };
    await matmulRate("matmul 1024", 1024, 1024, 1024);
    // Dispatch floor inside one jitted program: a chain of 100 (reduction, elementwise) pairs on 4
    // numbers, 200 dependent kernels that do almost no work (no per-call read-back in between).
    const links = 100;
    const chain = jit((x: Array) => {
      for (let i = 0; i < links; i++) x = x.ref.add(x.sum().mul(1e-3));
      return x;
    });
    await measure("kernel chain", 1, async () => {
      await chain(np.zeros([4])).data();
    });
    profile["chained kernel µs"] =
      (1000 * Number(profile["kernel chain ms/step"])) /
      Number(profile["kernel chain kernels/step"]);
    chain.dispose();
    // The shape of a first-level 3x3 window of a pass: [micro x 14 x 14, hidden] x [hidden, hidden].
    if (isImageModel(m))
      await matmulRate("window matmul", (micro * m.shape[0] * m.shape[1]) / 4, m.hidden, m.hidden);
    profile.parameters = layout.size;
    profile.microbatch = micro;
    fwd.dispose();
    tiny.dispose();
  }
  grad.dispose();
  for (const d of disposers) d();
  s.step.dispose();
  s.m.dispose();
  s.v.dispose();
  params = unravel(p) as typeof params;
}

if (w.logProb) {
  const { batch, warmup, iters } = w.logProb;
  const x = rowsArray(data!.slice(0, batch * dim), batch);
  const lp = jit((q: any, y: Array) => flow.logProb(q, y));
  const call = async () => {
    await lp(tree.ref(params), x.ref).data();
  };
  for (let i = 0; i < warmup; i++) await call();
  (await timeReps(reps, iters, secondsPerRep, call)).forEach(
    (sec, r) => (figures[r].logProb = batch / sec),
  );
  lp.dispose();
  x.dispose();
}

if (w.sample) {
  // The library's sampling path: jitted chunks, each awaited (see src/eval/sample-rows.ts).
  const { n, warmup, iters, chunk } = w.sample;
  let seed = 1;
  const call = async () => {
    await sampleRows(flow, params, n, { seed: seed++, batch: chunk ?? n });
  };
  const t0 = now();
  for (let i = 0; i < warmup; i++) await call();
  profile["sample warm-up s (incl. compile)"] = (now() - t0) / 1000;
  (await timeReps(reps, iters, secondsPerRep, call)).forEach(
    (sec, r) => (figures[r].sample = n / sec),
  );
}

tree.dispose(params);
await initCheck?.();
result.reps = figures;
result.peakRssMiB = peakRssMiB();
if (Object.keys(profile).length > 0) result.profile = profile;
writeResult(args.out, result);
