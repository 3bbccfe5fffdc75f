/** `clayflow sample`: draw samples from a trained run, as CSV rows or a PNG scatter plot. */
import { extname } from "node:path";
import { startEngine } from "../../engine/index.js";
import { writeFileAtomic } from "../../io/atomic-write.js";
import { savePng, composePanels, scatterPlot } from "../../io/plot.js";
import { UsageError, type Command } from "../args.js";
import { configDim } from "../../models/index.js";
import { inferenceParams, openRun, sampleDataRows } from "../run-dir.js";
import { tree } from "@jax-js/jax";
import { toCsv } from "../csv-out.js";
import { isImageConfig, type ResolvedImageFlowConfig } from "../../models/image.js";
import { IMAGE_DATASET_NAMES, loadImageDataset, type ImageDatasetName } from "../../data/image-datasets.js";
import { contextName } from "../../data/image-context.js";
import { contextGrid } from "../../eval/context-samples.js";
import { pickImages, sampleGrid } from "./train-image.js";

const MAX_SAMPLES = 10_000_000;
/** Rows (test contexts) of an image-conditional grid. */
const MAX_CONTEXT_ROWS = 32;

export const sample: Command = {
  spec: {
    name: "sample",
    summary: "draw samples from a trained run (CSV rows; PNG for 2-D data and image grids)",
    usage: "clayflow sample --run DIR -n N --out FILE.csv|FILE.png [--temperature T] [--seed S]",
    options: {
      run: { type: "string", help: "run directory written by clayflow train", value: "DIR", required: true },
      n: { type: "int", short: "n", help: `number of samples (image-conditional runs: test images whose contexts are sampled, one row each, at most ${MAX_CONTEXT_ROWS})`, default: 1000 },
      out: { type: "string", help: "output file: .csv (rows in the data's units) or .png (2-D scatter)", value: "FILE", required: true },
      temperature: { type: "string", help: "scale of the base noise; several comma-separated values give PNG panels side by side", default: "1" },
      seed: { type: "int", help: "random seed (image-conditional runs: also which test images)", default: 0 },
      "data-dir": { type: "string", help: "image-conditional runs: folder holding the datasets (the contexts come from test images)", value: "DIR" },
      threads: { type: "int", help: "engine threads" },
    },
    examples: ["clayflow sample --run runs/8g -n 5000 --out samples.png --temperature 0.5,0.8,1"],
  },
  async run(o) {
    const n = o.n as number;
    if (n < 1 || n > MAX_SAMPLES) throw new UsageError(`-n must be between 1 and ${MAX_SAMPLES}, got ${n}`);
    const temps = String(o.temperature).split(",").map(Number);
    if (temps.some((t) => !Number.isFinite(t) || t < 0)) throw new UsageError(`--temperature must be non-negative numbers, got "${o.temperature}"`);
    const out = o.out as string;
    const ext = extname(out).toLowerCase();
    if (ext !== ".csv" && ext !== ".png") throw new UsageError(`--out must end in .csv or .png, got "${out}"`);
    if (ext === ".csv" && temps.length > 1) throw new UsageError("CSV output takes one --temperature");
    await startEngine(o.threads ? { threads: o.threads as number } : {});
    const run = await openRun(o.run as string);
    if (isImageConfig(run.config.model)) {
      if (ext !== ".png") throw new UsageError("image models write PNG grids: use --out FILE.png");
      const m = run.config.model as ResolvedImageFlowConfig;
      if (m.context) {
        const name = run.config.data.name;
        if (!(IMAGE_DATASET_NAMES as readonly unknown[]).includes(name)) throw new UsageError(`${o.run} does not record an image data set to take test contexts from`);
        const test = await loadImageDataset(name as ImageDatasetName, "test", { dataDir: o["data-dir"] as string | undefined });
        const params = inferenceParams(run);
        const picks = pickImages(test.n, Math.min(n, MAX_CONTEXT_ROWS), o.seed as number);
        try {
          await savePng(out, await contextGrid(run.flow, params, test.images, picks, o.seed as number, temps));
        } finally {
          tree.dispose(params);
        }
        process.stdout.write(`wrote ${picks.length} rows (${contextName(m.context)} context | test image | 3 samples per temperature) at temperature ${temps.join(", ")} to ${out}\n`);
        return;
      }
      const params = inferenceParams(run);
      try {
        await savePng(out, await sampleGrid(run.flow, params, n, o.seed as number, temps));
      } finally {
        tree.dispose(params);
      }
      process.stdout.write(`wrote a grid of ${n} samples${run.flow.contextDim ? " (a row per class)" : ""} at temperature ${temps.join(", ")} to ${out}\n`);
      return;
    }
    if (run.flow.contextDim > 0) throw new UsageError("this model is conditional; sampling it from the command line is not supported yet");
    const params = inferenceParams(run);
    const dim = configDim(run.config.model);
    if (ext === ".png" && dim !== 2) {
      tree.dispose(params);
      throw new UsageError(`PNG output shows 2-D data; this model has ${dim} dimensions: write --out FILE.csv`);
    }
    const sets: Float32Array[] = [];
    for (const t of temps) sets.push(await sampleDataRows(run, params, n, o.seed as number, t));
    tree.dispose(params);
    if (ext === ".csv") {
      const columns = run.config.data.columns ?? Array.from({ length: dim }, (_, i) => `x${i}`);
      await writeFileAtomic(out, toCsv(columns, sets[0], dim));
    } else {
      const all = sets.flatMap((s) => Array.from(s));
      const lim = (axis: number): [number, number] => {
        const v = all.filter((_, i) => i % 2 === axis).sort((a, b) => a - b);
        return [v[Math.floor(v.length * 0.002)], v[Math.ceil(v.length * 0.998) - 1]];
      };
      const panels = sets.map((s, i) => scatterPlot(s, { title: `temperature ${temps[i]}`, xlim: lim(0), ylim: lim(1), alpha: 0.3, color: [214, 39, 40] }));
      await savePng(out, composePanels(panels));
    }
    process.stdout.write(`wrote ${n} samples${temps.length > 1 ? ` at ${temps.length} temperatures` : ""} to ${out}\n`);
  },
};
