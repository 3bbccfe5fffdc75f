/**
 * The benchmark harness: runs every workload of bench/workloads.json on clayflow (threads by the
 * engine policy, and CLAYFLOW_THREADS=1), PyTorch and TensorFlow.js (cpu, wasm), each engine and
 * workload in its own process, and writes docs/BENCHMARKS.md.
 *
 *   npm run bench                                   # everything (a few minutes)
 *   npm run bench -- --workloads w1,w2 --engines clayflow,pytorch --out /tmp/b.md
 *   npm run bench:memory                            # the 10,000-step memory-flatness run
 *
 * Environment: CLAYFLOW_BENCH_PYTHON picks the Python that has torch (default: /usr/bin/python3,
 * then python3 on the PATH).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem, availableParallelism } from "node:os";
import { join } from "node:path";
import { ROOT, loadSpec, repetitionsOf, writeData, type EngineResult, type RepFigures, type Spec, type Workload } from "./common.js";
import { MEMORY_END, MEMORY_START } from "./memory-section.js";

// ---- command line ----
const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const outPath = flag("out") ?? join(ROOT, "docs", "BENCHMARKS.md");
const onlyWorkloads = flag("workloads")?.split(",");
const onlyEngines = flag("engines")?.split(",");
const processTimeout = Number(flag("timeout") ?? 300) * 1000;

// ---- engines ----
interface Engine {
  id: string;
  label: string;
  /** Why it is skipped (not installed), or null. */
  skip: string | null;
  command: (w: Workload, dataDir: string, out: string) => { cmd: string; args: string[]; env?: Record<string, string | undefined> };
}

