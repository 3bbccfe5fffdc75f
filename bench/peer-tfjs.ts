/**
 * TensorFlow.js peer of the clayflow benchmark: one workload in this process, on the "cpu"
 * (plain JS) or "wasm" backend.
 *
 *   node build/bench/peer-tfjs.js --backend cpu|wasm --workload w1 --data DIR --out result.json
 *
 * Same architecture and initialisation scheme as clayflow and bench/peer_torch.py (see the
 * comment there): RealNVP couplings with halfMask/alternatingMask, MLP He-uniform hidden layers
 * and a zero output layer, s = B tanh(raw / B); MAF with MADE degrees/masks as src/nn/made.ts
 * (natural/reversed orders), N(0, 1)/sqrt(fan_in) weights, zero output layer. Adam through
 * `optimizer.minimize`, reading the loss back each step. Eager execution (TF.js has no jit).
 */
import * as tf from "@tensorflow/tfjs";
import { getThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import {
  batchRows,
  engineArgs,
  loadSpec,
  now,
  repetitionsOf,
  secondsPerRepOf,
  timeReps,
  peakRssMiB,
  readData,
  workload,
  writeResult,
  type EngineResult,
  type VectorModelSpec,
  type RepFigures,
  vectorModel,
} from "./common.js";

type T = tf.Tensor;
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

interface Layer {
  vars: tf.Variable[];
  forward(x: T): [T, T];
  inverse(y: T): [T, T];
}

const contiguous = (idx: number[]) => idx.every((v, k) => v === idx[0] + k);

function dense(
  fanIn: number,
  fanOut: number,
  init: "he-uniform" | "normal" | "zero",
): [tf.Variable, tf.Variable] {
  const w =
    init === "zero"
      ? tf.zeros([fanIn, fanOut])
      : init === "he-uniform"
        ? tf.randomUniform([fanIn, fanOut], -Math.sqrt(6 / fanIn), Math.sqrt(6 / fanIn))
        : tf.randomNormal([fanIn, fanOut]).div(Math.sqrt(fanIn));
  // Hidden biases U(+-1 / sqrt(fanIn)) as in src/nn/mlp.ts and made.ts; the output layer is all zero.
  const b =
    init === "zero"
      ? tf.zeros([fanOut])
      : tf.randomUniform([fanOut], -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn));
  return [tf.variable(w), tf.variable(b)];
}

function affineCoupling(dim: number, mask: boolean[], hidden: number[], bound: number): Layer {
  const pass = mask.flatMap((m, i) => (m ? [i] : []));
  const tr = mask.flatMap((m, i) => (m ? [] : [i]));
  const nb = tr.length;
  const widths = [pass.length, ...hidden, 2 * nb];
  const layers = widths
    .slice(1)
    .map((w, i) => dense(widths[i], w, i === widths.length - 2 ? "zero" : "he-uniform"));
  const order = [...pass, ...tr];
  const position = Array.from({ length: dim }, (_, c) => order.indexOf(c));
  const identity = position.every((p, i) => p === i);
  const swapped = [...tr, ...pass].every((c, i) => c === i);
  const pick = (x: T, idx: number[]) =>
    contiguous(idx) ? x.slice([0, idx[0]], [-1, idx.length]) : tf.gather(x, idx, 1);
  const merge = (a: T, b: T) =>
    identity
      ? tf.concat([a, b], 1)
      : swapped
        ? tf.concat([b, a], 1)
        : tf.gather(tf.concat([a, b], 1), position, 1);
  const cond = (xa: T): [T, T] => {
    let h = xa;
    layers.forEach(([w, b], i) => {
      h = tf.add(tf.matMul(h, w), b);
      if (i < layers.length - 1) h = tf.relu(h);
    });
    const raw = h.slice([0, 0], [-1, nb]);
    const t = h.slice([0, nb], [-1, nb]);
    return [tf.tanh(raw.div(bound)).mul(bound), t];
  };
  return {
    vars: layers.flat(),
    forward(x) {
      const xa = pick(x, pass);
      const [s, t] = cond(xa);
      return [merge(xa, pick(x, tr).mul(tf.exp(s)).add(t)), s.sum(1)];
    },
    inverse(y) {
      const ya = pick(y, pass);
      const [s, t] = cond(ya);
      return [merge(ya, pick(y, tr).sub(t).mul(tf.exp(s.neg()))), s.sum(1).neg()];
    },
  };
}

