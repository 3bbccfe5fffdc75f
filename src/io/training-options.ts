/**
 * config.json's `training` section, checked when a run loads, as its model config is: a run
 * whose options were edited to nonsense (`steps: -5`, a learning rate of "fast") fails at load
 * with the field's name, rather than later as a confusing training error. The rules are the
 * ones `fit` applies when it runs, so a run that loads can also resume.
 */
import type { FitOptions } from "../train/fit.js";
import { resolveOptimizerConfig } from "../train/optimizer.js";
import { validateSchedule, type ScheduleConfig } from "../train/schedules.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** The JSON-able training options (callbacks, signals and data are left out). */
export type TrainingOptionsJSON = Pick<
  FitOptions,
  | "steps"
  | "epochs"
  | "batchSize"
  | "optimizer"
  | "seed"
  | "validFraction"
  | "evalEvery"
  | "evalBatchSize"
  | "patience"
  | "minDelta"
  | "maxBadSteps"
  | "checkpointEvery"
>;

export const OPTION_KEYS = [
  "steps",
  "epochs",
  "batchSize",
  "optimizer",
  "seed",
  "validFraction",
  "evalEvery",
  "evalBatchSize",
  "patience",
  "minDelta",
  "maxBadSteps",
  "checkpointEvery",
] as const;

/** The summary of progress at save time (the training state itself is in the weights). */
export interface TrainingProgress {
  step: number;
  skipped: number;
  bestStep: number | null;
  bestValidLoss: number | null;
  lastTrainLoss: number | null;
  lastValidLoss: number | null;
  seconds: number;
}

const POSITIVE_INTS = [
  "steps",
  "epochs",
  "batchSize",
  "evalEvery",
  "evalBatchSize",
  "patience",
  "maxBadSteps",
  "checkpointEvery",
] as const;

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** `training.options`, checked field by field; `where` prefixes the error (the file's path). */
export function parseTrainingOptions(where: string, raw: unknown): TrainingOptionsJSON {
  const fail = (field: string, want: string, got: unknown): never => {
    throw new Error(`${where}: training.options.${field} must be ${want}, got ${jsonExcerpt(got)}`);
  };
  if (!isObject(raw))
    throw new Error(
      `${where}: training.options must be an object of fit options, got ${jsonExcerpt(raw)}`,
    );
  const unknown = Object.keys(raw).filter((k) => !(OPTION_KEYS as readonly string[]).includes(k));
  if (unknown.length) {
    throw new Error(
      `${where}: training.options has unknown field${unknown.length > 1 ? "s" : ""} ${unknown
        .slice(0, 3)
        .map((k) => jsonExcerpt(k, 30))
        .join(
          ", ",
        )}${unknown.length > 3 ? ` and ${unknown.length - 3} more` : ""} (known: ${OPTION_KEYS.join(", ")})`,
    );
  }
  for (const key of POSITIVE_INTS) {
    const v = raw[key];
    if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= 1))
      fail(key, "a positive integer", v);
  }
  if (raw.seed !== undefined && !(typeof raw.seed === "number" && Number.isFinite(raw.seed)))
    fail("seed", "a finite number", raw.seed);
  const f = raw.validFraction;
  if (f !== undefined && !(typeof f === "number" && f >= 0 && f < 1))
    fail("validFraction", "a fraction in [0, 1)", f);
  const d = raw.minDelta;
  if (d !== undefined && !(typeof d === "number" && d >= 0 && Number.isFinite(d)))
    fail("minDelta", "a non-negative number", d);
  if (raw.optimizer !== undefined) {
    const o = raw.optimizer;
    if (!isObject(o)) fail("optimizer", "an object { kind, lr, ... }", o);
    const { lr, ...rest } = o as Record<string, unknown>;
    const allowed = ["kind", "b1", "b2", "eps", "weightDecay", "clipNorm"];
    const extra = Object.keys(rest).filter((k) => !allowed.includes(k));
    if (extra.length) fail("optimizer", `an object with lr and ${allowed.join(", ")}`, o);
    try {
      resolveOptimizerConfig(rest as never);
      if (typeof lr === "number") {
        if (!(lr > 0 && Number.isFinite(lr)))
          throw new Error(`lr must be a positive number, got ${jsonExcerpt(lr)}`);
      } else validateSchedule(lr as ScheduleConfig);
    } catch (e) {
      throw new Error(`${where}: training.options.optimizer: ${(e as Error).message}`);
    }
  }
  return raw as TrainingOptionsJSON;
}

/** `training.progress`, checked: counts, seconds, and null or a number for the rest. */
export function parseTrainingProgress(where: string, raw: unknown): TrainingProgress {
  const fail = (field: string, want: string, got: unknown): never => {
    throw new Error(
      `${where}: training.progress.${field} must be ${want}, got ${jsonExcerpt(got)}`,
    );
  };
  if (!isObject(raw))
    throw new Error(`${where}: training.progress must be an object, got ${jsonExcerpt(raw)}`);
  for (const key of ["step", "skipped"] as const)
    if (!isCount(raw[key])) fail(key, "a non-negative integer", raw[key]);
  if (!(typeof raw.seconds === "number" && raw.seconds >= 0))
    fail("seconds", "a non-negative number", raw.seconds);
  if (raw.bestStep !== null && !isCount(raw.bestStep))
    fail("bestStep", "null or a non-negative integer", raw.bestStep);
  for (const key of ["bestValidLoss", "lastTrainLoss", "lastValidLoss"] as const) {
    if (raw[key] !== null && typeof raw[key] !== "number") fail(key, "null or a number", raw[key]);
  }
  return raw as unknown as TrainingProgress;
}
