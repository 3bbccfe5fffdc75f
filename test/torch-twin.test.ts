/**
 * The PyTorch twin (python/clayflow_torch) against clayflow, both directions, on every model
 * kind: runs written by clayflow score the same in the twin (`python3 -m clayflow_torch score`
 * against `clayflow score` and clayflow's exact float64 kernels) and decode latents to the same
 * rows, runs trained by the twin load in clayflow and score the same, a few training steps from
 * the same weights on the same batch give the same losses, image flows (written by either side)
 * have the same log-densities, samples and training losses, and a real two-process
 * DistributedDataParallel run (torchrun, gloo) takes the single-process gradient.
 *
 * Needs a python3 with torch (Debian: apt-get install python3-torch): CLAYFLOW_PYTHON, else
 * /usr/bin/python3, else python3 on the PATH. Without one the tests skip and say so.
 */
import "./helpers/setup.js";
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync, rmSync, cpSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { defaultDevice, numpy as np, random, tree } from "@jax-js/jax";
import { buildFlow, type FlowConfig } from "../src/models/index.js";
import { flatten } from "../src/train/flat-params.js";
import { saveRun, loadRun } from "../src/io/checkpoint.js";
import { fit, type TrainState } from "../src/train/fit.js";
import { makeRng } from "../src/core/prng.js";
import { decodeSafetensors } from "../src/io/safetensors.js";
import { parseCsv } from "../src/data/csv.js";
import { score } from "../src/cli/commands/score.js";
import {
  standardizeTransform,
  standardizerLogDet,
  type Standardizer,
} from "../src/data/standardize.js";
import { logProbRows } from "../src/eval/log-prob-rows.js";
import { readLogLikSummary, summaryQuantile } from "../src/eval/loglik-quantiles.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");
const PYTHONPATH = join(ROOT, "python");

/** The first python3 that imports torch, or null. */
function findPython(): string | null {
  for (const py of [process.env.CLAYFLOW_PYTHON, "/usr/bin/python3", "python3"].filter(
    Boolean,
  ) as string[]) {
    const r = spawnSync(py, ["-c", "import torch"], { timeout: 60_000 });
    if (r.status === 0) return py;
  }
  return null;
}
const PYTHON = findPython();
const SKIP = PYTHON
  ? false
  : "no python3 with torch (set CLAYFLOW_PYTHON, or apt-get install python3-torch): the PyTorch twin is not tested";

const ENV = { ...process.env, PYTHONPATH, OMP_NUM_THREADS: "1", CLAYFLOW_THREADS: "1" };

function python(args: string[], timeout = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON!, args, { env: ENV, timeout, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${args.slice(0, 4).join(" ")} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

/** The `clayflow` command in a child process (as a user runs it). */
function clayflowCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: ENV, timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`clayflow ${args.join(" ")} failed: ${stderr || err.message}`));
        else resolve(stdout);
      },
    );
  });
}

/** `clayflow score` itself (the command's code, in this process), its stdout kept quiet. */
async function clayflowScore(
  run: string,
  data: string,
  out: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    await score.run({ run, data, out, threads: 1, ...extra });
  } finally {
    process.stdout.write = write;
  }
}

const DIM = 3;
const CTX = 2;
const ROWS = 120;
const NAMES = ["a", "b", "c"];
const CNAMES = ["u", "v"];
const MEAN = [1.5, -2, 0.25];
const STD = [2, 0.5, 1.25];

/** Every vector model kind, conditional ones, each norm and base. */
const MODELS: Record<string, FlowConfig> = {
  nice: { model: "nice", dim: DIM, layers: 2, hidden: [8] },
  realnvp: { model: "realnvp", dim: DIM, layers: 3, hidden: [8], activation: "tanh" },
  "realnvp-batchnorm-gelu": {
    model: "realnvp",
    dim: DIM,
    layers: 3,
    hidden: [8],
    norm: "batchnorm",
    activation: "gelu",
  },
  "realnvp-ctx-mixture": {
    model: "realnvp",
    dim: DIM,
    layers: 2,
    hidden: [8],
    contextDim: CTX,
    base: { kind: "mixture", components: 3 },
  },
  maf: { model: "maf", dim: DIM, layers: 2, hidden: [8, 8], base: { kind: "diagNormal" } },
  "maf-ctx": { model: "maf", dim: DIM, layers: 2, hidden: [8], contextDim: CTX },
  iaf: { model: "iaf", dim: DIM, layers: 2, hidden: [8], contextDim: CTX },
  nsf: { model: "nsf", dim: DIM, layers: 2, hidden: [8], bins: 4, tailBound: 3 },
  "nsf-ctx": { model: "nsf", dim: DIM, layers: 2, hidden: [8], bins: 5, contextDim: CTX },
  "nsf-ar": {
    model: "nsf-ar",
    dim: DIM,
    layers: 2,
    hidden: [8],
    bins: 4,
    tailBound: 3,
    contextDim: CTX,
  },
};
const isConditional = (c: FlowConfig) => ((c as { contextDim?: number }).contextDim ?? 0) > 0;

/** Rows in the data's units: x columns, then context columns (spread past the splines' bounds). */
function makeTable(seed: number): Float64Array {
  const rng = makeRng(seed);
  const t = new Float64Array(ROWS * (DIM + CTX));
  for (let r = 0; r < ROWS; r++) {
    for (let j = 0; j < DIM; j++) t[r * (DIM + CTX) + j] = MEAN[j] + STD[j] * 1.5 * rng.normal();
    for (let j = 0; j < CTX; j++) t[r * (DIM + CTX) + DIM + j] = 3 * rng.normal() - 1;
  }
  return t;
}

