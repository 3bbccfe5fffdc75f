/** `clayflow score`: the log-likelihood of each row of a CSV file under a trained run. */
import { tree } from "@jax-js/jax";
import { startEngine } from "../../engine/index.js";
import { readCsvFile } from "../../data/csv.js";
import { standardizeTransform } from "../../data/standardize.js";
import { writeFileAtomic } from "../../io/atomic-write.js";
import { logProbRows } from "../../eval/log-prob-rows.js";
import { UsageError, type Command } from "../args.js";
import { configDim } from "../../models/index.js";
import { inferenceParams, openRun, toDataUnits } from "../run-dir.js";
import { toCsv } from "../csv-out.js";

export const score: Command = {
  spec: {
    name: "score",
    summary: "log-likelihood (nats) of every row of a CSV file under a trained run",
    usage: "clayflow score --run DIR --data FILE.csv --out FILE.csv",
    options: {
      run: { type: "string", help: "run directory written by clayflow train", value: "DIR", required: true },
      data: { type: "string", help: "CSV file with the model's columns", value: "FILE", required: true },
      out: { type: "string", help: "CSV file to write: the input columns plus log_likelihood", value: "FILE", required: true },
      threads: { type: "int", help: "engine threads" },
    },
    examples: ["clayflow score --run runs/table --data new-rows.csv --out scores.csv"],
  },
  async run(o) {
    const out = o.out as string;
    if (out === o.data) throw new UsageError("--out must differ from --data (the input would be overwritten)");
    await startEngine(o.threads ? { threads: o.threads as number } : {});
    const run = await openRun(o.run as string);
    if (run.flow.contextDim > 0) throw new UsageError("this model is conditional; scoring it from the command line is not supported yet");
    const table = readCsvFile(o.data as string);
    const dim = configDim(run.config.model);
    if (table.cols !== dim) {
      throw new Error(`${o.data} has ${table.cols} columns, the model in ${o.run} was trained on ${dim}`);
    }
    const raw = Float32Array.from(table.data);
    const x = run.preprocessing ? Float32Array.from(standardizeTransform(run.preprocessing, raw)) : raw;
    const params = inferenceParams(run);
    let logp: Float64Array;
    try {
      logp = toDataUnits(run, await logProbRows(run.flow, params, x));
    } finally {
      tree.dispose(params);
    }
    const columns = table.hasHeader ? table.columns : (run.config.data.columns ?? table.columns);
    await writeFileAtomic(out, toCsv(columns, raw, dim, { name: "log_likelihood", values: logp }));
    const finite = logp.filter(Number.isFinite);
    const mean = finite.reduce((a, v) => a + v, 0) / Math.max(1, finite.length);
    process.stdout.write(
      `scored ${table.rows} rows: mean log-likelihood ${mean.toFixed(4)} nats` +
        (finite.length < logp.length ? ` (${logp.length - finite.length} rows outside the support: -Infinity)` : "") +
        `; wrote ${out}\n`,
    );
  },
};
