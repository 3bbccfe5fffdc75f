/**
 * `clayflow sample`: draw samples from a trained run, as CSV rows or a PNG scatter plot. A run
 * trained with --context-columns samples given a context: --context V1,V2 (n samples of that
 * context) or --context FILE.csv (n samples per row, or one per row without -n).
 */
import { extname } from "node:path";
import { startEngine } from "../../engine/index.js";
import { writeFileAtomic } from "../../io/atomic-write.js";
import { savePng, composePanels, scatterPlot } from "../../io/plot.js";
import { UsageError, wasGiven, type Command, type ParsedOptions } from "../args.js";
import { configDim } from "../../models/index.js";
import { contextInput, inferenceParams, openRun, sampleDataRows } from "../run-dir.js";
import { readCsvFile } from "../../data/csv.js";
import { pickColumns } from "../data-source.js";
import type { LoadedRun } from "../../io/checkpoint.js";
import { tree } from "@jax-js/jax";
import { toCsv } from "../csv-out.js";
import { isImageConfig, type ResolvedImageFlowConfig } from "../../models/image.js";
import {
  IMAGE_DATASET_NAMES,
  loadImageDataset,
  type ImageDatasetName,
} from "../../data/image-datasets.js";
import { contextName } from "../../data/image-context.js";
import { contextGrid } from "../../eval/context-samples.js";
import { pickImages, sampleGrid } from "./train-image.js";

const MAX_SAMPLES = 10_000_000;
/** Rows (test contexts) of an image-conditional grid. */
const MAX_CONTEXT_ROWS = 32;
/** Samples of an image run without -n: an 8x8 grid (the vector default, 1,000, made a 1858x1858 picture). */
const IMAGE_SAMPLES = 64;

/** The raw context of each sample (row-major, contextDim per row) and the sample count, from --context. */
function contextRows(o: ParsedOptions, run: LoadedRun): { raw: Float64Array; n: number } {
  const k = run.flow.contextDim;
  const names = run.config.data.contextColumns ?? Array.from({ length: k }, (_, j) => `c${j + 1}`);
  const spec = o.context as string | undefined;
  if (spec === undefined) {
    throw new UsageError(
      `${o.run} is conditional on ${names.join(", ")}: pass --context with ${k} comma-separated values, or a CSV file of contexts`,
    );
  }
  const given = wasGiven(o, "n") ? (o.n as number) : null;
  let rows: Float64Array;
  if (spec.toLowerCase().endsWith(".csv")) {
    // By header name; a file without a header must hold exactly the context, in order.
    const table = readCsvFile(spec);
    const cols = table.hasHeader
      ? names.map((c) => table.columns.indexOf(c))
      : Array.from({ length: table.cols }, (_, j) => j);
    const missing = table.hasHeader ? names.filter((_, j) => cols[j] < 0) : [];
    if (missing.length > 0)
      throw new UsageError(
        `${spec} has no column ${missing.join(", ")} (the run's context: ${names.join(", ")})`,
      );
    if (!table.hasHeader && table.cols !== k)
      throw new UsageError(
        `${spec} has ${table.cols} columns and no header; the run's context is ${k} (${names.join(", ")})`,
      );
    rows = pickColumns(table.data, table.cols, cols);
  } else {
    const values = spec.split(",").map((v) => Number(v.trim()));
    if (values.length !== k || values.some((v) => !Number.isFinite(v))) {
      throw new UsageError(
        `--context takes ${k} number${k > 1 ? "s" : ""} (${names.join(", ")}) or a CSV file, got "${spec}"`,
      );
    }
    rows = Float64Array.from(values);
  }
  // Each context row is repeated for its samples: n per row (one per row of a file without -n).
  const per = given ?? (spec.toLowerCase().endsWith(".csv") ? 1 : (o.n as number));
  const count = rows.length / k;
  if (count * per > MAX_SAMPLES)
    throw new UsageError(`${count} contexts x ${per} samples each exceeds ${MAX_SAMPLES} samples`);
  const raw = new Float64Array(count * per * k);
  for (let r = 0; r < count; r++)
    for (let i = 0; i < per; i++) raw.set(rows.subarray(r * k, (r + 1) * k), (r * per + i) * k);
  return { raw, n: count * per };
}