function writeCsv(path: string, table: Float64Array): void {
  const w = DIM + CTX;
  const lines = [[...NAMES, ...CNAMES].join(",")];
  for (let r = 0; r < table.length / w; r++)
    lines.push(Array.from(table.subarray(r * w, (r + 1) * w), (v) => v.toPrecision(9)).join(","));
  writeFileSync(path, lines.join("\n") + "\n");
}

const PRE: Standardizer = { kind: "standardizer", mean: MEAN, std: STD, notes: [] };
const CPRE: Standardizer = { kind: "standardizer", mean: [-1, 0], std: [3, 2], notes: [] };

/**
 * A float64 run of `config` whose every leaf is random (the output layers too, so no layer is
 * the identity it starts as), written by clayflow's saveRun.
 */
async function writeClayflowRun(
  dir: string,
  config: FlowConfig,
  seed: number,
  withTable = true,
  spread = 0.3,
): Promise<void> {
  const flow = buildFlow(config);
  const { vector, spec } = flatten(flow.init(random.key(seed), { dtype: np.float64 }));
  const v = Float64Array.from((await vector.data()) as Float64Array);
  const rng = makeRng(seed);
  spec.paths.forEach((path, i) => {
    for (let k = spec.offsets[i]; k < spec.offsets[i] + spec.sizes[i]; k++) {
      v[k] = path.endsWith("state.var")
        ? 0.5 + Math.abs(rng.normal())
        : v[k] + spread * rng.normal();
    }
  });
  const n = v.length;
  const state: TrainState = {
    step: 0,
    layout: { paths: spec.paths, shapes: spec.shapes, dtype: "float64" },
    params: v,
    optimizer: { step: 0, m: new Float64Array(n), v: new Float64Array(n) },
    best: null,
    history: [],
    skipped: 0,
    badStreak: 0,
    evalsSinceBest: 0,
    lossSum: 0,
    lossCount: 0,
    seconds: 0,
  };
  const cond = isConditional(config);
  if (!withTable) return saveRun(dir, { flow, state });
  await saveRun(dir, {
    flow,
    state,
    preprocessing: PRE,
    contextPreprocessing: cond ? CPRE : null,
    data: {
      name: "twin-test",
      rows: ROWS,
      columns: NAMES,
      ...(cond ? { contextColumns: CNAMES } : {}),
    },
  });
}

/** Image flows: every model, class and image conditioning, variational dequantisation. */
const IMAGE_MODELS: Record<string, FlowConfig> = {
  glow: { model: "glow", shape: [4, 4, 2], levels: 2, steps: 2, hidden: 4 },
  "glow-classes-variational": {
    model: "glow",
    shape: [4, 4, 1],
    levels: 2,
    steps: 1,
    hidden: 4,
    classes: 3,
    dequantization: "variational",
  },
  "glow-downsample": {
    model: "glow",
    shape: [4, 4, 1],
    levels: 2,
    steps: 1,
    hidden: 4,
    blocks: 2,
    context: { kind: "downsample", factor: 2 },
  },
  realnvp: { model: "realnvp", shape: [4, 4, 1], levels: 2, hidden: 4 },
  "realnvp-left-half": {
    model: "realnvp",
    shape: [4, 4, 1],
    levels: 2,
    hidden: 4,
    blocks: 0,
    context: { kind: "left-half" },
  },
};
const IMAGES = 4;

/** Images decoded from latents z [IMAGES, D] (sampling's direction) by clayflow, on "cpu". */
async function exactImageDecode(
  run: string,
  z: number[],
  cond: number[],
  rows = IMAGES,
): Promise<number[]> {
  defaultDevice("cpu");
  try {
    const loaded = await loadRun(run);
    if (loaded.bestParams) tree.dispose(loaded.bestParams);
    const k = loaded.flow.contextDim;
    const zs = np.array(z, { dtype: np.float64 }).reshape([rows, -1]);
    const x = loaded.flow.decode(
      loaded.params,
      zs,
      k > 0 ? np.array(cond, { dtype: np.float64 }).reshape([rows, k]) : undefined,
    );
    return Array.from((await x.data()) as Float64Array);
  } finally {
    defaultDevice("wasm");
  }
}

/** log p(x | cond) of images x under a run, by clayflow in float64 on the exact "cpu" device. */
async function exactImageLogProb(run: string, x: number[], cond: number[]): Promise<number[]> {
  defaultDevice("cpu");
  try {
    const loaded = await loadRun(run);
    if (loaded.bestParams) tree.dispose(loaded.bestParams);
    const xs = np.array(x, { dtype: np.float64 }).reshape([IMAGES, ...loaded.flow.eventShape]);
    const k = loaded.flow.contextDim;
    const lp = loaded.flow.logProb(
      loaded.params,
      xs,
      k > 0 ? np.array(cond, { dtype: np.float64 }).reshape([IMAGES, k]) : undefined,
    );
    return Array.from((await lp.data()) as Float64Array);
  } finally {
    defaultDevice("wasm");
  }
}

/**
 * log-likelihoods (data units) of rows x [ROWS, DIM] (standardised, float32 as score feeds
 * them) under a run, computed by clayflow in float64 on the exact "cpu" device.
 */
