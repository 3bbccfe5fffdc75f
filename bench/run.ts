/**
 * The benchmark harness: runs every workload of bench/workloads.json on clayflow (threads by the
 * engine policy, and CLAYFLOW_THREADS=1), PyTorch and TensorFlow.js (cpu, wasm), each engine and
 * workload in its own process, and writes docs/BENCHMARKS.md.
 *
 *   npm run bench                                   # everything (a few minutes)
 *   npm run bench -- --only w3                      # one workload; the others keep their figures
 *   npm run bench -- --workloads w1,w2 --engines clayflow,pytorch --out /tmp/b.md
 *   npm run bench:memory                            # the 10,000-step memory-flatness run
 *
 * The raw results live in bench/results.json (per workload: the run it came from, its spec at
 * the time, every engine's result); the document is rendered from that file whole. A run of
 * some workloads replaces only their entries, so the others keep their figures and their run's
 * date, load and machine, which the document states per run. With --out elsewhere the results
 * go next to that file (FILE.results.json, seeded from bench/results.json).
 *
 * Environment: CLAYFLOW_BENCH_PYTHON picks the Python that has torch (default: /usr/bin/python3,
 * then python3 on the PATH).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem, availableParallelism } from "node:os";
import { join } from "node:path";
import {
  ROOT,
  isImageModel,
  loadSpec,
  processesOf,
  repetitionsOf,
  secondsPerRepOf,
  writeData,
  type EngineResult,
  type RepFigures,
  type Spec,
  type VectorModelSpec,
  type Workload,
} from "./common.js";
import { MEMORY_END, MEMORY_START } from "./memory-section.js";

// ---- command line ----
const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const DEFAULT_OUT = join(ROOT, "docs", "BENCHMARKS.md");
const DEFAULT_RESULTS = join(ROOT, "bench", "results.json");
const outPath = flag("out") ?? DEFAULT_OUT;
const resultsPath =
  flag("results") ??
  (outPath === DEFAULT_OUT ? DEFAULT_RESULTS : `${outPath.replace(/\.md$/, "")}.results.json`);
const onlyWorkloads = (flag("only") ?? flag("workloads"))?.split(",");
const onlyEngines = flag("engines")?.split(",");
/** Run nothing: render the document again from the stored results. */
const renderOnly = argv.includes("--render-only");
const processTimeout = Number(flag("timeout") ?? 300) * 1000;

// ---- engines ----
interface Engine {
  id: string;
  label: string;
  /** Why it is skipped (not installed), or null. */
  skip: string | null;
  /** `first`: the workload's first process of this engine (clayflow profiles only there). */
  command: (
    w: Workload,
    dataDir: string,
    out: string,
    first: boolean,
  ) => { cmd: string; args: string[]; env?: Record<string, string | undefined> };
}

function findPython(): { python: string | null; why: string } {
  const candidates = [process.env.CLAYFLOW_BENCH_PYTHON, "/usr/bin/python3", "python3"].filter(
    Boolean,
  ) as string[];
  for (const py of candidates) {
    const r = spawnSync(py, ["-c", "import torch, numpy"], { encoding: "utf8" });
    if (r.status === 0) return { python: py, why: "" };
  }
  return {
    python: null,
    why: `PyTorch not installed (no Python among ${candidates.join(", ")} imports torch and numpy)`,
  };
}