export const sample: Command = {
  spec: {
    name: "sample",
    summary: "draw samples from a trained run (CSV rows; PNG for 2-D data and image grids)",
    usage: "clayflow sample --run DIR -n N --out FILE.csv|FILE.png [--temperature T] [--seed S]",
    options: {
      run: {
        type: "string",
        help: "run directory written by clayflow train",
        value: "DIR",
        required: true,
      },
      n: {
        type: "int",
        short: "n",
        help: `number of samples (image runs: default ${IMAGE_SAMPLES}, an 8x8 grid; image-conditional runs: test images whose contexts are sampled, one row each, at most ${MAX_CONTEXT_ROWS})`,
        default: 1000,
      },
      out: {
        type: "string",
        help: "output file: .csv (rows in the data's units) or .png (2-D scatter)",
        value: "FILE",
        required: true,
      },
      temperature: {
        type: "string",
        help: "scale of the base noise; several comma-separated values give PNG panels side by side",
        default: "1",
      },
      seed: {
        type: "int",
        help: "random seed (image-conditional runs: also which test images)",
        default: 0,
      },
      "data-dir": {
        type: "string",
        help: "image-conditional runs: folder holding the datasets (the contexts come from test images)",
        value: "DIR",
      },
      context: {
        type: "string",
        help: "runs trained with --context-columns: the context, as comma-separated values (n samples) or a CSV file of context rows (n samples per row; one without -n)",
        value: "V,V|FILE",
      },
      threads: { type: "int", help: "engine threads" },
    },
    examples: [
      "clayflow sample --run runs/8g -n 5000 --out samples.png --temperature 0.5,0.8,1",
      "clayflow sample --run runs/given --context 42,51000 -n 500 --out given.csv",
    ],
  },
  async run(o) {
    const n = o.n as number;
    if (n < 1 || n > MAX_SAMPLES)
      throw new UsageError(`-n must be between 1 and ${MAX_SAMPLES}, got ${n}`);
    const temps = String(o.temperature).split(",").map(Number);
    if (temps.some((t) => !Number.isFinite(t) || t < 0))
      throw new UsageError(`--temperature must be non-negative numbers, got "${o.temperature}"`);
    const out = o.out as string;
    const ext = extname(out).toLowerCase();
    if (ext !== ".csv" && ext !== ".png")
      throw new UsageError(`--out must end in .csv or .png, got "${out}"`);
    if (ext === ".csv" && temps.length > 1)
      throw new UsageError("CSV output takes one --temperature");
    await startEngine(o.threads ? { threads: o.threads as number } : {});
    const run = await openRun(o.run as string);
    if (o.context !== undefined && (isImageConfig(run.config.model) || run.flow.contextDim === 0)) {
      throw new UsageError(
        `--context is for runs trained with --context-columns; ${o.run} is not one`,
      );
    }
    if (isImageConfig(run.config.model)) {
      if (ext !== ".png") throw new UsageError("image models write PNG grids: use --out FILE.png");
      const m = run.config.model as ResolvedImageFlowConfig;
      const count = wasGiven(o, "n") ? n : IMAGE_SAMPLES;
      // Image sampling takes seconds to minutes: say what is happening before the wait.
      const say = (message: string) => process.stderr.write(`${message}\n`);
      if (m.context) {
        const name = run.config.data.name;
        if (!(IMAGE_DATASET_NAMES as readonly unknown[]).includes(name))
          throw new UsageError(
            `${o.run} does not record an image data set to take test contexts from`,
          );
        say(`loading the ${name} test images (the contexts) ...`);
        const test = await loadImageDataset(name as ImageDatasetName, "test", {
          dataDir: o["data-dir"] as string | undefined,
        });
        const params = inferenceParams(run);
        const picks = pickImages(test.n, Math.min(count, MAX_CONTEXT_ROWS), o.seed as number);
        say(
          `sampling ${picks.length} rows of ${contextName(m.context)} contexts at temperature ${temps.join(", ")} ...`,
        );
        try {
          await savePng(
            out,
            await contextGrid(run.flow, params, test.images, picks, o.seed as number, temps),
          );
        } finally {
          tree.dispose(params);
        }
        process.stdout.write(
          `wrote ${picks.length} rows (${contextName(m.context)} context | test image | 3 samples per temperature) at temperature ${temps.join(", ")} to ${out}\n`,
        );
        return;
      }
      const params = inferenceParams(run);
      say(`sampling ${count} images at temperature ${temps.join(", ")} ...`);
      try {
        await savePng(out, await sampleGrid(run.flow, params, count, o.seed as number, temps));
      } finally {
        tree.dispose(params);
      }
      process.stdout.write(
        `wrote a grid of ${count} samples${run.flow.contextDim ? " (a row per class)" : ""} at temperature ${temps.join(", ")} to ${out}\n`,
      );
      return;
    }
    const dim = configDim(run.config.model);
    const params = inferenceParams(run);
    const sets: Float32Array[] = [];
    let context: { raw: Float64Array; n: number } | null = null;
    try {
      if (ext === ".png" && dim !== 2)
        throw new UsageError(
          `PNG output shows 2-D data; this model has ${dim} dimensions: write --out FILE.csv`,
        );
      if (run.flow.contextDim > 0) context = contextRows(o, run);
      const cond = context ? contextInput(run, context.raw) : undefined;
      for (const t of temps)
        sets.push(await sampleDataRows(run, params, context?.n ?? n, o.seed as number, t, cond));
    } finally {
      tree.dispose(params);
    }
    const count = context?.n ?? n;
    if (ext === ".csv") {
      const columns = run.config.data.columns ?? Array.from({ length: dim }, (_, i) => `x${i}`);
      if (context) {
        // Each row: its context, then the sample.
        const k = run.flow.contextDim;
        const names =
          run.config.data.contextColumns ?? Array.from({ length: k }, (_, j) => `c${j + 1}`);
        const rows = new Float64Array(count * (k + dim));
        for (let r = 0; r < count; r++) {
          rows.set(context.raw.subarray(r * k, (r + 1) * k), r * (k + dim));
          rows.set(sets[0].subarray(r * dim, (r + 1) * dim), r * (k + dim) + k);
        }
        await writeFileAtomic(out, toCsv([...names, ...columns], rows, k + dim));
      } else await writeFileAtomic(out, toCsv(columns, sets[0], dim));
    } else {
      const all = sets.flatMap((s) => Array.from(s));
      const lim = (axis: number): [number, number] => {
        const v = all.filter((_, i) => i % 2 === axis).sort((a, b) => a - b);
        return [v[Math.floor(v.length * 0.002)], v[Math.ceil(v.length * 0.998) - 1]];
      };
      const panels = sets.map((s, i) =>
        scatterPlot(s, {
          title: `temperature ${temps[i]}`,
          xlim: lim(0),
          ylim: lim(1),
          alpha: 0.3,
          color: [214, 39, 40],
        }),
      );
      await savePng(out, composePanels(panels));
    }
    process.stdout.write(
      `wrote ${count} samples${context ? " given their contexts" : ""}${temps.length > 1 ? ` at ${temps.length} temperatures` : ""} to ${out}\n`,
    );
  },
};