function maskedAutoregressive(
  dim: number,
  hidden: number[],
  order: number[],
  bound: number,
): Layer {
  const degrees = new Array<number>(dim);
  order.forEach((c, rank) => (degrees[c] = rank + 1));
  const span = Math.max(dim - 1, 1);
  const hiddenDeg = hidden.map((w) =>
    Array.from({ length: w }, (_, k) => (dim - 1 < 1 ? 0 : 1 + (k % span))),
  );
  const outDeg = degrees.flatMap((d) => [d, d]);
  const masks: T[] = [];
  let prev = degrees;
  const build = (a: number[], b: number[], keep: (x: number, y: number) => boolean) =>
    tf.tensor2d(
      a.flatMap((x) => b.map((y) => (keep(x, y) ? 1 : 0))),
      [a.length, b.length],
    );
  for (const d of hiddenDeg) {
    masks.push(build(prev, d, (x, y) => y >= x));
    prev = d;
  }
  masks.push(build(prev, outDeg, (x, y) => y > x));
  const layers = masks.map((m, l) =>
    dense(m.shape[0]!, m.shape[1]!, l === masks.length - 1 ? "zero" : "normal"),
  );
  const muS = (x: T): [T, T] => {
    let h = x;
    layers.forEach(([w, b], l) => {
      h = tf.add(tf.matMul(h, tf.mul(w, masks[l])), b);
      if (l < layers.length - 1) h = tf.relu(h);
    });
    const out = h.reshape([x.shape[0]!, dim, 2]);
    const rows = x.shape[0]!;
    const mu = out.slice([0, 0, 0], [-1, -1, 1]).reshape([rows, dim]);
    const raw = out.slice([0, 0, 1], [-1, -1, 1]).reshape([rows, dim]);
    return [mu, tf.tanh(raw.div(bound)).mul(bound)];
  };
  return {
    vars: layers.flat(),
    forward(x) {
      const [mu, s] = muS(x);
      return [x.sub(mu).mul(tf.exp(s.neg())), s.sum(1).neg()];
    },
    inverse(z) {
      let x: T = tf.zerosLike(z);
      let logDet: T | null = null;
      // One tidy per pass, so that the intermediates of D passes are not all alive at once.
      for (let k = 0; k < dim; k++) {
        const prev = x;
        x = tf.tidy(() => {
          const [mu, s] = muS(prev);
          if (k === dim - 1) logDet = tf.keep(s.sum(1));
          return z.mul(tf.exp(s)).add(mu);
        });
        prev.dispose();
      }
      return [x, logDet!];
    },
  };
}

function buildFlow(m: VectorModelSpec) {
  const { dim } = m;
  const layers: Layer[] = [];
  for (let i = 0; i < m.layers; i++) {
    if (m.model === "realnvp") {
      const k = Math.ceil(dim / 2);
      const mask =
        dim === 2 || i % 4 < 2
          ? Array.from({ length: dim }, (_, c) => c < k !== (i % 2 === 1))
          : Array.from({ length: dim }, (_, c) => c % 2 === i % 2);
      layers.push(affineCoupling(dim, mask, m.hidden, m.scaleBound));
    } else {
      const natural = Array.from({ length: dim }, (_, c) => c);
      layers.push(
        maskedAutoregressive(
          dim,
          m.hidden,
          i % 2 === 0 ? natural : natural.reverse(),
          m.scaleBound,
        ),
      );
    }
  }
  return {
    vars: layers.flatMap((l) => l.vars),
    logProb(x: T): T {
      let total: T = tf.zeros([x.shape[0]!]);
      for (const l of layers) {
        const [y, ld] = l.forward(x);
        x = y;
        total = total.add(ld);
      }
      const lp = x
        .square()
        .sum(1)
        .mul(-0.5)
        .sub(dim * HALF_LOG_2PI)
        .add(total);
      return tf.where(tf.isFinite(lp), lp, tf.fill(lp.shape, -Infinity));
    },
    sample(n: number): T {
      let x: T = tf.randomNormal([n, dim]);
      for (const l of [...layers].reverse()) x = l.inverse(x)[0];
      return x;
    },
  };
}

