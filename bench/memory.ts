/**
 * Memory flatness: clayflow workload w1 (2-D RealNVP, batch 256, Adam) for 10,000 training
 * steps with the train step `fit` uses, recording the resident set size (RSS) every 1,000 steps.
 * Flat means RSS after step 10,000 within 5% of RSS after step 1,000 (the first 1,000 steps
 * cover compilation and the allocator's warm-up); RSS at a mark is the median of the readings
 * every 100 steps over the 500 steps up to it. Updates its section of docs/BENCHMARKS.md.
 *
 *   npm run bench:memory            (about 3 minutes on 2 cores)
 *   npm run bench:memory -- --steps 2000 --out /tmp/b.md
 */
import "../src/engine/preload.js";
import { numpy as np, random, type Array } from "@jax-js/jax";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startEngine } from "../src/engine/index.js";
import { buildFlow } from "../src/models/index.js";
import { flatten } from "../src/train/flat-params.js";
import { makeTrainStep } from "../src/train/train-step.js";
import type { OptState } from "../src/train/optimizer.js";
import { nll } from "../src/train/losses.js";
import { ROOT, batchRows, loadSpec, makeData, vectorModel, workload } from "./common.js";
import { MEMORY_END, MEMORY_START } from "./memory-section.js";

const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const totalSteps = Number(flag("steps") ?? 10000);
const first = Math.min(1000, totalSteps);
const outPath = flag("out") ?? join(ROOT, "docs", "BENCHMARKS.md");

const engine = await startEngine();
const w = workload(loadSpec(), "w1");
const m = vectorModel(w);
const flow = buildFlow({
  model: m.model,
  dim: m.dim,
  layers: m.layers,
  hidden: m.hidden,
  activation: m.activation,
  norm: m.norm,
});
const data = await makeData(w);
const { batch } = w.train!;
const flat = flatten(flow.init(random.key(0)));
let p: Array = flat.vector;
let s: OptState = {
  step: np.array(0, { dtype: np.int32 }),
  m: np.zeros([flat.spec.size]),
  v: np.zeros([flat.spec.size]),
};
const o = w.optimizer!;
const step = makeTrainStep(
  (t: any, x: Array) => nll(flow.logProb(t, x, undefined, { training: true })),
  { kind: "adam", lr: o.lr, b1: o.b1, b2: o.b2, eps: o.eps },
  flat,
);
const mib = (b: number) => b / 2 ** 20;
/** Readings (each after a full GC) every `every` steps; a mark's figure is the median of the last `window` of them. */
const every = 100;
const window = 5;
const readings = new Map<
  number,
  { rss: number; heap: number; heapTotal: number; external: number }
>();
const marks = [
  ...new Set([
    first,
    ...globalThis.Array.from({ length: Math.floor(totalSteps / 1000) }, (_, k) => 1000 * (k + 1)),
    totalSteps,
  ]),
];
const t0 = performance.now();
let loss = NaN;
for (let i = 1; i <= totalSteps; i++) {
  const x = np.array(batchRows(data, m.dim, w.data!.rows, batch, i - 1), {
    shape: [batch, m.dim],
    dtype: np.float32,
  });
  const [p2, s2, l, g, f] = step(p, s, x);
  g.dispose();
  f.dispose();
  p = p2;
  s = s2;
  loss = (await l.data())[0] as number;
  if (i % every === 0 || marks.includes(i)) {
    // A full GC first (node --expose-gc, as npm run bench:memory starts it), so RSS shows what is
    // retained rather than where the JS heap happens to be in its collection cycle.
    (globalThis as { gc?: () => void }).gc?.();
    const u = process.memoryUsage();
    readings.set(i, {
      rss: mib(u.rss),
      heap: mib(u.heapUsed),
      heapTotal: mib(u.heapTotal),
      external: mib(u.external + u.arrayBuffers),
    });
    if (marks.includes(i))
      process.stderr.write(
        `step ${i}: rss ${mib(u.rss).toFixed(1)} MiB, loss ${loss.toFixed(3)}\n`,
      );
  }
}
const seconds = (performance.now() - t0) / 1000;
const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
// One RSS reading moves by several percent from one reading to the next (allocator and compiler
// memory returned to the system late), with no trend; the median of the last readings before a
// mark is what the mark reports, the single reading at the mark is shown beside it.
const samples = marks.map((mark) => {
  const near = [...readings.entries()]
    .filter(([k]) => k <= mark && k > mark - window * every)
    .map(([, r]) => r);
  const rss = near.map((r) => r.rss);
  const at = readings.get(mark)!;
  return {
    step: mark,
    rss: median(rss),
    lo: Math.min(...rss),
    hi: Math.max(...rss),
    n: rss.length,
    single: at.rss,
    heap: at.heap,
    heapTotal: at.heapTotal,
    external: at.external,
  };
});
const a = samples.find((x) => x.step === first)!;
const b = samples.find((x) => x.step === totalSteps)!;
const change = (100 * (b.rss - a.rss)) / a.rss;
const flatOk = Math.abs(change) <= 5;
const singleChange = (100 * (b.single - a.single)) / a.single;
const section = `${MEMORY_START}
clayflow (engine ${engine.device}, ${engine.threads} thread(s)), workload w1 for ${totalSteps.toLocaleString("en-US")} steps in ${seconds.toFixed(0)} s
(final loss ${loss.toFixed(3)}), with the jitted train step \`fit\` uses; RSS read ${"gc" in globalThis ? "after a full GC (--expose-gc)" : "without forcing a GC"}. Run on ${new Date().toISOString().slice(0, 10)}.

- RSS after step ${first.toLocaleString("en-US")}: **${a.rss.toFixed(1)} MiB**; after step ${totalSteps.toLocaleString("en-US")}: **${b.rss.toFixed(1)} MiB**
  (${change >= 0 ? "+" : ""}${change.toFixed(1)}%): **${flatOk ? "flat (within 5%)" : "NOT flat (more than 5%)"}**. Each figure is the median of the
  readings every ${every} steps in the last ${window * every} steps up to the mark (one reading alone moves by several percent, with no trend);
  the single readings at the two marks: ${a.single.toFixed(1)} and ${b.single.toFixed(1)} MiB (${singleChange >= 0 ? "+" : ""}${singleChange.toFixed(1)}%).

| step | RSS MiB (median) | RSS range MiB | reading at the step | JS heap used MiB | JS heap committed MiB | external + ArrayBuffers MiB |
|---:|---:|---|---:|---:|---:|---:|
${samples.map((x) => `| ${x.step} | ${x.rss.toFixed(1)} | ${x.lo.toFixed(1)}–${x.hi.toFixed(1)} (${x.n}) | ${x.single.toFixed(1)} | ${x.heap.toFixed(1)} | ${x.heapTotal.toFixed(1)} | ${x.external.toFixed(1)} |`).join("\n")}
${MEMORY_END}`;
process.stdout.write(section + "\n");

if (existsSync(outPath)) {
  const old = readFileSync(outPath, "utf8");
  const i = old.indexOf(MEMORY_START);
  const j = old.indexOf(MEMORY_END);
  const next =
    i >= 0 && j > i
      ? old.slice(0, i) + section + old.slice(j + MEMORY_END.length)
      : `${old}\n## Memory flatness (workload w1, 10,000 training steps)\n\n${section}\n`;
  writeFileSync(outPath, next);
} else {
  writeFileSync(
    outPath,
    `# Benchmarks\n\n## Memory flatness (workload w1, 10,000 training steps)\n\n${section}\n`,
  );
}
process.stderr.write(`updated ${outPath}\n`);