function findPython(): { python: string | null; why: string } {
  const candidates = [process.env.CLAYFLOW_BENCH_PYTHON, "/usr/bin/python3", "python3"].filter(Boolean) as string[];
  for (const py of candidates) {
    const r = spawnSync(py, ["-c", "import torch, numpy"], { encoding: "utf8" });
    if (r.status === 0) return { python: py, why: "" };
  }
  return { python: null, why: `PyTorch not installed (no Python among ${candidates.join(", ")} imports torch and numpy)` };
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
const tfjsMissing = resolves("@tensorflow/tfjs") ? null : "TensorFlow.js not installed (npm install)";
const tfjsWasmMissing = tfjsMissing ?? (resolves("@tensorflow/tfjs-backend-wasm") ? null : "@tensorflow/tfjs-backend-wasm not installed");
const cores = availableParallelism();

const ALL_ENGINES: Engine[] = [
  {
    id: "clayflow",
    label: `clayflow (policy: ${cores} threads)`,
    skip: null,
    command: (w, d, out) => ({
      cmd: node,
      args: [built("engine-clayflow.js"), "--workload", w.id, "--data", d, "--out", out, ...(w.train ? ["--profile"] : [])],
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
    command: (w, d, out) => ({ cmd: python!, args: [join(ROOT, "bench", "peer_torch.py"), "--workload", w.id, "--data", d, "--out", out] }),
  },
  {
    id: "tfjs-cpu",
    label: "TensorFlow.js cpu",
    skip: tfjsMissing,
    command: (w, d, out) => ({ cmd: node, args: [built("peer-tfjs.js"), "--backend", "cpu", "--workload", w.id, "--data", d, "--out", out] }),
  },
  {
    id: "tfjs-wasm",
    label: "TensorFlow.js wasm",
    skip: tfjsWasmMissing,
    command: (w, d, out) => ({ cmd: node, args: [built("peer-tfjs.js"), "--backend", "wasm", "--workload", w.id, "--data", d, "--out", out] }),
  },
];
const ENGINES = ALL_ENGINES.filter((e) => !onlyEngines || onlyEngines.includes(e.id));

// ---- run ----
const spec: Spec = loadSpec();
const workloads = spec.workloads.filter((w) => !onlyWorkloads || onlyWorkloads.includes(w.id));
const work = mkdtempSync(join(tmpdir(), "clayflow-bench-"));
const dataDir = join(work, "data");
await writeData(workloads.filter((w) => !w.unavailable), dataDir);
const started = Date.now();
const loadBefore = loadavg();
const log = (s: string) => process.stderr.write(s + "\n");

let torchConfig = "";
if (python) {
  const r = spawnSync(python, ["-c", "import torch; print(torch.__config__.show())"], { encoding: "utf8" });
  torchConfig = r.stdout.trim();
  log("torch.__config__.show():\n" + torchConfig);
  log(`  mentions OpenBLAS: ${/openblas/i.test(torchConfig) ? "yes" : "no"}`);
}

type Outcome = { engine: Engine; result: EngineResult | null; skipped?: string; failed?: string; seconds: number };
const outcomes = new Map<string, Outcome[]>();

for (const w of workloads) {
  if (w.unavailable) {
    log(`${w.id}: ${w.unavailable}`);
    continue;
  }
  const list: Outcome[] = [];
  outcomes.set(w.id, list);
  for (const engine of ENGINES) {
    if (engine.skip) {
      list.push({ engine, result: null, skipped: engine.skip, seconds: 0 });
      continue;
    }
    const out = join(work, `${w.id}-${engine.id}.json`);
    const { cmd, args, env } = engine.command(w, dataDir, out);
    const t0 = Date.now();
    log(`${w.id} ${engine.id} ...`);
    const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
    for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k];
    const r = spawnSync(cmd, args, { env: childEnv as NodeJS.ProcessEnv, encoding: "utf8", timeout: processTimeout, maxBuffer: 64 << 20 });
    const seconds = (Date.now() - t0) / 1000;
    if (r.status === 0 && existsSync(out)) {
      const result = JSON.parse(readFileSync(out, "utf8")) as EngineResult;
      list.push({ engine, result, seconds });
      log(`  ${seconds.toFixed(0)} s: ${JSON.stringify(result.reps.map((f) => Object.fromEntries(Object.entries(f).map(([k, v]) => [k, Math.round(v as number)]))))}`);
    } else {
      const why = r.error?.message.includes("ETIMEDOUT")
        ? `did not finish within the ${processTimeout / 1000} s limit`
        : `exited with ${r.status ?? r.signal}: ${(r.stderr || "").trim().split("\n").filter((l) => /error/i.test(l)).slice(-1)[0] ?? (r.stderr || "").trim().split("\n").slice(-1)[0]}`;
      list.push({ engine, result: null, failed: why, seconds });
      log(`  failed: ${why}`);
    }
  }
}
const totalSeconds = (Date.now() - started) / 1000;
writeFileSync(join(work, "all.json"), JSON.stringify(Object.fromEntries(outcomes), null, 1));

// ---- statistics ----
const KEYS: (keyof RepFigures)[] = ["train", "logProb", "sample"];
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const values = (r: EngineResult | null, k: keyof RepFigures) =>
  (r?.reps ?? []).map((f) => f[k]).filter((v): v is number => typeof v === "number" && Number.isFinite(v));
const med = (r: EngineResult | null, k: keyof RepFigures) => {
  const v = values(r, k);
  return v.length ? median(v) : null;
};
const fmtRate = (x: number) => (x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(3));
function cell(o: Outcome, k: keyof RepFigures, w: Workload): string {
  if (!w[k === "train" ? "train" : k]) return "";
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
const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : null);
const fmtRatio = (x: number | null) => (x === null ? "–" : `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}x`);

// ---- versions and machine ----
const jaxVersion = JSON.parse(readFileSync(join(ROOT, "node_modules/@jax-js/jax/package.json"), "utf8")).version;
const tfjsVersion = tfjsMissing ? "not installed" : JSON.parse(readFileSync(new URL(import.meta.resolve("@tensorflow/tfjs/package.json")), "utf8")).version;
const anyResult = (id: string) => [...outcomes.values()].flat().find((o) => o.engine.id === id && o.result)?.result ?? null;
const torchInfo = anyResult("pytorch")?.info;
const wasmThreads = anyResult("tfjs-wasm")?.info.threads;
const clayInfo = anyResult("clayflow")?.info;

// ---- the document ----
const md: string[] = [];
md.push(`# Benchmarks

Throughput of clayflow against PyTorch and TensorFlow.js on the same workloads, the same data
and the same architecture and initialisation scheme. Made by \`npm run bench\` (workloads in
\`bench/workloads.json\`, harness in \`bench/\`); the memory-flatness run below by
\`npm run bench:memory\`.

**Machine:** ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores (${cores} available), ${(totalmem() / 2 ** 30).toFixed(0)} GiB;
load average ${loadBefore.map((x) => x.toFixed(1)).join(" / ")} (1/5/15 min) at the start, ${loadavg().map((x) => x.toFixed(1)).join(" / ")} at the end.
Run on ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; the whole run took ${(totalSeconds / 60).toFixed(1)} min.

**Versions:** Node ${process.version}; @jax-js/jax ${jaxVersion} (clayflow engine ${clayInfo?.device ?? "wasm"});
PyTorch ${torchInfo?.torch ?? "not installed"}${torchInfo ? ` (Python ${torchInfo.python}, NumPy ${torchInfo.numpy})` : ""}; TensorFlow.js ${tfjsVersion}.
${torchInfo ? `PyTorch runs on ${torchInfo.threads} threads (\`torch.set_num_threads(2)\`). \`torch.__config__.show()\` reports \`BLAS_INFO=${torchInfo["config BLAS_INFO"]}\` and ${torchInfo["config mentions OpenBLAS"] === "yes" ? "mentions" : "does **not** mention"} OpenBLAS (Debian's build links the generic \`libblas.so.3\`); the BLAS actually loaded in the process is ${torchInfo["BLAS loaded"]}.` : ""}
TensorFlow.js wasm runs on ${wasmThreads ?? "?"} thread(s) (the Node build of the wasm backend is single-threaded); the cpu backend is plain JavaScript on one thread.

## How each engine is run

- **clayflow**: \`makeTrainStep\` as \`fit\` uses it: one jitted step (loss, gradient, Adam, the
  non-finite guard) on the flat parameter vector with fixed shapes, reading back only the loss
  each step; log-density and sampling are jitted functions with the parameters as arguments.
  Two rows: threads as the engine policy gives (CLAYFLOW_THREADS unset = core count) and
  CLAYFLOW_THREADS=1. The warm-up includes compilation.
- **PyTorch**: eager, \`torch.optim.Adam\`, \`loss.item()\` each step; evaluation under \`torch.no_grad()\`.
- **TensorFlow.js**: eager, \`tf.train.adam\` through \`optimizer.minimize\`, loss read back each step.
- Every engine: the same data files (written once per run), the same batches in the same order,
  the same architecture (RealNVP: half masks, MLP with He-uniform hidden layers and a zero output
  layer, s = 3 tanh(raw / 3); MAF: MADE degrees and masks of \`src/nn/made.ts\` with
  natural/reversed orders, N(0, 1)/sqrt(fan-in) hidden weights, zero output layer), Adam with the
  same lr, betas and eps. Each engine and workload runs in its own process; peak RSS is that
  process's \`getrusage\` maxrss (Node \`process.resourceUsage().maxRSS\`, Python \`resource.getrusage\`),
  so it includes the runtime itself.
- Figures are samples per second after the warm-up: training = batch rows per second; log-density
  = rows evaluated per second (batch given per workload); sampling = samples drawn per second.
  Each is the median of ${spec.repetitions} repetitions (fewer where the workload says so) with ± half the
  spread (max − min) relative to the median; a repetition stops after ${spec.secondsPerRep} s.
  "est." = estimated from a smaller call because one full call would exceed ${spec.secondsPerCallCap} s.
- Ratios are clayflow (policy threads) ÷ peer, from medians of the same run.
`);

for (const w of spec.workloads.filter((x) => !onlyWorkloads || onlyWorkloads.includes(x.id))) {
  md.push(`## ${w.id}: ${w.title}\n`);
  if (w.unavailable) {
    md.push(`${w.unavailable[0].toUpperCase()}${w.unavailable.slice(1)}.\n`);
    continue;
  }
  const parts: string[] = [];
  if (w.train) parts.push(`training batch ${w.train.batch}, Adam lr ${w.optimizer!.lr}, ${w.train.warmup} warm-up steps, up to ${w.train.steps} timed steps per repetition`);
  if (w.logProb) parts.push(`log-density of ${w.logProb.batch} rows per call`);
  if (w.sample) parts.push(`sampling ${w.sample.n.toLocaleString("en-US")} per call${w.sample.warmupN ? ` (eager engines warm up with ${w.sample.warmupN})` : ""}`);
  if (w.data) parts.push(`data: ${w.data.kind}, ${w.data.rows} rows`);
  md.push(`${parts.join("; ")}; ${repetitionsOf(spec, w)} repetitions.\n`);
  const list = outcomes.get(w.id) ?? [];
  const clay = list.find((o) => o.engine.id === "clayflow")?.result ?? null;
  const cols = KEYS.filter((k) => w[k]);
  const head = { train: "training samples/s", logProb: "log-density samples/s", sample: "sampling samples/s" };
  md.push(`| engine | ${cols.map((k) => head[k]).join(" | ")} | peak RSS MiB | clayflow ÷ engine (${cols.map((k) => ({ train: "train", logProb: "log-density", sample: "sampling" })[k]).join(" / ")}) |`);
  md.push(`|---|${cols.map(() => "---:").join("|")}|---:|---|`);
  for (const o of list) {
    const rss = o.result ? o.result.peakRssMiB.toFixed(0) : "";
    const ratios = o.engine.id === "clayflow" ? "" : cols.map((k) => fmtRatio(ratio(med(clay, k), med(o.result, k)))).join(" / ");
    const label = o.skipped ? `${o.engine.label}: skipped (${o.skipped})` : o.failed ? `${o.engine.label}: cannot run (${o.failed})` : o.engine.label;
    md.push(`| ${label} | ${cols.map((k) => cell(o, k, w)).join(" | ")} | ${rss} | ${ratios} |`);
  }
  const notes = list.flatMap((o) => Object.entries(o.result?.notes ?? {}).map(([k, v]) => `${o.engine.label}, ${k}: ${v}.`));
  const losses = list.filter((o) => o.result?.warmupLoss !== undefined).map((o) => `${o.engine.id} ${o.result!.warmupLoss!.toFixed(3)}`);
  md.push("");
  if (losses.length) md.push(`Mean training loss over the ${w.train!.warmup} warm-up steps (same batches; a check that the engines compute the same model): ${losses.join(", ")}.\n`);
  if (notes.length) md.push(notes.map((n) => `- ${n}`).join("\n") + "\n");
}

// ---- targets ----
const wr = (id: string, engine: string) => outcomes.get(id)?.find((o) => o.engine.id === engine)?.result ?? null;
interface Target { text: string; ratio: number | null; need: number; why?: string }
const targets: Target[] = [];
const trainTarget = (id: string, need: number) => {
  const r = ratio(med(wr(id, "clayflow"), "train"), med(wr(id, "pytorch"), "train"));
  targets.push({ text: `${id} training throughput >= ${need.toFixed(1)}x PyTorch`, ratio: r, need, why: r === null ? "not measured" : undefined });
};
trainTarget("w1", 1.0);
trainTarget("w2", 0.7);
for (const peer of ["tfjs-cpu", "tfjs-wasm"]) {
  for (const w of workloads.filter((x) => !x.unavailable)) {
    for (const k of KEYS.filter((kk) => w[kk])) {
      const r = ratio(med(wr(w.id, "clayflow"), k), med(wr(w.id, peer), k));
      const cannot = wr(w.id, peer)?.cannot?.[k];
      targets.push({
        text: `${w.id} ${({ train: "training", logProb: "log-density", sample: "sampling" })[k]} >= 10x TensorFlow.js ${peer.slice(5)}`,
        ratio: r, need: 10,
        why: r === null ? (cannot ? `TF.js cannot run it (${cannot})` : "not measured") : undefined,
      });
    }
  }
}
md.push(`## Targets (from the issue)

clayflow (policy threads) against each peer, ratio of medians from this run.

| target | measured | |
|---|---:|---|
${targets.map((t) => `| ${t.text} | ${t.ratio === null ? "–" : fmtRatio(t.ratio)} | ${t.ratio === null ? t.why : t.ratio >= t.need ? "met" : "**missed**"} |`).join("\n")}
`);

// ---- profile of the missed training targets ----
const profiles = workloads
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
${profiles.map(({ w, p, torch }) => {
    const n = (k: string) => Number(p![k]);
    return `| ${w.id} | ${n("forward loss ms/step").toFixed(2)} | ${n("loss+grad ms/step").toFixed(2)} | ${n("full train step ms/step").toFixed(2)} | ${(n("full train step ms/step") - n("loss+grad ms/step")).toFixed(2)} | ${n("forward loss kernels/step")} / ${n("loss+grad kernels/step")} / ${n("full train step kernels/step")} | ${n("full train step chunks/step")} | ${n("tiny kernel ms/step").toFixed(3)} | ${torch ? ((1000 * w.train!.batch) / torch).toFixed(2) : "–"} |`;
  }).join("\n")}
`);
  // Generated reading of the profile, so that it stays true on a re-run.
  for (const { w, p, torch } of profiles) {
    const n = (k: string) => Number(p![k]);
    const full = n("full train step ms/step");
    const grad = n("loss+grad ms/step");
    const fwd = n("forward loss ms/step");
    const kernels = n("full train step kernels/step");
    const tiny = n("tiny kernel ms/step");
    const torchMs = torch ? (1000 * w.train!.batch) / torch : null;
    md.push(
      `- ${w.id}: of ${full.toFixed(2)} ms per step, loss + gradient take ${grad.toFixed(2)} ms (${((100 * grad) / full).toFixed(0)}%; the forward ` +
        `alone ${fwd.toFixed(2)} ms, so the backward pass costs ${(grad / fwd).toFixed(1)}x the forward), and Adam plus the guard ` +
        `${Math.max(0, full - grad).toFixed(2)} ms. The step runs ${kernels} kernels, ${(full / kernels * 1000).toFixed(0)} µs each on average ` +
        `(a one-kernel call costs ${(tiny * 1000).toFixed(0)} µs with its read-back).` +
        (torchMs ? ` PyTorch takes ${torchMs.toFixed(2)} ms per step.` : ""),
    );
  }
  md.push("");
  md.push(`<!-- notes:start -->\n${readNotes()}\n<!-- notes:end -->\n`);
}

// ---- memory section (kept from the last \`npm run bench:memory\`) ----
md.push(`## Memory flatness (workload w1, 10,000 training steps)\n`);
md.push(readSection(MEMORY_START, MEMORY_END) ?? `${MEMORY_START}\nNot run yet: \`npm run bench:memory\` (a few minutes) fills this section.\n${MEMORY_END}`);
md.push(`
## Command

\`\`\`
npm run bench            # builds bench/ with tsconfig.bench.json, runs everything, writes docs/BENCHMARKS.md
npm run bench:memory     # the memory-flatness run; updates its section of docs/BENCHMARKS.md
\`\`\`

Options: \`--workloads w1,w2\`, \`--engines clayflow,clayflow-1t,pytorch,tfjs-cpu,tfjs-wasm\`,
\`--out FILE\`, \`--timeout SECONDS\` (per engine process, default 300). PyTorch is looked up as
\`CLAYFLOW_BENCH_PYTHON\`, \`/usr/bin/python3\`, \`python3\`; Debian: \`apt-get install python3-torch libopenblas0-pthread\`.
Raw results of this run: one JSON file per engine and workload (printed path).
`);

function readSection(start: string, end: string): string | null {
  if (!existsSync(outPath)) return null;
  const old = readFileSync(outPath, "utf8");
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
