/** What several commands share about run directories and the model inside them. */
import { existsSync, mkdirSync, readdirSync, rmdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { tree } from "@jax-js/jax";
import { sampleRows } from "../eval/sample-rows.js";
import { CONFIG_FILE, loadRun, type LoadedRun } from "../io/checkpoint.js";
import type { FlowParams } from "../distributions/flow.js";
import {
  standardizeInverse,
  standardizerLogDet,
  standardizeTransform,
} from "../data/standardize.js";
import { UsageError } from "./args.js";

/** Refuse to write a new run over an existing one (nothing on disk gets damaged). */
export function checkFreshRunDir(dir: string, { allowReplaceRun = false } = {}): void {
  if (!existsSync(dir)) return;
  const entries = readdirSync(dir);
  if (entries.length === 0) return;
  if (entries.includes(CONFIG_FILE)) {
    if (allowReplaceRun) return;
    throw new UsageError(
      `${dir} already holds a run: continue it with --resume ${dir}, or choose another --out`,
    );
  }
  throw new UsageError(
    `${dir} is not empty and is not a clayflow run: choose an empty or new --out directory`,
  );
}

/**
 * Create a new run's directory before training (so an unwritable --out fails at once), with
 * `discardIfEmpty` for a run that fails before its first checkpoint: it removes the directories
 * this call created while they are empty (saveRun removes a failed first save's files).
 */
export function createRunDir(dir: string): { discardIfEmpty(): void } {
  const created = mkdirSync(dir, { recursive: true });
  return {
    discardIfEmpty() {
      if (created === undefined) return;
      const top = resolve(created);
      for (let d = resolve(dir); ; d = dirname(d)) {
        try {
          rmdirSync(d); // fails, and stops the climb, if anything is inside
        } catch {
          return;
        }
        if (d === top || dirname(d) === d) return;
      }
    },
  };
}

/** The parameters to use for inference: the best validation ones when the run kept them. */
export function inferenceParams(run: LoadedRun): FlowParams {
  if (run.bestParams) {
    tree.dispose(run.params);
    return run.bestParams;
  }
  return run.params;
}

export async function openRun(dir: string | undefined): Promise<LoadedRun> {
  if (!dir)
    throw new UsageError("--run DIR is required: the directory written by `clayflow train`");
  return loadRun(dir);
}

/** Log-likelihoods in the data's own units: add the standardisation's log-det. */
export function toDataUnits(run: LoadedRun, logp: Float64Array): Float64Array {
  if (!run.preprocessing) return logp;
  const shift = standardizerLogDet(run.preprocessing);
  return logp.map((v) => v + shift);
}

/** The flow's context rows from raw context values (row-major): standardised as in training. */
export function contextInput(run: LoadedRun, raw: Float64Array): Float32Array {
  return Float32Array.from(
    run.contextPreprocessing ? standardizeTransform(run.contextPreprocessing, raw) : raw,
  );
}

/**
 * Draw `n` samples (in the data's units) as host rows; a conditional flow takes `cond`, n context
 * rows from `contextInput`. Does not consume `params`.
 */
export async function sampleDataRows(
  run: LoadedRun,
  params: FlowParams,
  n: number,
  seed: number,
  temperature: number,
  cond?: Float32Array,
): Promise<Float32Array> {
  const z = await sampleRows(run.flow, params, n, { seed, temperature, cond });
  return run.preprocessing ? Float32Array.from(standardizeInverse(run.preprocessing, z)) : z;
}