async function exactScores(run: string, x: Float64Array, cond: Float64Array): Promise<number[]> {
  defaultDevice("cpu");
  try {
    const loaded = await loadRun(run);
    const params = loaded.bestParams ?? loaded.params;
    if (loaded.bestParams) tree.dispose(loaded.params);
    const ctx = loaded.flow.contextDim > 0 ? { cond: Float32Array.from(cond) } : {};
    const lp = await logProbRows(loaded.flow, params, Float32Array.from(x), ctx);
    tree.dispose(params);
    const shift = loaded.preprocessing ? standardizerLogDet(loaded.preprocessing) : 0;
    return Array.from(lp, (v) => v + shift);
  } finally {
    defaultDevice("wasm");
  }
}

/** The CSV's rows as a run takes them: its columns, standardised by its own standardisers. */
function twinInputs(run: string): { x: Float64Array; cond: Float64Array } {
  const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8"));
  const table = parseCsv(readFileSync(join(dirname(run), "rows.csv"), "utf8"));
  const take = (names: string[] | null, s: Standardizer | null) => {
    if (!names) return new Float64Array(0);
    const idx = names.map((n) => table.columns.indexOf(n));
    const raw = Float64Array.from(
      { length: table.rows * idx.length },
      (_, i) => table.data[Math.floor(i / idx.length) * table.cols + idx[i % idx.length]],
    );
    return s ? (standardizeTransform(s, raw) as Float64Array) : raw;
  };
  return {
    x: take(config.data.columns, config.preprocessing),
    cond: take(config.data.contextColumns, config.contextPreprocessing),
  };
}

interface Scores {
  header: string[];
  cells: string[][];
  logp: number[];
}

function readScores(path: string): Scores {
  const text = readFileSync(path, "utf8");
  const lines = text.trim().split("\n");
  const header = lines[0].split(",");
  const cells = lines.slice(1).map((l) => l.split(","));
  const k = header.indexOf("log_likelihood");
  return { header, cells, logp: cells.map((c) => Number(c[k])) };
}

/**
 * The tolerance against `clayflow score` as users run it, on the wasm device, row by row: its
 * kernels evaluate exp, log and tanh to float32 accuracy even in float64 (docs/ARCHITECTURE.md),
 * so it may stray from the exact float64 values (`exact`, clayflow on the "cpu" device) by that
 * much and no more; the twin must be within 1e-4 nats of the exact values.
 */
const engineTolerance = (cf: Scores, exact: number[]) => (r: number) =>
  1e-4 + Math.abs(cf.logp[r] - exact[r]);

/** Same columns, same copied cells, log-likelihoods within `tol` (or tol(row)) nats. */
function assertSameScores(
  a: Scores,
  b: Scores,
  tol: number | ((row: number) => number),
  what: string,
): void {
  const limit = typeof tol === "number" ? () => tol : tol;
  assert.deepEqual(a.header, b.header, `${what}: header`);
  assert.equal(a.cells.length, b.cells.length);
  const k = a.header.indexOf("log_likelihood");
  let worst = 0;
  a.cells.forEach((row, r) => {
    assert.deepEqual(row.slice(0, k), b.cells[r].slice(0, k), `${what}: row ${r} input cells`);
    assert.ok(Number.isFinite(a.logp[r]), `${what}: row ${r} log-likelihood ${a.logp[r]}`);
    worst = Math.max(worst, Math.abs(a.logp[r] - b.logp[r]) / limit(r));
  });
  assert.ok(worst <= 1, `${what}: log-likelihoods differ by up to ${worst} times the tolerance`);
}

/** The Python side of every check, in one process (torch's import is the slow part). */
const JOBS_PY = `
import json, sys, torch
from clayflow_torch.cli import main
from clayflow_torch import load_run
from clayflow_torch.train import fit
jobs = json.load(open(sys.argv[1]))
out = {}
for j in jobs["decode"]:
    flow = load_run(j["run"]).flow
    h = torch.tensor(j["z"], dtype=torch.float64).reshape(-1, flow.dim)
    c = torch.tensor(j["cond"], dtype=torch.float64).reshape(h.shape[0], -1) if j["cond"] else None
    with torch.no_grad():
        for layer in reversed(flow.bijector):
            h, _ = layer.inverse(h, c)
    out["decoded " + j["name"]] = h.reshape(-1).tolist()
for j in jobs["score"]:
    assert main(["score", "--run", j["run"], "--data", j["data"], "--out", j["out"]]) == 0
for j in jobs["train"]:
    json.dump(j["config"], open(j["out"] + ".json", "w"))
    args = ["train", "--config", j["out"] + ".json", "--data", j["data"], "--out", j["out"], "--steps", str(j["steps"]),
            "--batch-size", str(j["batchSize"]), "--eval-every", "10", "--lr", "0.01", "--schedule", j.get("schedule", "cosine"),
            "--dtype", j.get("dtype", "float32")]
    if j.get("context"): args += ["--context-columns", j["context"]]
    assert main(args) == 0
    assert main(["score", "--run", j["out"], "--data", j["data"], "--out", j["out"] + "-twin.csv"]) == 0
for j in jobs["steps"]:
    run = load_run(j["run"])
    b = json.load(open(j["batch"]))
    x = torch.tensor(b["x"], dtype=torch.float64).reshape(-1, b["dim"])
    c = torch.tensor(b["cond"], dtype=torch.float64).reshape(x.shape[0], -1) if b["cond"] else None
    losses = []
    fit(run.flow, x, c, steps=j["steps"], batch_size=x.shape[0], optimizer={"kind": "adam", "lr": j["lr"]},
        on_step=lambda s, l: losses.append(l))
    out[j["run"]] = losses
print(json.dumps(out))
`;

