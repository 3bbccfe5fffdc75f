/**
 * `clayflow score`: the log-likelihood of each row of a CSV file under a trained run, and
 * optionally an anomaly flag for rows less likely than a threshold: a number of nats
 * (--threshold), or the Q-quantile of the training rows' log-likelihood (--flag-quantile), read
 * from the run's train-loglik.json or computed from --train-data. A conditional run (trained with
 * --context-columns) scores each row given its context columns, found by name.
 */
import { tree } from "@jax-js/jax";
import { startEngine } from "../../engine/index.js";
import { readCsvFile, type CsvTable } from "../../data/csv.js";
import { standardizeTransform } from "../../data/standardize.js";
import { writeFileAtomic } from "../../io/atomic-write.js";
import type { LoadedRun } from "../../io/checkpoint.js";
import { logProbRows } from "../../eval/log-prob-rows.js";
import {
  LOGLIK_FILE,
  readLogLikSummary,
  sortedQuantile,
  summaryQuantile,
} from "../../eval/loglik-quantiles.js";
import type { FlowParams } from "../../distributions/flow.js";
import { UsageError, type Command, type ParsedOptions } from "../args.js";
import { configContextDim, configDim } from "../../models/index.js";
import { contextInput, inferenceParams, openRun, toDataUnits } from "../run-dir.js";
import { toCsv, type CsvColumn } from "../csv-out.js";
import { pickColumns } from "../data-source.js";

/**
 * Which columns of `table` feed the model, in the model's order: by header name when the file
 * names all of the run's columns (other columns are carried through), else by position when
 * the file has exactly the model's width. A conditional run's context columns go by name only.
 */
function modelColumns(
  table: CsvTable,
  file: string,
  run: LoadedRun,
  runDir: string,
): { x: number[]; cond: number[] } {
  const dim = configDim(run.config.model);
  const names = run.config.data.columns;
  const contextNames = run.config.data.contextColumns;
  if (configContextDim(run.config.model) > 0) {
    if (!names || !contextNames)
      throw new Error(
        `${runDir} does not record its column names, so the rows of ${file} cannot be matched to the model and its context`,
      );
    const missing = [...names, ...contextNames].filter(
      (n) => !table.hasHeader || !table.columns.includes(n),
    );
    if (missing.length > 0) {
      throw new Error(
        `${file} lacks the column${missing.length > 1 ? "s" : ""} ${missing.join(", ")}: the model in ${runDir} scores ${names.join(", ")} given ${contextNames.join(", ")} (found by header name)`,
      );
    }
    return {
      x: names.map((n) => table.columns.indexOf(n)),
      cond: contextNames.map((n) => table.columns.indexOf(n)),
    };
  }
  if (table.hasHeader && names) {
    const idx = names.map((n) => table.columns.indexOf(n));
    if (idx.every((i) => i >= 0)) return { x: idx, cond: [] };
  }
  if (table.cols === dim) return { x: Array.from({ length: dim }, (_, j) => j), cond: [] };
  const named = names
    ? ` (${names.join(", ")}); a header naming those columns lets other columns (ids, labels) ride along`
    : "";
  throw new Error(
    `${file} has ${table.cols} columns, the model in ${runDir} was trained on ${dim}${named}`,
  );
}

/** Log-likelihoods (nats, data units) of the model's columns of a CSV file (given its context columns). */
async function scoreFile(
  run: LoadedRun,
  params: FlowParams,
  file: string,
  runDir: string,
): Promise<{ table: CsvTable; logp: Float64Array }> {
  const table = readCsvFile(file);
  const cols = modelColumns(table, file, run, runDir);
  const raw = pickColumns(table.data, table.cols, cols.x);
  const x = Float32Array.from(
    run.preprocessing ? standardizeTransform(run.preprocessing, raw) : raw,
  );
  const cond =
    cols.cond.length > 0
      ? contextInput(run, pickColumns(table.data, table.cols, cols.cond))
      : undefined;
  return { table, logp: toDataUnits(run, await logProbRows(run.flow, params, x, { cond })) };
}

interface Threshold {
  nats: number;
  why: string;
}

function checkThresholdOptions(o: ParsedOptions): void {
  const q = o["flag-quantile"] as number | undefined;
  const t = o.threshold as number | undefined;
  if (q !== undefined && t !== undefined)
    throw new UsageError("give either --flag-quantile or --threshold, not both");
  if (q !== undefined && !(q > 0 && q < 1))
    throw new UsageError(`--flag-quantile must be a fraction in (0, 1), e.g. 0.01; got ${q}`);
  if (o["train-data"] !== undefined && q === undefined)
    throw new UsageError(
      "--train-data only serves --flag-quantile (it computes the training quantile)",
    );
}