const args = engineArgs();
const backend = args.extra.backend ?? "cpu";
const spec = loadSpec();
const w = workload(spec, args.workload);
const result: EngineResult = {
  engine: `tfjs-${backend}`,
  workload: w.id,
  status: "ok",
  reps: [],
  peakRssMiB: 0,
  info: { tfjs: tf.version_core, backend, node: process.version },
};
const cannot: NonNullable<EngineResult["cannot"]> = {};
/** Run one measurement; an error becomes "cannot run: reason" for it alone. */
async function attempt(what: keyof RepFigures, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    cannot[what] = String((e as Error).message ?? e).split("\n")[0];
    result.cannot = cannot;
  }
}

try {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not initialise`);
  await tf.ready();
  result.info.threads = backend === "wasm" ? getThreadsCount() : 1;
  tf.randomNormal([1]).dispose(); // warm the RNG
  const m = vectorModel(w); // image models are not written for TF.js (the harness skips them)
  const dim = m.dim;
  const flow = buildFlow(m);
  const reps = repetitionsOf(spec, w);
  const figures: RepFigures[] = Array.from({ length: reps }, () => ({}));
  result.reps = figures;

  if (w.train)
    await attempt("train", async () => {
      const { batch, warmup, steps } = w.train!;
      const data = readData(args.data, w.id);
      const o = w.optimizer!;
      const opt = tf.train.adam(o.lr, o.b1, o.b2, o.eps);
      let i = 0;
      let lossSum = 0;
      const step = async () => {
        const x = tf.tensor2d(batchRows(data, dim, w.data!.rows, batch, i++), [batch, dim]);
        const loss = opt.minimize(
          () => flow.logProb(x).mean().neg() as tf.Scalar,
          true,
          flow.vars,
        )!;
        lossSum += (await loss.data())[0];
        loss.dispose();
        x.dispose();
      };
      for (let k = 0; k < warmup; k++) await step();
      result.warmupLoss = lossSum / warmup;
      (await timeReps(reps, steps, secondsPerRepOf(spec, w), step)).forEach(
        (sec, r) => (figures[r].train = batch / sec),
      );
    });
  if (w.logProb)
    await attempt("logProb", async () => {
      const { batch, warmup, iters } = w.logProb!;
      const data = readData(args.data, w.id);
      const x = tf.tensor2d(data.slice(0, batch * dim), [batch, dim]);
      const call = async () => {
        const lp = tf.tidy(() => flow.logProb(x));
        await lp.data();
        lp.dispose();
      };
      for (let k = 0; k < warmup; k++) await call();
      (await timeReps(reps, iters, secondsPerRepOf(spec, w), call)).forEach(
        (sec, r) => (figures[r].logProb = batch / sec),
      );
    });
  if (w.sample)
    await attempt("sample", async () => {
      const { n, warmup, iters, warmupN } = w.sample!;
      const draw = async (count: number) => {
        const s = tf.tidy(() => flow.sample(count));
        await s.data();
        s.dispose();
      };
      // Eager: nothing is compiled, so a smaller warm-up exercises the same kernels.
      for (let k = 0; k < warmup; k++) await draw(warmupN ?? n);
      if (warmupN !== undefined && warmupN < n) {
        const t0 = now();
        await draw(warmupN);
        const projected = ((now() - t0) / 1000) * (n / warmupN);
        if (projected > spec.secondsPerCallCap) {
          figures[0].sample = n / projected;
          result.notes = {
            sample: `estimated from one call of ${warmupN} samples: one call of ${n} would take about ${projected.toFixed(0)} s (cap ${spec.secondsPerCallCap} s)`,
          };
          return;
        }
      }
      (await timeReps(reps, iters, secondsPerRepOf(spec, w), () => draw(n))).forEach(
        (sec, r) => (figures[r].sample = n / sec),
      );
    });
} catch (e) {
  result.status = "cannot run";
  result.reason = String((e as Error).message ?? e).split("\n")[0];
}
result.peakRssMiB = peakRssMiB();
writeResult(args.out, result);