function resolves(pkg: string): boolean {
  try {
    import.meta.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

const { python, why: pythonWhy } = findPython();
const node = process.execPath;
const built = (f: string) => join(ROOT, "build", "bench", f);
const tfjsMissing = resolves("@tensorflow/tfjs")
  ? null
  : "TensorFlow.js not installed (npm install)";
const tfjsWasmMissing =
  tfjsMissing ??
  (resolves("@tensorflow/tfjs-backend-wasm")
    ? null
    : "@tensorflow/tfjs-backend-wasm not installed");
const cores = availableParallelism();

const ALL_ENGINES: Engine[] = [
  {
    id: "clayflow",
    label: `clayflow (policy: ${cores} threads)`,
    skip: null,
    command: (w, d, out, first) => ({
      cmd: node,
      args: [
        built("engine-clayflow.js"),
        "--workload",
        w.id,
        "--data",
        d,
        "--out",
        out,
        ...(w.train && first ? ["--profile"] : []),
      ],
      env: { CLAYFLOW_THREADS: undefined },
    }),
  },
  {
    id: "clayflow-1t",
    label: "clayflow (CLAYFLOW_THREADS=1)",
    skip: null,
    command: (w, d, out) => ({
      cmd: node,
      args: [built("engine-clayflow.js"), "--workload", w.id, "--data", d, "--out", out],
      env: { CLAYFLOW_THREADS: "1" },
    }),
  },
  {
    id: "pytorch",
    label: "PyTorch (2 threads)",
    skip: python ? null : pythonWhy,
    command: (w, d, out) => ({
      cmd: python!,
      args: [join(ROOT, "bench", "peer_torch.py"), "--workload", w.id, "--data", d, "--out", out],
    }),
  },
  {
    id: "tfjs-cpu",
    label: "TensorFlow.js cpu",
    skip: tfjsMissing,
    command: (w, d, out) => ({
      cmd: node,
      args: [
        built("peer-tfjs.js"),
        "--backend",
        "cpu",
        "--workload",
        w.id,
        "--data",
        d,
        "--out",
        out,
      ],
    }),
  },
  {
    id: "tfjs-wasm",
    label: "TensorFlow.js wasm",
    skip: tfjsWasmMissing,
    command: (w, d, out) => ({
      cmd: node,
      args: [
        built("peer-tfjs.js"),
        "--backend",
        "wasm",
        "--workload",
        w.id,
        "--data",
        d,
        "--out",
        out,
      ],
    }),
  },
];
const ENGINES = ALL_ENGINES.filter((e) => !onlyEngines || onlyEngines.includes(e.id));
// Run order: PyTorch right after clayflow (policy threads), so the pair the targets compare runs
// back to back under the same load (and the peer finds clayflow's initial weights); tables keep
// the order above.
const RUN_ORDER = ["clayflow", "pytorch"];
const runOrder = [...ENGINES].sort((a, b) => rank(a.id) - rank(b.id));
function rank(id: string): number {
  const i = RUN_ORDER.indexOf(id);
  return i >= 0 ? i : RUN_ORDER.length + ALL_ENGINES.findIndex((e) => e.id === id);
}

// ---- run ----
const spec: Spec = loadSpec();
const workloads = renderOnly
  ? []
  : spec.workloads.filter((w) => !onlyWorkloads || onlyWorkloads.includes(w.id));
const work = mkdtempSync(join(tmpdir(), "clayflow-bench-"));
const dataDir = join(work, "data");
await writeData(
  workloads.filter((w) => !w.unavailable),
  dataDir,
);
const started = Date.now();
const loadBefore = loadavg();
const log = (s: string) => process.stderr.write(s + "\n");

let torchConfig = "";
if (python && !renderOnly) {
  const r = spawnSync(python, ["-c", "import torch; print(torch.__config__.show())"], {
    encoding: "utf8",
  });
  torchConfig = r.stdout.trim();
  log("torch.__config__.show():\n" + torchConfig);
  log(`  mentions OpenBLAS: ${/openblas/i.test(torchConfig) ? "yes" : "no"}`);
}

type Outcome = {
  engine: { id: string; label: string };
  result: EngineResult | null;
  skipped?: string;
  failed?: string;
  seconds: number;
};
const outcomes = new Map<string, Outcome[]>();

for (const w of workloads) {
  if (w.unavailable) {
    log(`${w.id}: ${w.unavailable}`);
    continue;
  }
  const list: Outcome[] = [];
  outcomes.set(w.id, list);
  const byEngine = new Map<string, Outcome>();
  for (const engine of runOrder) {
    // Not installed, or not written for this workload: reported the same way.
    const skip = engine.skip ?? w.skip?.[engine.id] ?? null;
    const outcome: Outcome = skip
      ? { engine, result: null, skipped: skip, seconds: 0 }
      : { engine, result: null, seconds: 0 };
    list.push(outcome);
    byEngine.set(engine.id, outcome);
  }
  const processes = processesOf(w);
  for (let round = 0; round < processes; round++) {
    for (const engine of runOrder) {
      const outcome = byEngine.get(engine.id)!;
      if (outcome.skipped || outcome.failed) continue;
      const out = join(work, `${w.id}-${engine.id}-${round}.json`);
      const { cmd, args, env } = engine.command(w, dataDir, out, round === 0);
      const t0 = Date.now();
      log(
        `${w.id} ${engine.id}${processes > 1 ? ` (process ${round + 1} of ${processes})` : ""} ...`,
      );
      const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
      for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k];
      const r = spawnSync(cmd, args, {
        env: childEnv as NodeJS.ProcessEnv,
        encoding: "utf8",
        timeout: processTimeout,
        maxBuffer: 64 << 20,
      });
      const seconds = (Date.now() - t0) / 1000;
      outcome.seconds += seconds;
      if (r.status === 0 && existsSync(out)) {
        const result = JSON.parse(readFileSync(out, "utf8")) as EngineResult;
        log(
          `  ${seconds.toFixed(0)} s: ${JSON.stringify(result.reps.map((f) => Object.fromEntries(Object.entries(f).map(([k, v]) => [k, Math.round(v as number)]))))}`,
        );
        // Later processes add their repetitions and peak memory; the rest (checks, profile) is the first's.
        if (outcome.result === null) outcome.result = result;
        else {
          outcome.result.reps.push(...result.reps);
          outcome.result.peakRssMiB = Math.max(outcome.result.peakRssMiB, result.peakRssMiB);
        }
      } else {
        const why = r.error?.message.includes("ETIMEDOUT")
          ? `did not finish within the ${processTimeout / 1000} s limit`
          : `exited with ${r.status ?? r.signal}: ${
              (r.stderr || "")
                .trim()
                .split("\n")
                .filter((l) => /error/i.test(l))
                .slice(-1)[0] ?? (r.stderr || "").trim().split("\n").slice(-1)[0]
            }`;
        // A process that fails once makes the engine's figures for this workload untrustworthy.
        outcome.result = null;
        outcome.failed = round > 0 ? `process ${round + 1} of ${processes} ${why}` : why;
        log(`  failed: ${why}`);
      }
    }
  }
}
const totalSeconds = (Date.now() - started) / 1000;
writeFileSync(join(work, "all.json"), JSON.stringify(Object.fromEntries(outcomes), null, 1));

// ---- stored results: this run's workloads replace their entries ----
interface RunInfo {
  /** Start, ISO UTC. */
  started: string;
  minutes: number;
  loadBefore: number[];
  loadAfter: number[];
  machine: string;
  versions: { node: string; jax: string; tfjs: string };
}
interface StoredWorkload {
  run: string;
  spec: Workload;
  outcomes: Outcome[];
}
interface Stored {
  comment?: string;
  runs: Record<string, RunInfo>;
  workloads: Record<string, StoredWorkload>;
}

const jaxVersion = JSON.parse(
  readFileSync(join(ROOT, "node_modules/@jax-js/jax/package.json"), "utf8"),
).version;
const tfjsVersion = tfjsMissing
  ? "not installed"
  : JSON.parse(readFileSync(new URL(import.meta.resolve("@tensorflow/tfjs/package.json")), "utf8"))
      .version;
const previous = [resultsPath, DEFAULT_RESULTS].find((f) => existsSync(f));
const stored: Stored = previous
  ? JSON.parse(readFileSync(previous, "utf8"))
  : { runs: {}, workloads: {} };
stored.comment =
  "Written by bench/run.ts: the raw results behind docs/BENCHMARKS.md, per workload from the run that last measured it.";
const runId = new Date(started).toISOString().slice(0, 16).replace("T", " ");
if (outcomes.size > 0) {
  stored.runs[runId] = {
    started: new Date(started).toISOString(),
    minutes: totalSeconds / 60,
    loadBefore: loadBefore.map((x) => +x.toFixed(2)),
    loadAfter: loadavg().map((x) => +x.toFixed(2)),
    machine: `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores (${cores} available), ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    versions: { node: process.version, jax: jaxVersion, tfjs: tfjsVersion },
  };
}
for (const w of workloads) {
  const list = outcomes.get(w.id);
  const tableOrder = (o: Outcome) => ALL_ENGINES.findIndex((e) => e.id === o.engine.id);
  if (list) {
    const sorted = [...list].sort((a, b) => tableOrder(a) - tableOrder(b));
    stored.workloads[w.id] = {
      run: runId,
      spec: w,
      outcomes: sorted.map((o) => ({ ...o, engine: { id: o.engine.id, label: o.engine.label } })),
    };
  } else delete stored.workloads[w.id];
}
for (const id of Object.keys(stored.runs)) {
  if (!Object.values(stored.workloads).some((sw) => sw.run === id)) delete stored.runs[id];
}
writeFileSync(resultsPath, JSON.stringify(stored, null, 1) + "\n");
// Everything below renders the stored results.
outcomes.clear();
for (const [id, sw] of Object.entries(stored.workloads)) outcomes.set(id, sw.outcomes);
/** The spec a workload's stored figures were measured with (else the current one). */
const specOf = (w: Workload) => stored.workloads[w.id]?.spec ?? w;

// ---- statistics ----
const KEYS: (keyof RepFigures)[] = ["train", "logProb", "sample"];
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const values = (r: EngineResult | null, k: keyof RepFigures) =>
  (r?.reps ?? [])
    .map((f) => f[k])
    .filter((v): v is number => typeof v === "number" && Number.isFinite(v));
const med = (r: EngineResult | null, k: keyof RepFigures) => {
  const v = values(r, k);
  return v.length ? median(v) : null;
};
const fmtRate = (x: number) =>
  x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(3);
function cell(o: Outcome, k: keyof RepFigures, w: Workload): string {
  if (!w[k]) return "";
  if (o.skipped) return "skipped";
  if (o.failed) return "failed";
  if (o.result!.status !== "ok") return "cannot run";
  const cannot = o.result!.cannot?.[k];
  if (cannot) return `cannot run: ${cannot}`;
  const v = values(o.result, k);
  if (!v.length) return "";
  const note = o.result!.notes?.[k] ? " (est.)" : "";
  if (v.length === 1) return `${fmtRate(v[0])}${note}`;
  const spread = (100 * (Math.max(...v) - Math.min(...v))) / median(v);
  return `${fmtRate(median(v))} ±${(spread / 2).toFixed(0)}%${note}`;
}
const ratio = (a: number | null, b: number | null) =>
  a !== null && b !== null && b > 0 ? a / b : null;
const fmtRatio = (x: number | null) =>
  x === null ? "–" : `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}x`;

// ---- versions and machine ----
const anyResult = (id: string) =>
  [...outcomes.values()].flat().find((o) => o.engine.id === id && o.result)?.result ?? null;
const torchInfo = anyResult("pytorch")?.info;
const wasmThreads = anyResult("tfjs-wasm")?.info.threads;
const clayInfo = anyResult("clayflow")?.info;

// ---- the document ----
const fmtLoad = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(" / ");
const runDate = (id: string) => `${id} UTC`;
/** Which run each workload's figures come from, with that run's machine and load. */
function runsText(): string {
  const ids = Object.keys(stored.runs).sort();
  const machines = new Set(ids.map((id) => stored.runs[id].machine));
  const lines = ids.map((id) => {
    const r = stored.runs[id];
    const ws = Object.entries(stored.workloads)
      .filter(([, sw]) => sw.run === id)
      .map(([w]) => w)
      .sort();
    return `- ${ws.join(", ")}: run on ${runDate(id)}, ${r.minutes.toFixed(1)} min; load average ${fmtLoad(r.loadBefore)} (1/5/15 min) at the start, ${fmtLoad(r.loadAfter)} at the end${machines.size > 1 ? `; ${r.machine}` : ""}.`;
  });
  const machine = machines.size === 1 ? `**Machine:** ${[...machines][0]}.\n\n` : "";
  return `${machine}**Runs** (every engine of a workload runs back to back in one run, so they share its load; \`--only\` re-runs some workloads and keeps the others' figures):\n\n${lines.join("\n")}`;
}
function versionsText(): string {
  const ids = Object.keys(stored.runs).sort();
  const text = (v: RunInfo["versions"]) =>
    `Node ${v.node}; @jax-js/jax ${v.jax}; TensorFlow.js ${v.tfjs}`;
  const distinct = [...new Set(ids.map((id) => text(stored.runs[id].versions)))];
  if (distinct.length <= 1)
    return distinct[0] ?? text({ node: process.version, jax: jaxVersion, tfjs: tfjsVersion });
  return ids.map((id) => `${runDate(id)}: ${text(stored.runs[id].versions)}`).join("; ");
}
const md: string[] = [];
md.push(`# Benchmarks

Throughput of clayflow against PyTorch and TensorFlow.js on the same workloads, the same data
and the same architecture and initialisation scheme. Made by \`npm run bench\` (workloads in
\`bench/workloads.json\`, harness in \`bench/\`); the memory-flatness run below by
\`npm run bench:memory\`.

${runsText()}

**Versions:** ${versionsText()} (clayflow engine ${clayInfo?.device ?? "wasm"});
PyTorch ${torchInfo?.torch ?? "not installed"}${torchInfo ? ` (Python ${torchInfo.python}, NumPy ${torchInfo.numpy})` : ""}.
${torchInfo ? `PyTorch runs on ${torchInfo.threads} threads (\`torch.set_num_threads(2)\`). \`torch.__config__.show()\` reports \`BLAS_INFO=${torchInfo["config BLAS_INFO"]}\` and ${torchInfo["config mentions OpenBLAS"] === "yes" ? "mentions" : "does **not** mention"} OpenBLAS (Debian's build links the generic \`libblas.so.3\`); the BLAS actually loaded in the process is ${torchInfo["BLAS loaded"]}.` : ""}
TensorFlow.js wasm runs on ${wasmThreads ?? "?"} thread(s) (the Node build of the wasm backend is single-threaded); the cpu backend is plain JavaScript on one thread.

## How each engine is run

- **clayflow**: \`makeTrainStep\` as \`fit\` uses it: one jitted step (loss, gradient, Adam, the
  non-finite guard) on the flat parameter vector with fixed shapes, reading back only the loss
  each step (w3: the same update after a gradient accumulated over micro-batches, see there);
  log-density and sampling are jitted functions with the parameters as arguments.
  Two rows: threads as the engine policy gives (CLAYFLOW_THREADS unset = core count) and
  CLAYFLOW_THREADS=1. The warm-up includes compilation.
- **PyTorch**: eager, \`torch.optim.Adam\`, \`loss.item()\` each step; evaluation under \`torch.no_grad()\`.
- **TensorFlow.js**: eager, \`tf.train.adam\` through \`optimizer.minimize\`, loss read back each step.
- Every engine: the same data files (written once per run), the same batches in the same order,
  the same architecture (RealNVP: half masks, MLP with He-uniform hidden layers and a zero output
  layer, s = 3 tanh(raw / 3); MAF: MADE degrees and masks of \`src/nn/made.ts\` with
  natural/reversed orders, N(0, 1)/sqrt(fan-in) hidden weights, zero output layer; Glow:
  \`bench/torch_glow.py\` mirrors \`src/models/image.ts\` layer by layer, with the same parameter
  leaves and shapes, so clayflow's weights load into it), Adam with the same lr, betas and eps.
  Each engine and workload runs in its own process (one per round where a workload runs
  several); peak RSS is the largest of those processes'
  \`getrusage\` maxrss (Node \`process.resourceUsage().maxRSS\`, Python \`resource.getrusage\`),
  so it includes the runtime itself.
- Figures are samples per second after the warm-up: training = batch rows per second; log-density
  = rows evaluated per second (batch given per workload); sampling = samples drawn per second.
  Each is the median of all repetitions (${spec.repetitions} per process unless the workload says
  otherwise; where a workload runs each engine in several processes, in rounds with the other
  engines, the repetitions of all of them) with ± half the spread (max − min) relative to the
  median; a repetition stops after ${spec.secondsPerRep} s (unless the workload says otherwise).
  "est." = estimated from a smaller call because one full call would exceed ${spec.secondsPerCallCap} s.
- Ratios are clayflow (policy threads) ÷ peer, from medians of the same run. Within a run each
  workload's engines run back to back, one process at a time: clayflow (policy threads) first,
  PyTorch right after it, then the others (runs before 2026-11-29 10:40 UTC: in table order).
`);

for (const current of spec.workloads) {
  const w = specOf(current);
  md.push(`## ${w.id}: ${w.title}\n`);
  if (current.unavailable) {
    md.push(`${current.unavailable[0].toUpperCase()}${current.unavailable.slice(1)}.\n`);
    continue;
  }
  if (!stored.workloads[w.id]) {
    md.push(`Not run yet: \`npm run bench -- --only ${w.id}\`.\n`);
    continue;
  }
  const parts: string[] = [];
  if (w.train) {
    const o = w.optimizer!;
    const micro = w.train.microbatch;
    parts.push(
      `training batch ${w.train.batch}` +
        (micro && micro < w.train.batch
          ? ` (clayflow accumulates the gradient over ${w.train.batch / micro} jitted passes of ${micro} rows, then one jitted update; the peers take the ${w.train.batch} rows in one pass)`
          : "") +
        `, Adam lr ${o.lr}` +
        (o.warmupSteps
          ? ` with the linear warm-up over ${o.warmupSteps} steps of \`clayflow train\``
          : "") +
        (o.clipNorm ? ` and gradient clipping at global norm ${o.clipNorm}` : "") +
        `, ${w.train.warmup} warm-up steps, up to ${w.train.steps} timed steps per repetition`,
    );
  }
  if (w.logProb) parts.push(`log-density of ${w.logProb.batch} rows per call`);
  if (w.sample)
    parts.push(
      `sampling ${w.sample.n.toLocaleString("en-US")} per call${w.sample.warmupN ? ` (eager engines warm up with ${w.sample.warmupN})` : ""}`,
    );
  if (w.data?.kind === "fashion-mnist") {
    parts.push(
      `data: the first ${w.data.rows.toLocaleString("en-US")} real FashionMNIST training images (Debian \`dataset-fashion-mnist\`, \`/usr/share/datasets/fashion-mnist\`), dequantised once, x = (pixel + u) / 256`,
    );
  } else if (w.data) parts.push(`data: ${w.data.kind}, ${w.data.rows} rows`);
  const secs = w.secondsPerRep ? ` (a repetition stops after ${secondsPerRepOf(spec, w)} s)` : "";
  const processes = processesOf(w);
  const reps =
    processes > 1
      ? `${processes} processes per engine in rounds, ${repetitionsOf(spec, w)} repetitions each`
      : `${repetitionsOf(spec, w)} repetitions`;
  md.push(`${parts.join("; ")}; ${reps}${secs}; run of ${runDate(stored.workloads[w.id].run)}.\n`);
  const list = outcomes.get(w.id) ?? [];
  const clay = list.find((o) => o.engine.id === "clayflow")?.result ?? null;
  const torch = list.find((o) => o.engine.id === "pytorch")?.result ?? null;
  const cols = KEYS.filter((k) => w[k]);
  const head = {
    train: "training samples/s",
    logProb: "log-density samples/s",
    sample: "sampling samples/s",
  };
  md.push(
    `| engine | ${cols.map((k) => head[k]).join(" | ")} | peak RSS MiB | clayflow ÷ engine (${cols.map((k) => ({ train: "train", logProb: "log-density", sample: "sampling" })[k]).join(" / ")}) |`,
  );
  md.push(`|---|${cols.map(() => "---:").join("|")}|---:|---|`);
  for (const o of list) {
    const rss = o.result ? o.result.peakRssMiB.toFixed(0) : "";
    const ratios =
      o.engine.id === "clayflow"
        ? ""
        : cols.map((k) => fmtRatio(ratio(med(clay, k), med(o.result, k)))).join(" / ");
    const label = o.skipped
      ? `${o.engine.label}: skipped (${o.skipped})`
      : o.failed
        ? `${o.engine.label}: cannot run (${o.failed})`
        : o.engine.label;
    md.push(`| ${label} | ${cols.map((k) => cell(o, k, w)).join(" | ")} | ${rss} | ${ratios} |`);
  }
  const notes = list.flatMap((o) =>
    Object.entries(o.result?.notes ?? {}).map(([k, v]) => `${o.engine.label}, ${k}: ${v}.`),
  );
  const losses = list
    .filter((o) => o.result?.warmupLoss !== undefined)
    .map((o) => `${o.engine.id} ${o.result!.warmupLoss!.toFixed(3)}`);
  md.push("");
  if (clay?.check || torch?.check) md.push(checkText(w, clay, torch));
  else if (losses.length)
    md.push(
      `Mean training loss over the ${w.train!.warmup} warm-up steps (same batches; a check that the engines compute the same model): ${losses.join(", ")}.\n`,
    );
  if (notes.length) md.push(notes.map((n) => `- ${n}`).join("\n") + "\n");
}

/** The same-model check of an image workload: parameter counts, losses, clayflow's weights in PyTorch. */
function checkText(w: Workload, clay: EngineResult | null, torch: EngineResult | null): string {
  const c = clay?.check ?? {};
  const t = torch?.check ?? {};
  const num = (v: unknown, digits = 3) =>
    typeof v === "number"
      ? Number.isInteger(v)
        ? v.toLocaleString("en-US")
        : v.toFixed(digits)
      : "–";
  const initRows = w.initRows ?? w.train?.batch;
  const rows: [string, unknown, unknown][] = [
    ["parameters", c["clayflow parameters"], t["pytorch parameters"]],
    [
      `loss at initialisation on the first ${initRows} images (each engine's own init), nats per image`,
      c["clayflow initial loss (first batch)"],
      t["pytorch initial loss (first batch)"],
    ],
    [
      "loss of training step 1",
      c["clayflow loss of training step 1"],
      t["pytorch loss of training step 1"],
    ],
    [`mean loss over the ${w.train?.warmup} warm-up steps`, clay?.warmupLoss, torch?.warmupLoss],
  ];
  const same =
    c["clayflow parameters"] !== undefined && c["clayflow parameters"] === t["pytorch parameters"];
  const out = [
    `Same model? (the ActNorm layers of both engines are initialised from the first ${initRows} images; the loss is the mean negative log-density of x in nats per image, ` +
      `bits/dim = (loss / ${isImageModel(w.model!) ? w.model.shape.reduce((a, d) => a * d, 1) : "D"} + ln 256) / ln 2)\n`,
    "| check | clayflow | PyTorch |",
    "|---|---:|---:|",
    ...rows.map(([name, a, b]) => `| ${name} | ${num(a)} | ${num(b)} |`),
    "",
    `Parameter counts ${same ? "are **equal**" : "**differ**"}.` +
      (t["max |log p difference| per image (nats)"] !== undefined
        ? ` PyTorch with clayflow's initial weights loaded (\`load_clayflow\` in bench/torch_glow.py) gives a loss of ${num(t["pytorch loss with clayflow's initial weights"], 4)} ` +
          `against clayflow's ${num(t["clayflow's own loss of those weights"], 4)} on the same images; the largest per-image difference in log p is ` +
          `${num(t["max |log p difference| per image (nats)"], 4)} nats (relative ${Number(t["max relative difference"]).toExponential(1)}), float32 rounding.`
        : t["clayflow weights"]
          ? ` clayflow's initial weights were not compared: ${t["clayflow weights"]}.`
          : ""),
    "",
  ];
  return out.join("\n");
}

// ---- targets ----
const wr = (id: string, engine: string) =>
  outcomes.get(id)?.find((o) => o.engine.id === engine)?.result ?? null;
const skippedWhy = (id: string, engine: string) =>
  outcomes.get(id)?.find((o) => o.engine.id === engine)?.skipped;
/** Workloads with stored figures, with the spec they were measured with. */
const ran = spec.workloads.filter((w) => !w.unavailable && stored.workloads[w.id]).map(specOf);
interface Target {
  text: string;
  ratio: number | null;
  need: number;
  why?: string;
}
const targets: Target[] = [];
const trainTarget = (id: string, need: number) => {
  const r = ratio(med(wr(id, "clayflow"), "train"), med(wr(id, "pytorch"), "train"));
  targets.push({
    text: `${id} training throughput >= ${need.toFixed(1)}x PyTorch`,
    ratio: r,
    need,
    why: r === null ? "not measured" : undefined,
  });
};
trainTarget("w1", 1.0);
trainTarget("w2", 0.7);
trainTarget("w3", 0.5);
for (const peer of ["tfjs-cpu", "tfjs-wasm"]) {
  for (const w of ran) {
    for (const k of KEYS.filter((kk) => w[kk])) {
      const r = ratio(med(wr(w.id, "clayflow"), k), med(wr(w.id, peer), k));
      const cannot = wr(w.id, peer)?.cannot?.[k];
      targets.push({
        text: `${w.id} ${{ train: "training", logProb: "log-density", sample: "sampling" }[k]} >= 10x TensorFlow.js ${peer.slice(5)}`,
        ratio: r,
        need: 10,
        why:
          r === null
            ? cannot
              ? `TF.js cannot run it (${cannot})`
              : skippedWhy(w.id, peer)
                ? `skipped (${skippedWhy(w.id, peer)})`
                : "not measured"
            : undefined,
      });
    }
  }
}
md.push(`## Targets (from the issue)

clayflow (policy threads) against each peer, ratio of medians from the run that measured the workload.

| target | measured | |
|---|---:|---|
${targets.map((t) => `| ${t.text} | ${t.ratio === null ? "–" : fmtRatio(t.ratio)} | ${t.ratio === null ? t.why : t.ratio >= t.need ? "met" : "**missed**"} |`).join("\n")}
`);

// ---- what bounds the missed TensorFlow.js targets ----
{
  const profiled = ran
    .map((w) => wr(w.id, "clayflow")?.profile)
    .filter((p): p is Record<string, number | string> => !!p);
  const best = (key: string) =>
    Math.max(0, ...profiled.map((p) => Number(p[key])).filter((v) => Number.isFinite(v)));
  const ceiling = best("matmul 1024 GFLOP/s");
  const chained = Math.min(
    ...profiled
      .map((p) => Number(p["chained kernel µs"]))
      .filter((v) => Number.isFinite(v) && v > 0),
  );
  const lines: string[] = [];
  for (const peer of ["tfjs-cpu", "tfjs-wasm"]) {
    for (const w of ran) {
      for (const k of KEYS.filter((kk) => w[kk])) {
        const clay = med(wr(w.id, "clayflow"), k);
        const other = med(wr(w.id, peer), k);
        const perRow = flopsPerRow(w, k);
        if (
          clay === null ||
          other === null ||
          perRow === null ||
          clay >= 10 * other ||
          !(ceiling > 0)
        )
          continue;
        const need = 10 * other;
        const gf = (rate: number) => (rate * perRow) / 1e9;
        const most = (ceiling * 1e9) / perRow;
        const what = { train: "training", logProb: "log-density", sample: "sampling" }[k];
        let text =
          `- ${w.id} ${what} (${fmtRatio(clay / other)} TF.js ${peer.slice(5)}): ${(perRow / 1e6).toPrecision(3)} MFLOP per sample` +
          `${k === "train" ? " (forward and backward)" : ""}; ` +
          `10x would be ${fmtRate(need)} samples/s = ${gf(need).toFixed(1)} GFLOP/s, clayflow sustains ${gf(clay).toFixed(1)}. `;
        if (gf(need) > ceiling) {
          text += `**Out of reach of this engine:** with every FLOP at its best matmul rate (${ceiling.toFixed(1)} GFLOP/s) clayflow would reach at most ${fmtRate(most)} samples/s, ${fmtRatio(most / other)}.`;
        } else {
          text += `Not excluded by arithmetic (${((100 * gf(need)) / ceiling).toFixed(0)}% of the engine's best matmul rate).`;
          const p = wr(w.id, "clayflow")?.profile;
          const kernels = p ? Number(p["full train step kernels/step"]) : NaN;
          if (k === "train" && Number.isFinite(kernels) && Number.isFinite(chained)) {
            const allowed = (1000 * w.train!.batch) / need;
            const floor = (kernels * chained) / 1000;
            text +=
              ` A step may then take ${allowed.toFixed(2)} ms; its ${Math.round(kernels)} kernels cost ${floor.toFixed(2)} ms at the dispatch floor alone` +
              (floor >= allowed
                ? ` (**more than allowed**: out of reach at this kernel count).`
                : `, leaving ${(allowed - floor).toFixed(2)} ms for the arithmetic, i.e. ${((gf(need) * allowed) / (allowed - floor)).toFixed(1)} GFLOP/s.`);
          }
        }
        lines.push(text);
      }
    }
  }
  if (lines.length) {
    md.push(`## What bounds the missed TensorFlow.js targets

Arithmetic from the layer widths (multiply-adds x 2 of the dense layers or convolutions; training = 3x
the forward, since the backward pass costs about twice the forward), against two ceilings measured in
clayflow's own processes of this run: the engine's best matmul (a jitted 1024 x 1024 x 1024 matmul,
${ceiling.toFixed(1)} GFLOP/s) and its dispatch floor (a jitted chain of 200 dependent kernels on 4
numbers, ${Number.isFinite(chained) ? chained.toFixed(1) : "–"} µs per kernel). A target whose arithmetic alone needs more than the best matmul rate
cannot be met with this engine, however the model is written.

${lines.join("\n")}
`);
  }
}

// ---- profile of the missed training targets ----
const profiles = ran
  .filter((w) => w.train)
  .map((w) => ({ w, p: wr(w.id, "clayflow")?.profile, torch: med(wr(w.id, "pytorch"), "train") }))
  .filter((x) => x.p);
const missed = targets.some((t) => t.ratio !== null && t.ratio < t.need);
if (profiles.length) {
  md.push(`## Where clayflow's training time goes (profile)

Measured in the clayflow (policy threads) process right after the timed runs, on the same
batches: the loss alone (jitted forward), loss and gradient (jitted \`valueAndGradFlat\`), and the
full train step; kernels = wasm kernel dispatches per step, counted by wrapping the engine's worker
shim (chunks = the pieces they are split into across threads). "tiny kernel" is one jitted
one-kernel call on 4 numbers with its read-back: the fixed cost under every step.
${missed ? "" : "\nNo target was missed in this run; kept for reference.\n"}
| workload | forward loss ms | loss+grad ms | full step ms | optimizer + guard ms | kernels (fwd / grad / step) | chunks per step | tiny kernel ms | PyTorch ms/step |
|---|---:|---:|---:|---:|---|---:|---:|---:|
${profiles
  .map(({ w, p, torch }) => {
    const n = (k: string) => Number(p![k]);
    const k = (key: string) => Math.round(n(key));
    return `| ${w.id} | ${n("forward loss ms/step").toFixed(2)} | ${n("loss+grad ms/step").toFixed(2)} | ${n("full train step ms/step").toFixed(2)} | ${n("full train step ms/step") >= n("loss+grad ms/step") ? (n("full train step ms/step") - n("loss+grad ms/step")).toFixed(2) : "≈ 0 (within noise)"} | ${k("forward loss kernels/step")} / ${k("loss+grad kernels/step")} / ${k("full train step kernels/step")} | ${k("full train step chunks/step")} | ${n("tiny kernel ms/step").toFixed(3)} | ${torch ? ((1000 * w.train!.batch) / torch).toFixed(2) : "–"} |`;
  })
  .join("\n")}
`);
  // Generated reading of the profile, so that it stays true on a re-run.
  for (const { w, p, torch } of profiles) {
    const n = (k: string) => Number(p![k]);
    const full = n("full train step ms/step");
    const grad = n("loss+grad ms/step");
    const fwd = n("forward loss ms/step");
    const kernels = Math.round(n("full train step kernels/step"));
    const tiny = n("tiny kernel ms/step");
    const torchMs = torch ? (1000 * w.train!.batch) / torch : null;
    const accumulated = Number(p!.microbatch) < w.train!.batch;
    // With accumulation the rest also holds the host batch and the waits between passes; the
    // three figures are timed separately, so under load the difference carries their noise.
    const rest = accumulated
      ? `and the rest of the step (${Math.round(kernels - n("loss+grad kernels/step"))} kernels: Adam and the guard; also the host batch and the waits between passes; ` +
        `a difference of separately timed figures, so it carries their noise) ${Math.max(0, full - grad).toFixed(2)} ms`
      : `and Adam plus the guard ${Math.max(0, full - grad).toFixed(2)} ms`;
    md.push(
      `- ${w.id}: of ${full.toFixed(2)} ms per step, loss + gradient take ${grad.toFixed(2)} ms (${((100 * grad) / full).toFixed(0)}%; the forward ` +
        `alone ${fwd.toFixed(2)} ms, so the backward pass costs ${(grad / fwd).toFixed(1)}x the forward), ${rest}. The step runs ${kernels} kernels, ${((full / kernels) * 1000).toFixed(0)} µs each on average ` +
        `(a one-kernel call costs ${(tiny * 1000).toFixed(0)} µs with its read-back).` +
        (torchMs ? ` PyTorch takes ${torchMs.toFixed(2)} ms per step.` : ""),
    );
  }
  md.push("");
  for (const { w, p, torch } of profiles) if (p!["top kernels"]) md.push(kernelText(w, p!, torch));
  md.push(`<!-- notes:start -->\n${readNotes()}\n<!-- notes:end -->\n`);
}

// ---- memory section (kept from the last \`npm run bench:memory\`) ----
md.push(`## Memory flatness (workload w1, 10,000 training steps)\n`);
md.push(
  readSection(MEMORY_START, MEMORY_END) ??
    `${MEMORY_START}\nNot run yet: \`npm run bench:memory\` (a few minutes) fills this section.\n${MEMORY_END}`,
);
md.push(`
## Command

\`\`\`
npm run bench            # builds bench/ with tsconfig.bench.json, runs everything, writes docs/BENCHMARKS.md
npm run bench:memory     # the memory-flatness run; updates its section of docs/BENCHMARKS.md
\`\`\`

Options: \`--only w3\` (or \`--workloads w1,w2\`: run these; the other workloads keep their stored
figures), \`--engines clayflow,clayflow-1t,pytorch,tfjs-cpu,tfjs-wasm\`, \`--render-only\` (run nothing,
render the document from the stored results), \`--out FILE\`, \`--results FILE\` (default
\`bench/results.json\`, the raw results the document is rendered from), \`--timeout SECONDS\` (per
engine process, default 300). PyTorch is looked up as
\`CLAYFLOW_BENCH_PYTHON\`, \`/usr/bin/python3\`, \`python3\`; Debian: \`apt-get install python3-torch libopenblas0-pthread\`.
Raw output of a run: one JSON file per engine and workload (printed path); \`CLAYFLOW_BENCH_SPEC=FILE\`
runs every engine on another spec (small trial runs).
`);

/** Multiply-adds x 2 of one row through a vector model's dense layers (RealNVP MLPs, MADEs), forward only. */
function denseForwardFlops(m: VectorModelSpec): number {
  // RealNVP: the MLP maps the passed half to a shift and a scale of the other half; MADE: D -> 2D.
  const pass = Math.floor(m.dim / 2);
  const widths =
    m.model === "maf" ? [m.dim, ...m.hidden, 2 * m.dim] : [pass, ...m.hidden, 2 * (m.dim - pass)];
  let macs = 0;
  for (let i = 0; i + 1 < widths.length; i++) macs += widths[i] * widths[i + 1];
  return 2 * macs * m.layers;
}

/** FLOPs per sample of a figure for clayflow: training 3x the forward; sampling (a MAF's one sweep too) 1x. */
function flopsPerRow(w: Workload, k: keyof RepFigures): number | null {
  const m = w.model;
  if (!m) return null;
  const forward = isImageModel(m) ? glowForwardFlops(w) : denseForwardFlops(m);
  if (!forward) return null;
  if (k === "train") return 3 * forward;
  return forward;
}

/** Multiply-adds x 2 of one image through a Glow's convolutions (3x3 ResNets and 1x1 LU maps), forward only. */
function glowForwardFlops(w: Workload): number | null {
  const m = w.model;
  if (!m || !isImageModel(m)) return null;
  let [h, wd, c] = m.shape;
  let total = 0;
  // ResNet on `pixels` positions: conv_in, 2 convs per block, conv_out, all 3x3.
  const resnet = (
    pixels: number,
    cin: number,
    cout: number,
    hidden = m.hidden,
    blocks = m.blocks,
  ) => 2 * 9 * pixels * (cin * hidden + blocks * 2 * hidden * hidden + hidden * cout);
  // Variational dequantisation: a 1-block ResNet at half the width (at least 8) on the full image.
  if (m.dequantization === "variational")
    total += resnet(h * wd, c, 2 * c, Math.max(8, Math.ceil(m.hidden / 2)), 1);
  for (let l = 0; l < m.levels; l++) {
    h /= 2;
    wd /= 2;
    c *= 4;
    const pass = Math.ceil(c / 2);
    for (let k = 0; k < m.steps; k++) {
      const [cin, tr] = k % 2 === 0 ? [pass, c - pass] : [c - pass, pass];
      total += resnet(h * wd, cin, 2 * tr) + 2 * h * wd * c * c;
    }
    if (l < m.levels - 1) {
      total += resnet(h * wd, c / 2, c);
      c /= 2;
    }
  }
  return total;
}

/** The slowest kernels of the loss+gradient pass, and the arithmetic rate of each engine. */
function kernelText(w: Workload, p: Record<string, number | string>, torch: number | null): string {
  type Top = { hash: string; calls: number; size: number; ms: number; usPerCall: number };
  const top = JSON.parse(String(p["top kernels"])) as Top[];
  const kernelMs = Number(p["kernel time ms/step"]);
  const timedMs = Number(p["kernel-timed loss+grad ms/step"]);
  const micro = Number(p.microbatch) || w.train!.batch;
  const flops = glowForwardFlops(w);
  const hid = w.model && isImageModel(w.model) ? w.model.hidden : 64;
  const rows =
    w.model && isImageModel(w.model) ? (micro * w.model.shape[0] * w.model.shape[1]) / 4 : 0;
  const vectorHidden = w.model && !isImageModel(w.model) ? w.model.hidden[0] : 0;
  const lines = [
    `Kernels of ${w.id}'s loss + gradient pass, the slowest first (per training step of ${w.train!.batch} ${rows > 0 ? "images" : "rows"}${micro < w.train!.batch ? `, i.e. ${w.train!.batch / micro} passes of ${micro}` : ""}; ` +
      `each dispatch timed from its first chunk posted to its last chunk answered, jax-js running one dispatch at a time; "size" = elements of work, ` +
      (rows > 0
        ? `e.g. ${(rows * hid).toLocaleString("en-US")} = ${micro} x ${rows / micro} x ${hid}, a ${hid}-channel feature map of the first level). `
        : `e.g. ${(micro * vectorHidden).toLocaleString("en-US")} = ${micro} x ${vectorHidden}, the batch through one ${vectorHidden}-wide hidden layer). `) +
      `Kernels account for ${kernelMs.toFixed(0)} of the ${timedMs.toFixed(0)} ms this pass took while timed (${((100 * kernelMs) / timedMs).toFixed(0)}%; ` +
      `the rest is dispatch and JavaScript); ${p["distinct kernels"]} distinct kernels.\n`,
    "| kernel (hash) | calls per step | size | ms per step | µs per call | share of kernel time |",
    "|---|---:|---:|---:|---:|---:|",
    ...top.map(
      (k) =>
        `| ${k.hash} | ${k.calls.toFixed(0)} | ${k.size.toLocaleString("en-US")} | ${k.ms.toFixed(1)} | ${k.usPerCall.toFixed(0)} | ${((100 * k.ms) / kernelMs).toFixed(1)}% |`,
    ),
    "",
  ];
  if (flops) {
    const stepFlops = 3 * flops * w.train!.batch; // backward ~ 2x forward
    const clayMs = Number(p["full train step ms/step"]);
    const clayRate = med(wr(w.id, "clayflow"), "train");
    lines.push(
      `Arithmetic: the convolutions of this model take ${(flops / 1e6).toFixed(0)} MFLOP per image forward, so a training step of ${w.train!.batch} images ` +
        `is about ${(stepFlops / 1e9).toFixed(1)} GFLOP (backward ≈ 2x forward). At the timed throughput clayflow sustains ` +
        `${clayRate ? ((stepFlops / 1e9) * (clayRate / w.train!.batch)).toFixed(1) : "–"} GFLOP/s (${(stepFlops / 1e6 / clayMs).toFixed(1)} in the profiled step)` +
        (torch
          ? ` and PyTorch ${((stepFlops / 1e9) * (torch / w.train!.batch)).toFixed(1)} GFLOP/s`
          : "") +
        `. A ${hid}-to-${hid}-channel window matmul of one pass ([${rows}, ${hid}] x [${hid}, ${hid}]) is ${((2 * rows * hid * hid) / 1e6).toFixed(1)} MFLOP.\n`,
    );
    const peak = Number(p["matmul 1024 GFLOP/s"]);
    const window = Number(p["window matmul GFLOP/s"]);
    if (peak > 0) {
      // An upper bound on clayflow's throughput: every FLOP at the engine's best matmul rate.
      const bestRate = (peak * 1e9 * w.train!.batch) / stepFlops;
      lines.push(
        `Engine ceiling, measured in the same process: a jitted 1024 x 1024 x 1024 matmul runs at ${peak.toFixed(1)} GFLOP/s` +
          (window > 0 ? ` and the window matmul above at ${window.toFixed(1)}` : "") +
          `. Even if every FLOP of the step ran at ${peak.toFixed(1)} GFLOP/s, clayflow would train at most ${bestRate.toFixed(0)} images/s` +
          (torch
            ? `, ${(bestRate / torch).toFixed(2)}x PyTorch's measured ${torch.toFixed(0)}`
            : "") +
          ".\n",
      );
    }
  }
  return lines.join("\n");
}

function readSection(start: string, end: string): string | null {
  // A trial document (--out elsewhere) takes the hand-kept sections from the real one.
  const from = [outPath, DEFAULT_OUT].find((f) => existsSync(f));
  if (!from) return null;
  const old = readFileSync(from, "utf8");
  const a = old.indexOf(start);
  const b = old.indexOf(end);
  return a >= 0 && b > a ? old.slice(a, b + end.length) : null;
}

/** Hand-written analysis between the notes markers survives a re-run. */
function readNotes(): string {
  const kept = readSection("<!-- notes:start -->", "<!-- notes:end -->");
  return kept ? kept.slice("<!-- notes:start -->".length, -"<!-- notes:end -->".length).trim() : "";
}

writeFileSync(outPath, md.join("\n"));
log(`wrote ${outPath}; raw results in ${work}`);
