/**
 * Resolve a `--data` argument into training, validation and test rows: a
 * built-in 2-D toy density by name, or a CSV file of numeric columns
 * (standardised with statistics of the training rows, stored with the model).
 */
import { existsSync } from "node:fs";
import { sampleToy2d, TOY_DATASETS, type ToyDataset } from "../data/toy2d.js";
import { readCsvFile } from "../data/csv.js";
import { splitRows, takeRows } from "../data/split.js";
import { fitStandardizer, standardizeTransform, type Standardizer } from "../data/standardize.js";
import { UsageError } from "./args.js";

export interface Rows {
  x: Float32Array;
  rows: number;
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
  };
}

function csvSource(path: string, seed: number): DataSource {
  const table = readCsvFile(path);
  if (table.rows < 10) {
    throw new Error(`${path}: only ${table.rows} data rows; a flow needs at least 10 (ideally thousands)`);
  }
  const split = splitRows(table.rows, { valid: 0.1, test: 0.1, seed });
  const train = takeRows(table.data, table.cols, split.train);
  const standardizer = fitStandardizer(train, table.cols, undefined, table.columns);
  const prep = (idx: Int32Array) => Float32Array.from(standardizeTransform(standardizer, takeRows(table.data, table.cols, idx)));
  return {
    name: path,
    kind: "csv",
    dim: table.cols,
    columns: table.columns,
    train: rowsOf(Float32Array.from(standardizeTransform(standardizer, train)), table.cols),
    valid: rowsOf(prep(split.valid), table.cols),
    test: rowsOf(prep(split.test), table.cols),
    standardizer,
  };
}

export function loadDataSource(spec: string, { samples = 20000, seed = 0 } = {}): DataSource {
  if (isToyName(spec)) return toySource(spec, samples, seed);
  if (spec.toLowerCase().endsWith(".csv") || existsSync(spec)) {
    if (!existsSync(spec)) throw new Error(`data file not found: ${spec}`);
    return csvSource(spec, seed);
  }
  throw new UsageError(
    `unknown dataset "${spec}": use one of ${TOY_DATASETS.join(", ")}, or a path to a CSV file of numeric columns`,
  );
}