/** The threshold in nats, from the options (null when no flagging was asked for). */
async function threshold(
  o: ParsedOptions,
  run: LoadedRun,
  params: FlowParams,
  runDir: string,
): Promise<Threshold | null> {
  if (o.threshold !== undefined)
    return { nats: o.threshold as number, why: "given by --threshold" };
  const q = o["flag-quantile"] as number | undefined;
  if (q === undefined) return null;
  const trainData = o["train-data"] as string | undefined;
  if (trainData !== undefined) {
    const { logp } = await scoreFile(run, params, trainData, runDir);
    if (logp.some(Number.isNaN))
      throw new Error(`the model gives NaN log-likelihoods on ${trainData}`);
    return {
      nats: sortedQuantile(logp.sort(), q),
      why: `the ${q}-quantile of the log-likelihood of the ${logp.length} rows of ${trainData}`,
    };
  }
  const summary = await readLogLikSummary(runDir);
  const recompute =
    "pass --threshold NATS, or --train-data FILE.csv (the training CSV) to compute the quantile from its rows";
  if (!summary) {
    throw new UsageError(
      `${runDir} has no ${LOGLIK_FILE} (the training log-likelihood quantiles; runs trained by older versions lack it): ${recompute}`,
    );
  }
  const paramsStep = run.state.best?.step ?? run.state.step;
  if (summary.step !== run.state.step || summary.paramsStep !== paramsStep) {
    throw new UsageError(
      `${runDir}/${LOGLIK_FILE} describes the parameters of step ${summary.paramsStep} (run at step ${summary.step}), but the run now ` +
        `scores with those of step ${paramsStep} (run at step ${run.state.step}; resumed and interrupted?): ${recompute}`,
    );
  }
  const sub = summary.rows < summary.ofRows ? ` (${summary.rows} of ${summary.ofRows})` : "";
  return {
    nats: summaryQuantile(summary, q),
    why: `the ${q}-quantile of the training log-likelihood, over ${summary.rows} training rows${sub}`,
  };
}

export const score: Command = {
  spec: {
    name: "score",
    summary:
      "log-likelihood (nats) of every row of a CSV file under a trained run; optionally flag unlikely rows as anomalies",
    usage:
      "clayflow score --run DIR --data FILE.csv --out FILE.csv [--flag-quantile Q | --threshold NATS]",
    options: {
      run: {
        type: "string",
        help: "run directory written by clayflow train",
        value: "DIR",
        required: true,
      },
      data: {
        type: "string",
        help: "CSV file with the model's columns (by header name; other columns are copied through), and a conditional run's context columns",
        value: "FILE",
        required: true,
      },
      out: {
        type: "string",
        help: "CSV file to write: the input columns plus log_likelihood (and anomaly when flagging)",
        value: "FILE",
        required: true,
      },
      "flag-quantile": {
        type: "number",
        help: "flag rows whose log-likelihood is below this quantile of the training rows' (e.g. 0.01)",
        value: "Q",
      },
      threshold: {
        type: "number",
        help: "flag rows whose log-likelihood is below this many nats",
        value: "NATS",
      },
      "train-data": {
        type: "string",
        help: "with --flag-quantile: compute the quantile from this CSV (the training data) instead of the run's stored quantiles",
        value: "FILE",
      },
      threads: { type: "int", help: "engine threads" },
    },
    examples: [
      "clayflow score --run runs/table --data new-rows.csv --out scores.csv",
      "clayflow score --run runs/table --data new-rows.csv --out flagged.csv --flag-quantile 0.01",
    ],
  },
  async run(o) {
    const out = o.out as string;
    if (out === o.data)
      throw new UsageError("--out must differ from --data (the input would be overwritten)");
    checkThresholdOptions(o);
    await startEngine(o.threads ? { threads: o.threads as number } : {});
    const runDir = o.run as string;
    const run = await openRun(runDir);
    const params = inferenceParams(run);
    let table: CsvTable;
    let logp: Float64Array;
    let limit: Threshold | null;
    try {
      ({ table, logp } = await scoreFile(run, params, o.data as string, runDir));
      limit = await threshold(o, run, params, runDir);
    } finally {
      tree.dispose(params);
    }
    const columns = table.hasHeader ? table.columns : (run.config.data.columns ?? table.columns);
    if (columns.includes("log_likelihood")) {
      throw new UsageError(
        `${o.data} already has a log_likelihood column (a scored file?): score the original rows`,
      );
    }
    const extra: CsvColumn[] = [{ name: "log_likelihood", values: logp }];
    // NaN (a broken model) is flagged too: !(NaN >= t).
    const flags = limit ? Uint8Array.from(logp, (v) => (v >= limit!.nats ? 0 : 1)) : null;
    // A file with ground-truth labels in an "anomaly" column keeps them; the flag goes beside.
    const flagName = columns.includes("anomaly") ? "anomaly_flag" : "anomaly";
    if (flags) extra.push({ name: flagName, values: flags });
    await writeFileAtomic(out, toCsv(columns, table.data, table.cols, extra, { exact: true }));
    const finite = logp.filter(Number.isFinite);
    const mean = finite.reduce((a, v) => a + v, 0) / Math.max(1, finite.length);
    let text =
      `scored ${table.rows} rows: mean log-likelihood ${mean.toFixed(4)} nats` +
      (finite.length < logp.length
        ? ` (${logp.length - finite.length} rows outside the support: -Infinity)`
        : "") +
      `; wrote ${out}\n`;
    if (limit && flags) {
      const k = flags.reduce((a, v) => a + v, 0);
      text +=
        `flagged ${k} of ${table.rows} rows (${((100 * k) / table.rows).toFixed(2)}%) as anomalies (column ${flagName}): ` +
        `log-likelihood below ${limit.nats.toFixed(4)} nats, ${limit.why}\n`;
    }
    process.stdout.write(text);
  },
};
