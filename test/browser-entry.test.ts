/**
 * The package root must load and work where there is no Node: no `node:` module in its
 * import graph (a browser bundler could not resolve one), and no use of Node's globals at
 * import time or in the in-memory work (training, density, sampling, run files as bytes).
 * The second test runs the built package in a child process with Node's globals removed and
 * a browser's `navigator` in their place.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const builtSrc = resolve(dirname(fileURLToPath(import.meta.url)), "../src");

/** Specifiers of the static imports / re-exports and literal dynamic imports of compiled ES module code. */
function specifiers(code: string): string[] {
  const found: string[] = [];
  const statement = /(?:^|[;}])\s*(?:import|export)\s(?:[^'"`;]*?\sfrom\s*)?["']([^"']+)["']/gm;
  const dynamic = /\bimport\(\s*["']([^"']+)["']\s*\)/g;
  for (const m of code.matchAll(statement)) found.push(m[1]);
  for (const m of code.matchAll(dynamic)) found.push(m[1]);
  return found;
}

/** The non-relative specifiers reachable from `entry` through relative imports, each with one importer. */
function externalImports(entry: string): Map<string, string> {
  const seen = new Set<string>();
  const external = new Map<string, string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of specifiers(readFileSync(file, "utf8"))) {
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec));
      else if (!external.has(spec)) external.set(spec, file);
    }
  };
  visit(entry);
  return external;
}

test("browser entry: the package root imports no node: module, only the engine", () => {
  const external = externalImports(resolve(builtSrc, "index.js"));
  const offenders = [...external]
    .filter(([spec]) => spec !== "@jax-js/jax")
    .map(([spec, file]) => `${spec} (from ${file})`);
  assert.deepEqual(offenders, []);
  // The walk sees node: imports where they are (the command line is Node-only), so the check can fail.
  const cli = externalImports(resolve(builtSrc, "cli/main.js"));
  assert.ok(
    [...cli.keys()].some((spec) => spec.startsWith("node:")),
    "the walk found no node: import in the CLI",
  );
});

// Runs in a child process: Node's globals removed before the package is imported.
const BROWSER_LIKE = `
const entry = process.argv[1];
const log = console.log.bind(console);
globalThis.navigator = { hardwareConcurrency: 2, userAgent: "clayflow-test (browser-like)" };
for (const name of ["process", "Buffer", "require", "global", "setImmediate"]) delete globalThis[name];
const cf = await import(entry);
const engine = await cf.startEngine();
const flow = cf.buildFlow({ model: "realnvp", dim: 2, layers: 2, hidden: [8] });
const rng = cf.makeRng(1);
const rows = 256;
const x = new Float32Array(2 * rows);
for (let i = 0; i < rows; i++) {
  const z = rng.normal();
  x[2 * i] = z;
  x[2 * i + 1] = 0.8 * z + 0.6 * rng.normal();
}
let state = null;
const fitted = await cf.fit(flow, flow.init(cf.random.key(0)), { x, rows }, {
  steps: 30, batchSize: 64, evalEvery: 10, optimizer: { kind: "adam", lr: 1e-2 },
  checkpointEvery: 30, onCheckpoint: (s) => { state = s; },
});
cf.tree.dispose(fitted.bestParams);
const probe = x.subarray(0, 2 * 16); // 16 rows
const logp = await cf.logProbRows(flow, cf.tree.ref(fitted.params), probe);
const samples = await cf.sampleRows(flow, fitted.params, 64);
const files = cf.encodeRun({ flow, state, data: { name: "browser", rows } });
const run = cf.decodeRun(files);
cf.tree.dispose(run.bestParams);
const logpAgain = await cf.logProbRows(run.flow, run.params, probe);
const table = cf.parseCsv("a,b\\n1,2\\n3,4\\n");
const refusal = (f) => { try { f(); return "no error"; } catch (e) { return e.message; } };
const flipped = Uint8Array.from(files.weights);
flipped[flipped.length - 4] ^= 1;
log(JSON.stringify({
  device: engine.device,
  threads: engine.threads,
  losses: fitted.history.map((h) => h.trainLoss),
  logp: [...logp],
  samples: [...samples],
  roundTrip: [...logpAgain].every((v, i) => v === logp[i]),
  weightsBytes: files.weights.length,
  weights: [...files.weights],
  weightsSha256: JSON.parse(files.config).weightsSha256,
  flippedBit: refusal(() => cf.decodeRun({ config: files.config, weights: flipped })),
  csvRows: table.rows,
  readCsvFile: refusal(() => cf.readCsvFile("data.csv")),
  encodePng: refusal(() => cf.encodePng({ width: 1, height: 1, channels: 1, data: new Uint8Array(1) })),
  saveRun: await cf.saveRun("run", { flow, state }).then(() => "no error", (e) => e.message),
  loadImageDataset: await cf.loadImageDataset("fashion-mnist", "test").then(() => "no error", (e) => e.message),
}));
`;

test("browser entry: trains, scores, samples and round-trips a run without Node's globals", () => {
  const child = spawnSync(
    process.execPath,
    ["--input-type=module", "-e", BROWSER_LIKE, pathToFileURL(resolve(builtSrc, "index.js")).href],
    {
      encoding: "utf8",
      timeout: 120_000,
    },
  );
  assert.equal(child.status, 0, `the browser-like run failed:\n${child.stderr}`);
  const r = JSON.parse(child.stdout.trim().split("\n").pop()!);
  assert.equal(r.device, "wasm");
  assert.equal(r.threads, 1, "no worker threads without Node's worker_threads");
  assert.equal(r.losses.length, 3);
  assert.ok(r.losses.every(Number.isFinite), `losses ${r.losses}`);
  assert.ok(r.losses[2] < r.losses[0], `training lowered the loss: ${r.losses}`);
  assert.equal(r.logp.length, 16);
  assert.ok(r.logp.every(Number.isFinite));
  assert.equal(r.samples.length, 128);
  assert.ok(r.samples.every(Number.isFinite));
  assert.equal(r.roundTrip, true, "the decoded run scores the rows exactly as the trained one");
  assert.ok(r.weightsBytes > 0);
  // The checksum without node:crypto (the portable SHA-256) is the standard one, and it is checked.
  assert.equal(
    r.weightsSha256,
    createHash("sha256").update(Uint8Array.from(r.weights)).digest("hex"),
  );
  assert.match(
    r.flippedBit,
    /^weights\.safetensors: its SHA-256 .* is not the one config\.json records/,
  );
  assert.equal(r.csvRows, 2);
  assert.match(r.readCsvFile, /^readCsvFile needs Node >= 20\.16 \(it uses node:fs\)/);
  assert.match(r.encodePng, /^encodePng needs Node >= 20\.16 \(it uses node:zlib\)/);
  assert.match(r.saveRun, /^saveRun needs Node >= 20\.16 \(it uses node:path\)/);
  assert.match(r.loadImageDataset, /^loading an image dataset needs Node >= 20\.16/);
});