describe("clayflow-torch, the PyTorch twin", { skip: SKIP }, () => {
  let tmp: string;
  let csv: string;
  const cfScores: Record<string, string> = {};
  const exact: Record<string, number[]> = {};
  const vectorDecoded: Record<string, { z: number[]; cond: number[]; x: number[] }> = {};
  const cfLosses: Record<string, number[]> = {};
  /** What the Python jobs printed: losses by run, "decoded <name>" values. */
  let pyOut: Record<string, number[]> = {};
  /** What the twin trains (dim and contextDim come from the CSV), and its context columns. */
  const TRAIN_KINDS: Record<string, { model: Record<string, unknown>; context?: string }> = {
    nice: { model: { model: "nice", layers: 2, hidden: [8] } },
    realnvp: { model: { model: "realnvp", layers: 2, hidden: [8], norm: "batchnorm" } },
    maf: { model: { model: "maf", layers: 2, hidden: [8] } },
    iaf: { model: { model: "iaf", layers: 2, hidden: [8] } },
    nsf: { model: { model: "nsf", layers: 2, hidden: [8], bins: 4 } },
    "nsf-ar-ctx": { model: { model: "nsf-ar", layers: 2, hidden: [8], bins: 4 }, context: "u,v" },
  };
  const STEPS = 3;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "clayflow-twin-"));
    csv = join(tmp, "rows.csv");
    writeCsv(csv, makeTable(7));
    // The rows exactly as clayflow reads them (the CSV's decimals), standardised as both sides do.
    const table = parseCsv(readFileSync(csv, "utf8"));
    const pick = (cols: number[]) =>
      Float64Array.from(
        { length: ROWS * cols.length },
        (_, i) => table.data[Math.floor(i / cols.length) * (DIM + CTX) + cols[i % cols.length]],
      );
    const x = standardizeTransform(PRE, pick([0, 1, 2])) as Float64Array;
    const cond = standardizeTransform(CPRE, pick([3, 4])) as Float64Array;
    const jobs = {
      score: [] as object[],
      train: [] as object[],
      steps: [] as object[],
      decode: [] as object[],
    };
    let seed = 1;
    for (const [name, config] of Object.entries(MODELS)) {
      const run = join(tmp, `cf-${name}`);
      await writeClayflowRun(run, config, seed++);
      cfScores[name] = join(tmp, `cf-${name}.csv`);
      await clayflowScore(run, csv, cfScores[name]);
      exact[name] = await exactScores(run, x, cond);
      // Latents decoded (sampling's direction) by clayflow, for the twin to repeat.
      const z = Array.from({ length: 8 * DIM }, (_, i) => Math.sin(1.7 * i + seed));
      const zCond = Array.from(cond.subarray(0, 8 * CTX));
      vectorDecoded[name] = { z, cond: zCond, x: await exactImageDecode(run, z, zCond, 8) };
      jobs.decode.push({ run, z, cond: isConditional(config) ? zCond : null, name });
      jobs.score.push({ run, data: csv, out: join(tmp, `cf-${name}-twin.csv`) });
      // A few full-batch Adam steps from the run's weights, in clayflow.
      const loaded = await loadRun(run);
      const losses: number[] = [];
      const ctx = isConditional(config);
      const result = await fit(
        loaded.flow,
        loaded.params,
        { x, rows: ROWS, ...(ctx ? { cond } : {}) },
        {
          steps: STEPS,
          batchSize: ROWS,
          optimizer: { kind: "adam", lr: 0.01 },
          onProgress: (p) => losses.push(p.loss),
        },
      );
      tree.dispose(result.params);
      tree.dispose(result.bestParams);
      if (loaded.bestParams) tree.dispose(loaded.bestParams);
      cfLosses[run] = losses;
      const batch = join(tmp, `batch-${name}.json`);
      writeFileSync(
        batch,
        JSON.stringify({ dim: DIM, x: Array.from(x), cond: ctx ? Array.from(cond) : null }),
      );
      jobs.steps.push({ run, batch, steps: STEPS, lr: 0.01 });
    }
    for (const [name, { model, context }] of Object.entries(TRAIN_KINDS)) {
      jobs.train.push({
        config: model,
        data: csv,
        out: join(tmp, `tw-${name}`),
        steps: 30,
        batchSize: 32,
        context,
        dtype: "float64",
      });
    }
    // The single-process reference of the DDP run.
    jobs.train.push({
      config: { model: "maf", layers: 2, hidden: [8] },
      data: csv,
      out: join(tmp, "single"),
      steps: 2,
      batchSize: 32,
      schedule: "constant",
    });
    const jobFile = join(tmp, "jobs.json");
    writeFileSync(jobFile, JSON.stringify(jobs));
    writeFileSync(join(tmp, "jobs.py"), JOBS_PY);
    const printed = (await python([join(tmp, "jobs.py"), jobFile], 300_000)).trim().split("\n");
    pyOut = JSON.parse(printed[printed.length - 1]);
  });

  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("scores clayflow's runs as clayflow does, on every model kind (1e-4 nats in float64)", () => {
    for (const name of Object.keys(MODELS)) {
      const cf = readScores(cfScores[name]);
      const tw = readScores(join(tmp, `cf-${name}-twin.csv`));
      assert.deepEqual(cf.header, [...NAMES, ...CNAMES, "log_likelihood"]);
      assertSameScores({ ...cf, logp: exact[name] }, tw, 1e-4, `${name} (float64, exact kernels)`);
      assertSameScores(cf, tw, engineTolerance(cf, exact[name]), `${name} (clayflow score)`);
    }
  });

  it("decodes latents (sampling's direction) as clayflow does, on every model kind", () => {
    for (const [name, { x }] of Object.entries(vectorDecoded)) {
      const tw = pyOut[`decoded ${name}`];
      assert.equal(tw.length, x.length, name);
      x.forEach((v, i) =>
        assert.ok(
          Math.abs(v - tw[i]) <= 1e-6 * Math.max(1, Math.abs(v)),
          `${name}: decoded value ${i}: ${v} (clayflow) vs ${tw[i]} (twin)`,
        ),
      );
    }
  });

  it("takes the same loss as clayflow over a few training steps from the same weights and batch", () => {
    for (const [run, cf] of Object.entries(cfLosses)) {
      if (run.startsWith("decoded ")) continue;
      const tw = pyOut[run];
      assert.equal(tw.length, STEPS, run);
      cf.forEach((l, i) =>
        assert.ok(
          Math.abs(l - tw[i]) <= 1e-5 * Math.max(1, Math.abs(l)),
          `${run}: step ${i + 1} loss ${l} (clayflow) vs ${tw[i]} (twin)`,
        ),
      );
      // The steps trained: the weights moved, so the later losses are not the first one.
      assert.ok(
        Math.abs(cf[STEPS - 1] - cf[0]) > 1e-4,
        `${run}: the loss did not move (${cf.join(", ")})`,
      );
    }
  });

  it("writes runs that clayflow loads and scores the same, on every model kind", async () => {
    for (const [name, config] of Object.entries(TRAIN_KINDS)) {
      const run = join(tmp, `tw-${name}`);
      const loaded = await loadRun(run);
      assert.equal(loaded.state.step, 30);
      assert.ok(loaded.bestParams, `${name}: the twin keeps the best validation parameters`);
      assert.equal(loaded.config.data.contextColumns?.join(","), config.context);
      tree.dispose(loaded.params);
      tree.dispose(loaded.bestParams);
      const out = join(tmp, `tw-${name}-clayflow.csv`);
      await clayflowScore(run, csv, out);
      const cf = readScores(out);
      const tw = readScores(join(tmp, `tw-${name}-twin.csv`));
      const { x: xs, cond: cs } = twinInputs(run);
      const ex = await exactScores(run, xs, cs);
      assertSameScores(
        { ...cf, logp: ex },
        tw,
        1e-4,
        `twin-trained ${name} (float64, exact kernels)`,
      );
      assertSameScores(cf, tw, engineTolerance(cf, ex), `twin-trained ${name} (clayflow score)`);
      // The twin's train-loglik.json serves clayflow score --flag-quantile: the rows below the
      // training rows' 0.2-quantile are flagged (these 120 rows include the 96 training rows).
      const flagged = join(tmp, `tw-${name}-flagged.csv`);
      await clayflowScore(run, csv, flagged, { "flag-quantile": 0.2 });
      const f = readScores(flagged);
      const k = f.header.indexOf("anomaly");
      const count = f.cells.filter((c) => c[k] === "1").length;
      assert.ok(
        count >= 10 && count <= 45,
        `twin-trained ${name}: --flag-quantile 0.2 flagged ${count} of ${ROWS} rows`,
      );
      // The twin's own --flag-quantile reads the same summary and flags the same rows.
      await python([
        "-m",
        "clayflow_torch",
        "score",
        "--run",
        run,
        "--data",
        csv,
        "--out",
        join(tmp, `tw-${name}-flagged-twin.csv`),
        "--flag-quantile",
        "0.2",
      ]);
      const g = readScores(join(tmp, `tw-${name}-flagged-twin.csv`));
      // Rows may differ only where the two sides' log-likelihoods straddle the quantile itself.
      const q = summaryQuantile((await readLogLikSummary(run))!, 0.2);
      g.cells.forEach((c, r) => {
        if (c[g.header.indexOf("anomaly")] !== f.cells[r][k])
          assert.ok(
            Math.abs(f.logp[r] - q) < 1e-3 * Math.max(1, Math.abs(q)),
            `twin-trained ${name}: row ${r} (${f.logp[r]}) flagged differently, ${q} the 0.2-quantile`,
          );
      });
    }
  });

  it("samples vector runs (twin sample) from the distribution clayflow samples: the same mean log-likelihood", async () => {
    for (const name of ["maf", "nsf-ar-ctx"]) {
      const run = join(tmp, `tw-${name}`);
      const n = 3000;
      const context = name.endsWith("-ctx") ? ["--context", "0.3,-1.2"] : [];
      const out = join(tmp, `tw-${name}-samples.csv`);
      await python([
        "-m",
        "clayflow_torch",
        "sample",
        "--run",
        run,
        "-n",
        String(n),
        "--out",
        out,
        "--seed",
        "3",
        ...context,
      ]);
      const rows = parseCsv(readFileSync(out, "utf8"));
      const cfOut = join(tmp, `tw-${name}-samples-cf.csv`);
      await clayflowCli([
        "sample",
        "--run",
        run,
        "-n",
        String(n),
        "--out",
        cfOut,
        "--seed",
        "4",
        ...context,
      ]);
      // clayflow sample's columns: the context (each row its own), then the sample.
      assert.deepEqual(rows.columns, parseCsv(readFileSync(cfOut, "utf8")).columns);
      if (context.length) assert.deepEqual(rows.columns.slice(0, 2), CNAMES);
      assert.equal(rows.rows, n);
      // Both sides' samples scored by clayflow at the same context: their mean log-likelihood
      // estimates the same -H(model | context), so the two means agree within their standard errors.
      const meanAndSe = async (file: string) => {
        const scored = join(tmp, `scored-${name}.csv`);
        await clayflowScore(run, file, scored);
        const lp = readScores(scored).logp;
        const m = lp.reduce((a, v) => a + v, 0) / lp.length;
        const sd = Math.sqrt(lp.reduce((a, v) => a + (v - m) ** 2, 0) / (lp.length - 1));
        return { m, se: sd / Math.sqrt(lp.length) };
      };
      const tw = await meanAndSe(out);
      const cf = await meanAndSe(cfOut);
      assert.ok(
        Number.isFinite(tw.m) && Math.abs(tw.m - cf.m) < 4 * Math.hypot(tw.se, cf.se),
        `${name}: twin samples ${tw.m.toFixed(3)} ± ${tw.se.toFixed(3)}, clayflow's ${cf.m.toFixed(3)} ± ${cf.se.toFixed(3)}`,
      );
      // At temperature 0 both sides draw the base's mode, so every row is the same point: the
      // flow's inverse at z = 0, which the two implementations must agree on.
      const cold = async (side: "twin" | "clayflow") => {
        const file = join(tmp, `tw-${name}-cold-${side}.csv`);
        const args = [
          "sample",
          "--run",
          run,
          "-n",
          "4",
          "--out",
          file,
          "--temperature",
          "0",
          ...context,
        ];
        if (side === "twin") await python(["-m", "clayflow_torch", ...args]);
        else await clayflowCli(args);
        return parseCsv(readFileSync(file, "utf8"));
      };
      const twCold = await cold("twin");
      const cfCold = await cold("clayflow");
      assert.deepEqual(twCold.columns, cfCold.columns);
      const width = twCold.columns.length;
      for (let i = 0; i < twCold.data.length; i++) {
        const [t, c, first] = [twCold.data[i], cfCold.data[i], cfCold.data[i % width]];
        assert.ok(
          Math.abs(t - c) < 1e-4 * Math.max(1, Math.abs(c)),
          `${name} at T=0: twin ${t}, clayflow ${c}`,
        );
        assert.ok(
          Math.abs(c - first) < 1e-6 * Math.max(1, Math.abs(c)),
          `${name} at T=0: rows differ`,
        );
      }
    }
  });

  it("keeps the weights' SHA-256 as clayflow does: each side refuses the other's run with a flipped byte, and non-finite weights", async () => {
    const twinLoad = (run: string) =>
      python(["-c", "import sys; from clayflow_torch import load_run; load_run(sys.argv[1])", run]);
    /** A copy of `run` whose weights have one byte flipped (the last, inside a tensor's data). */
    const damaged = (run: string, name: string) => {
      const copy = join(tmp, name);
      cpSync(run, copy, { recursive: true });
      const w = join(copy, "weights.safetensors");
      const bytes = readFileSync(w);
      bytes[bytes.length - 1] ^= 0x01;
      writeFileSync(w, bytes);
      return copy;
    };
    const twRun = join(tmp, "tw-maf");
    const sha = JSON.parse(readFileSync(join(twRun, "config.json"), "utf8")).weightsSha256;
    assert.equal(
      sha,
      createHash("sha256")
        .update(readFileSync(join(twRun, "weights.safetensors")))
        .digest("hex"),
    );
    await twinLoad(twRun); // intact: the twin reads its own run
    await assert.rejects(
      loadRun(damaged(twRun, "tw-maf-flipped")),
      /tw-maf-flipped\/weights\.safetensors: its SHA-256 .* is not the one/,
    );
    const cfRun = join(tmp, "cf-maf");
    assert.match(
      JSON.parse(readFileSync(join(cfRun, "config.json"), "utf8")).weightsSha256,
      /^[0-9a-f]{64}$/,
    );
    await twinLoad(cfRun);
    await assert.rejects(
      twinLoad(damaged(cfRun, "cf-maf-flipped")),
      /cf-maf-flipped\/weights\.safetensors: its SHA-256 .* is not the one/,
    );
    // A NaN in a run without a checksum (written before checksums were kept): both refuse it, naming the tensor.
    const nan = join(tmp, "tw-maf-nan");
    cpSync(twRun, nan, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(nan, "config.json"), "utf8"));
    delete cfg.weightsSha256;
    writeFileSync(join(nan, "config.json"), JSON.stringify(cfg));
    const w = join(nan, "weights.safetensors");
    const bytes = readFileSync(w);
    bytes.writeDoubleLE(Number.NaN, bytes.length - 8); // the last float64 of the last tensor
    writeFileSync(w, bytes);
    await assert.rejects(
      twinLoad(nan),
      /weights\.safetensors: tensor params\/\S+ holds 1 non-finite value \(nan/,
    );
    await assert.rejects(
      loadRun(nan),
      /weights\.safetensors: tensor params\/\S+ holds 1 non-finite value/,
    );
  });

  it("computes the image flows' densities, samples and training losses as clayflow does, runs written either way (1e-4 nats, float64)", async () => {
    const rng = makeRng(11);
    const jobs: object[] = [];
    const expected: Record<string, number[]> = {};
    const imageLosses: Record<string, number[]> = {};
    const decoded: Record<string, number[]> = {};
    let seed = 100;
    for (const [name, config] of Object.entries(IMAGE_MODELS)) {
      const run = join(tmp, `img-${name}`);
      // Small perturbations: a deep stack of random convolutions would put the images at
      // log-densities of -1e11, where nats compare nothing.
      await writeClayflowRun(run, config, seed++, false, 0.05);
      const d = (config as { shape: number[] }).shape.reduce((a, b) => a * b, 1);
      const k = buildFlow(config).contextDim;
      const x = Array.from(
        { length: IMAGES * d },
        () => (Math.floor(256 * rng.uniform()) + rng.uniform()) / 256,
      );
      const cond = Array.from({ length: IMAGES * k }, () => rng.uniform());
      expected[run] = await exactImageLogProb(run, x, cond);
      // Two full-batch Adam steps in clayflow's fit, for the twin to repeat; on the exact "cpu"
      // device (wasm's float32-accurate exp and log move these losses by ~1e-5 relative).
      defaultDevice("cpu");
      const loaded = await loadRun(run);
      const losses: number[] = [];
      const result = await fit(
        loaded.flow,
        loaded.params,
        {
          x: Float64Array.from(x),
          rows: IMAGES,
          ...(k > 0 ? { cond: Float64Array.from(cond) } : {}),
        },
        {
          steps: 2,
          batchSize: IMAGES,
          optimizer: { kind: "adam", lr: 0.01 },
          onProgress: (p) => losses.push(p.loss),
        },
      );
      tree.dispose(result.params);
      tree.dispose(result.bestParams);
      defaultDevice("wasm");
      imageLosses[name] = losses;
      // The twin also writes a run of the same config with random weights, for clayflow to read.
      const z = Array.from({ length: IMAGES * d }, () => 0.5 * rng.normal());
      decoded[run] = await exactImageDecode(run, z, cond);
      jobs.push({ run, x, cond, z, twin: join(tmp, `img-twin-${name}`), seed, name });
    }
    writeFileSync(join(tmp, "images.json"), JSON.stringify(jobs));
    const script = `
import json, sys, torch
from clayflow_torch import load_run, save_run, build_flow
from clayflow_torch.train import fit
out = {}
for j in json.load(open(sys.argv[1])):
    run = load_run(j["run"])
    f = run.flow
    x = torch.tensor(j["x"], dtype=torch.float64).reshape(-1, *f.config["shape"])
    c = torch.tensor(j["cond"], dtype=torch.float64).reshape(x.shape[0], -1) if f.context_dim else None
    out[j["run"]] = f.log_prob(x, c).tolist()
    with torch.no_grad():
        h = torch.tensor(j["z"], dtype=torch.float64).reshape(x.shape[0], -1)
        for layer in reversed(f.bijector):
            h, _ = layer.inverse(h, c)
    out["decoded " + j["name"]] = h.reshape(-1).tolist()
    losses = []
    fit(f, x, c, steps=2, batch_size=x.shape[0], optimizer={"kind": "adam", "lr": 0.01}, on_step=lambda s, l: losses.append(l))
    out["image " + j["name"]] = losses
    g = build_flow(f.config, torch.float64)
    gen = torch.Generator().manual_seed(j["seed"])
    g.reset(gen)
    g.data_init(x, c)
    with torch.no_grad():
        for p in g.parameters(): p.add_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.05)
    n = g.flat().numel()
    save_run(j["twin"], g, state={"step": 0, "optimizerStep": 0}, optimizer_m=torch.zeros(n, dtype=torch.float64), optimizer_v=torch.zeros(n, dtype=torch.float64))
    out[j["twin"]] = g.log_prob(x, c).tolist()
print(json.dumps(out))
`;
    writeFileSync(join(tmp, "images.py"), script);
    const printed = (await python([join(tmp, "images.py"), join(tmp, "images.json")]))
      .trim()
      .split("\n");
    const twin: Record<string, number[]> = JSON.parse(printed[printed.length - 1]);
    const close = (a: number[], b: number[], what: string) =>
      a.forEach((v, i) => {
        assert.ok(Number.isFinite(v), `${what}: image ${i}: ${v}`);
        assert.ok(
          Math.abs(v - b[i]) <= 1e-4,
          `${what}: image ${i}: ${v} (clayflow) vs ${b[i]} (twin)`,
        );
      });
    for (const job of jobs as {
      run: string;
      x: number[];
      cond: number[];
      twin: string;
      name: string;
    }[]) {
      close(expected[job.run], twin[job.run], `clayflow run ${job.run}`);
      const [dc, dt] = [decoded[job.run], twin[`decoded ${job.name}`]];
      assert.equal(dc.length, dt.length);
      dc.forEach((v, i) =>
        assert.ok(
          Math.abs(v - dt[i]) <= 1e-8,
          `${job.name}: decoded value ${i}: ${v} (clayflow) vs ${dt[i]} (twin)`,
        ),
      );
      const [cf, tw] = [imageLosses[job.name], twin[`image ${job.name}`]];
      cf.forEach((l, i) =>
        assert.ok(
          Math.abs(l - tw[i]) <= 1e-5 * Math.max(1, Math.abs(l)),
          `${job.name}: training step ${i + 1} loss ${l} (clayflow) vs ${tw[i]} (twin)`,
        ),
      );
      assert.ok(
        Math.abs(cf[1] - cf[0]) > 1e-4,
        `${job.name}: the loss did not move (${cf.join(", ")})`,
      );
      close(
        await exactImageLogProb(job.twin, job.x, job.cond),
        twin[job.twin],
        `twin run ${job.twin}`,
      );
    }
  });

  it("continues a run clayflow trained (train --resume) where clayflow would have gone", async () => {
    const common = [
      "--model",
      "maf",
      "--layers",
      "2",
      "--hidden",
      "8",
      "--data",
      csv,
      "--batch-size",
      "32",
      "--eval-every",
      "10",
      "--schedule",
      "constant",
      "--lr",
      "0.01",
      "--no-plots",
      "--threads",
      "1",
    ];
    const whole = join(tmp, "cf-40");
    const half = join(tmp, "cf-20");
    await clayflowCli(["train", ...common, "--out", whole, "--steps", "40"]);
    await clayflowCli(["train", ...common, "--out", half, "--steps", "20"]);
    await python(["-m", "clayflow_torch", "train", "--resume", half, "--steps", "40"]);
    const a = decodeSafetensors(readFileSync(join(whole, "weights.safetensors")));
    const b = decodeSafetensors(readFileSync(join(half, "weights.safetensors")));
    assert.equal(JSON.parse(b.metadata.training_state).step, 40);
    assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort());
    // Same batches, same Adam state and schedule: the parameters and moments agree to float32
    // rounding (the two sides' kernels differ in the last bits).
    for (const [name, t] of a.tensors) {
      const u = b.tensors.get(name)!.data as Float32Array;
      (t.data as Float32Array).forEach((v, i) =>
        assert.ok(
          Math.abs(v - u[i]) <= 1e-5 * Math.max(1, Math.abs(v)),
          `${name}[${i}]: ${v} (clayflow, 40 steps) vs ${u[i]} (clayflow 20 + twin 20)`,
        ),
      );
    }
  });

  it("scores a weights-only run (clayflow export) as clayflow scores the run it came from, and refuses to resume it", async () => {
    const run = join(tmp, "cf-40");
    const exported = join(tmp, "cf-40-exported");
    await clayflowCli(["export", "--run", run, "--out", exported]);
    await clayflowScore(run, csv, join(tmp, "cf-40.csv"));
    await python([
      "-m",
      "clayflow_torch",
      "score",
      "--run",
      exported,
      "--data",
      csv,
      "--out",
      join(tmp, "cf-40-exported-twin.csv"),
    ]);
    const cf = readScores(join(tmp, "cf-40.csv"));
    const tw = readScores(join(tmp, "cf-40-exported-twin.csv"));
    cf.logp.forEach((v, i) =>
      assert.ok(
        Math.abs(v - tw.logp[i]) <= 1e-3 * Math.max(1, Math.abs(v)),
        `row ${i}: ${v} (clayflow) vs ${tw.logp[i]} (twin, exported)`,
      ),
    );
    await assert.rejects(
      python(["-m", "clayflow_torch", "train", "--resume", exported, "--steps", "60"]),
      /holds weights only \(written by clayflow export\)/,
    );
  });

  it("trains data-parallel under torchrun (2 processes, gloo) with the single-process gradient", async () => {
    const out = join(tmp, "ddp");
    mkdirSync(out, { recursive: true });
    await python(
      [
        // --redirects/--tee 1: their default 0 fails in Debian's torch 1.13 on Python 3.11 (Std(0) is
        // not found by iterating the IntFlag), and tee'd stdout is harmless elsewhere.
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "--redirects",
        "1",
        "--tee",
        "1",
        "-m",
        "clayflow_torch",
        "train",
        "--config",
        join(tmp, "single.json"),
        "--data",
        csv,
        "--out",
        out,
        "--force",
        "--steps",
        "2",
        "--batch-size",
        "32",
        "--eval-every",
        "10",
        "--lr",
        "0.01",
        "--schedule",
        "constant",
      ],
      180_000,
    );
    const read = (dir: string) =>
      decodeSafetensors(readFileSync(join(dir, "weights.safetensors"))).tensors;
    const ddp = read(out);
    const single = read(join(tmp, "single"));
    // Adam's first moment after two steps is 0.09 g1 + 0.1 g2: the gradients themselves.
    const m = ddp.get("optimizer/m")!.data as Float32Array;
    const m1 = single.get("optimizer/m")!.data as Float32Array;
    assert.ok(
      m.some((v) => Math.abs(v) > 1e-4),
      "the DDP run's gradient is not zero",
    );
    let worst = 0;
    m.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - m1[i]))));
    assert.ok(worst < 1e-6, `DDP and single-process gradients differ by up to ${worst}`);
    for (const [name, t] of ddp) {
      if (!name.startsWith("params/")) continue;
      const a = t.data as Float32Array;
      const b = single.get(name)!.data as Float32Array;
      a.forEach((v, i) =>
        assert.ok(Math.abs(v - b[i]) < 1e-6, `${name}[${i}]: ${v} (DDP) vs ${b[i]} (single)`),
      );
    }
    // ...and clayflow scores the DDP checkpoint as the twin does.
    await python([
      "-m",
      "clayflow_torch",
      "score",
      "--run",
      out,
      "--data",
      csv,
      "--out",
      join(tmp, "ddp-twin.csv"),
    ]);
    await clayflowScore(out, csv, join(tmp, "ddp-clayflow.csv"));
    const cf = readScores(join(tmp, "ddp-clayflow.csv"));
    const { x: xs, cond: cs } = twinInputs(out);
    assertSameScores(
      cf,
      readScores(join(tmp, "ddp-twin.csv")),
      engineTolerance(cf, await exactScores(out, xs, cs)),
      "DDP run",
    );
  });
});
