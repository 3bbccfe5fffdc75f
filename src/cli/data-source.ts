/**
 * Resolve a `--data` argument into training, validation and test rows: a
 * built-in 2-D toy density by name, or a CSV file of numeric columns
 * (standardised with statistics of the training rows, stored with the model).
 * Named context columns of a CSV file (`--context-columns`) become each row's
 * context, standardised on their own: the flow models the other columns given them.
 */
import { excerpt } from "../core/excerpt.js";
import { existsSync } from "node:fs";
import { sampleToy2d, TOY_DATASETS, type ToyDataset } from "../data/toy2d.js";
import { readCsvFile, type CsvTable } from "../data/csv.js";
import { splitRows, takeRows } from "../data/split.js";
import { fitStandardizer, standardizeTransform, type Standardizer } from "../data/standardize.js";
import { UsageError } from "./args.js";

export interface Rows {
  x: Float32Array;
  rows: number;
  /** Context rows [rows, contextDim] (conditional runs). */
  cond?: Float32Array;
}

export interface DataSource {
  /** What the user named: a toy dataset or the CSV path. */
  name: string;
  kind: "toy" | "csv";
  dim: number;
  columns: string[];
  train: Rows;
  valid: Rows;
  test: Rows;
  /** For CSV data: the standardisation fitted on the training rows. */
  standardizer: Standardizer | null;
  /** Context columns of a conditional run (empty otherwise), and their standardisation. */
  contextColumns: string[];
  contextStandardizer: Standardizer | null;
}

const rowsOf = (x: Float32Array, dim: number): Rows => ({ x, rows: x.length / dim });

export function isToyName(name: string): name is ToyDataset {
  return (TOY_DATASETS as readonly string[]).includes(name);
}

/** Toy data: independent draws for each split (seeds seed, seed+1, seed+2). */
function toySource(name: ToyDataset, samples: number, seed: number): DataSource {
  const valid = Math.max(1000, Math.round(samples / 10));
  return {
    name,
    kind: "toy",
    dim: 2,
    columns: ["x", "y"],
    train: rowsOf(sampleToy2d(name, samples, seed), 2),
    valid: rowsOf(sampleToy2d(name, valid, seed + 1), 2),
    test: rowsOf(sampleToy2d(name, 20000, seed + 2), 2),
    standardizer: null,
    contextColumns: [],
    contextStandardizer: null,
  };
}

/** Column indices of `table` for the model's inputs and for the context (named in `context`). */
export function splitColumns(
  table: CsvTable,
  file: string,
  context: string[],
): { x: number[]; cond: number[] } {
  const all = Array.from({ length: table.cols }, (_, j) => j);
  if (context.length === 0) return { x: all, cond: [] };
  if (!table.hasHeader)
    throw new UsageError(`${file} has no header row, so --context-columns cannot name its columns`);
  const dup = context.find((c, i) => context.indexOf(c) !== i);
  if (dup !== undefined) throw new UsageError(`--context-columns names ${dup} twice`);
  const cond = context.map((name) => {
    const j = table.columns.indexOf(name);
    if (j < 0)
      throw new UsageError(
        `${file} has no column ${excerpt(name)} (its columns: ${table.columns.map((c) => excerpt(c, 24)).join(", ")})`,
      );
    return j;
  });
  const x = all.filter((j) => !cond.includes(j));
  if (x.length === 0)
    throw new UsageError(
      `--context-columns takes every column of ${file}: leave at least one column to model`,
    );
  return { x, cond };
}

/** The columns `cols` of a row-major table, row-major. */
export function pickColumns(data: Float64Array, width: number, cols: number[]): Float64Array {
  const rows = data.length / width;
  const out = new Float64Array(rows * cols.length);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < cols.length; j++) out[r * cols.length + j] = data[r * width + cols[j]];
  return out;
}

function csvSource(path: string, seed: number, context: string[]): DataSource {
  const table = readCsvFile(path);
  if (table.rows < 10) {
    throw new Error(
      `${path}: only ${table.rows} data rows; a flow needs at least 10 (ideally thousands)`,
    );
  }
  const { x: xCols, cond: condCols } = splitColumns(table, path, context);
  const split = splitRows(table.rows, { valid: 0.1, test: 0.1, seed });
  const part = (cols: number[]) => {
    const data = pickColumns(table.data, table.cols, cols);
    const names = cols.map((j) => table.columns[j]);
    const standardizer = fitStandardizer(
      takeRows(data, cols.length, split.train),
      cols.length,
      undefined,
      names,
    );
    const rows = (idx: Int32Array) =>
      Float32Array.from(standardizeTransform(standardizer, takeRows(data, cols.length, idx)));
    return {
      names,
      standardizer,
      train: rows(split.train),
      valid: rows(split.valid),
      test: rows(split.test),
    };
  };
  const x = part(xCols);
  const c = condCols.length > 0 ? part(condCols) : null;
  const rows = (key: "train" | "valid" | "test"): Rows => ({
    ...rowsOf(x[key], xCols.length),
    ...(c ? { cond: c[key] } : {}),
  });
  return {
    name: path,
    kind: "csv",
    dim: xCols.length,
    columns: x.names,
    train: rows("train"),
    valid: rows("valid"),
    test: rows("test"),
    standardizer: x.standardizer,
    contextColumns: c?.names ?? [],
    contextStandardizer: c?.standardizer ?? null,
  };
}

export function loadDataSource(
  spec: string,
  { samples = 20000, seed = 0, contextColumns = [] as string[] } = {},
): DataSource {
  if (isToyName(spec)) {
    if (contextColumns.length > 0)
      throw new UsageError(
        `--context-columns names columns of a CSV file; "${spec}" is a toy density without any`,
      );
    return toySource(spec, samples, seed);
  }
  if (spec.toLowerCase().endsWith(".csv") || existsSync(spec)) {
    if (!existsSync(spec)) throw new Error(`data file not found: ${spec}`);
    return csvSource(spec, seed, contextColumns);
  }
  throw new UsageError(
    `unknown dataset "${spec}": use one of ${TOY_DATASETS.join(", ")}, or a path to a CSV file of numeric columns`,
  );
}
