/**
 * Every script in examples/ runs, as a user would run it (`import ... from "clayflow"`), at
 * sizes small enough for the suite, and does what its comment says: the numbers it prints are
 * checked against what the data's construction implies.
 */
import "./helpers/setup.js";
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";
import { makeRng } from "../src/core/prng.js";
import { decodeRun } from "../src/io/checkpoint.js";
import { locateImageDataset } from "../src/data/image-datasets.js";
import { tree } from "@jax-js/jax";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const examples = join(root, "examples");
const alias = join(here, "helpers/clayflow-alias.js");

/** Runs examples/<name> with `args`, one engine thread; returns its standard output. */
async function runExample(name: string, args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", alias, join(examples, name), ...args],
    {
      env: { ...process.env, CLAYFLOW_THREADS: "1" },
      encoding: "utf8",
      timeout: 120_000,
    },
  );
  return stdout;
}

/** The number after `label` in the output. */
function number(out: string, label: string): number {
  const m = out.match(new RegExp(`${label}:? (-?[0-9.]+)`));
  assert.ok(m, `no "${label}" in the output:\n${out}`);
  return Number(m[1]);
}

describe("examples", () => {
  const dir = mkdtempSync(join(tmpdir(), "clayflow-examples-"));
  const csvRun = join(dir, "csv-run");

  // A correlated Gaussian with very different column scales: its entropy is known exactly.
  const [s1, s2, rho] = [10, 0.1, 0.9];
  const entropy =
    Math.log(2 * Math.PI * Math.E) + 0.5 * Math.log(s1 * s1 * s2 * s2 * (1 - rho * rho));
  // What a flow that ignored the correlation (independent Gaussians) would score.
  const independent = Math.log(2 * Math.PI * Math.E) + 0.5 * Math.log(s1 * s1 * s2 * s2);

  before(() => {
    const rng = makeRng(7);
    const lines = ["height,weight"];
    for (let i = 0; i < 3000; i++) {
      const a = rng.normal();
      const b = rho * a + Math.sqrt(1 - rho * rho) * rng.normal();
      lines.push(`${100 + s1 * a},${-5 + s2 * b}`);
    }
    writeFileSync(join(dir, "data.csv"), lines.join("\n") + "\n");
  });

  it("density-csv: learns the correlation (test NLL near the entropy) and saves a run", async () => {
    const out = await runExample("density-csv.mjs", [
      join(dir, "data.csv"),
      "--steps",
      "300",
      "--out",
      csvRun,
    ]);
    const nll = number(out, "test NLL");
    // 300 test rows: the mean NLL's standard error is about 0.04 nats.
    assert.ok(nll > entropy - 0.15, `test NLL ${nll} is below the entropy ${entropy}`);
    assert.ok(
      nll < (entropy + independent) / 2,
      `test NLL ${nll}: the correlation was not learned (independent: ${independent})`,
    );
    assert.deepEqual(JSON.parse(readFileSync(join(csvRun, "config.json"), "utf8")).data.columns, [
      "height",
      "weight",
    ]);
  });

  it("web-page: bundles for the browser, and draws samples of the CSV run", async () => {
    const result = await build({
      entryPoints: [join(examples, "web-page/main.mjs")],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
      alias: { clayflow: join(root, "src/index.ts") },
      logLevel: "silent",
    });
    assert.equal(result.errors.length, 0);
    assert.ok(
      !/from\s*["']node:/.test(result.outputFiles[0].text),
      "the bundle imports a Node module",
    );

    // The page's drawing code, run here on the run the CSV example saved.
    const { register } = await import("node:module");
    register(pathToFileURL(join(here, "helpers/clayflow-alias-hooks.js")).href);
    const page = await import(pathToFileURL(join(examples, "web-page/main.mjs")).href);
    const run = decodeRun({
      config: readFileSync(join(csvRun, "config.json")),
      weights: readFileSync(join(csvRun, "weights.safetensors")),
    });
    const { canvas, text } = await page.drawSamples(run, 200);
    tree.dispose(run.params);
    if (run.bestParams) tree.dispose(run.bestParams);
    assert.equal(text, "200 samples");
    assert.ok(
      canvas.width > 100 && canvas.height > 100,
      `a ${canvas.width}x${canvas.height} picture`,
    );
  });

  it("anomaly-detection: the flow's score separates the anomalies", async () => {
    const out = await runExample("anomaly-detection.mjs", [
      "--steps",
      "200",
      "--train-rows",
      "2000",
      "--test-rows",
      "500",
    ]);
    const flow = number(out, "flow AUROC");
    const baseline = number(out, "Mahalanobis AUROC");
    // 40 anomalies among 500 rows: chance is 0.5 with a standard error near 0.05.
    assert.ok(flow > 0.7, `flow AUROC ${flow}`);
    assert.ok(baseline > 0.5 && baseline <= 1, `baseline AUROC ${baseline}`);
  });

  it("conditional-flow: samples follow the context (the ring's radius)", async () => {
    const out = await runExample("conditional-flow.mjs", ["--steps", "400", "--rows", "4000"]);
    const radii = [0.75, 1.25, 1.75].map((r) =>
      number(out, `context ${r}: mean radius of samples`),
    );
    assert.ok(radii[0] < radii[1] && radii[1] < radii[2], `radii ${radii}`);
    radii.forEach((r, i) =>
      assert.ok(
        Math.abs(r - [0.75, 1.25, 1.75][i]) < 0.15,
        `radius ${r} for context ${[0.75, 1.25, 1.75][i]}`,
      ),
    );
  });

  const fashion = locateImageDataset("fashion-mnist", "test").found !== null;
  it("image-sampling: a tiny Glow beats 8 bits/dim and writes an 8x8 grid", {
    skip: fashion ? false : "dataset-fashion-mnist is not installed",
  }, async () => {
    const png = join(dir, "grid.png");
    const out = await runExample("image-sampling.mjs", [
      "--steps",
      "20",
      "--images",
      "200",
      "--flow-steps",
      "1",
      "--test-images",
      "16",
      "--out",
      png,
    ]);
    const bits = number(out, "test");
    assert.ok(bits < 8, `${bits} bits/dim`);
    const bytes = readFileSync(png);
    assert.equal(bytes.subarray(1, 4).toString(), "PNG");
    assert.equal(bytes.readUInt32BE(16), bytes.readUInt32BE(20), "the 8x8 grid is square");
  });
});
