/**
 * Learning-rate schedules: pure functions of the step that work on traced
 * arrays inside `jit`, configured by JSON:
 *   { kind: "constant", lr }
 *   { kind: "warmup",   lr, warmupSteps }
 *   { kind: "cosine",   lr, totalSteps, warmupSteps?, finalFraction? }
 *
 * `s` is the 0-based index of the update being computed (the number of updates
 * already applied, i.e. the optimizer state's `step` before the update). With
 * W = warmupSteps, T = totalSteps, f = finalFraction:
 *   warm-up (s < W):  lr * (s + 1) / W        (the first update already moves; s = W - 1 reaches lr)
 *   constant:         lr
 *   cosine (s >= W):  lr * (f + (1 - f) * (1 + cos(pi * p)) / 2),  p = min(1, (s - W) / (T - W))
 * so the cosine schedule is lr at s = W, lr * (1 + f) / 2 half-way, and lr * f
 * from s = T on (Loshchilov & Hutter 2017, "SGDR", without restarts).
 */
import { numpy as np, type Array, type DType } from "@jax-js/jax";
import { jsonExcerpt } from "../core/excerpt.js";

/** A learning-rate schedule: constant, linear warm-up, or cosine decay with optional warm-up. */
export type ScheduleConfig =
  | { kind: "constant"; lr: number }
  | { kind: "warmup"; lr: number; warmupSteps: number }
  | {
      kind: "cosine";
      lr: number;
      totalSteps: number;
      warmupSteps?: number;
      finalFraction?: number;
    };

/** lr as a function of a scalar step array (consumed); returns a scalar of `dtype`. */
export type Schedule = (step: Array) => Array;

function fail(message: string): never {
  throw new Error(`schedule: ${message}`);
}

const isNonNegInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

/** Check a JSON schedule config; throws an error that names the bad field. */
export function validateSchedule(config: ScheduleConfig): ScheduleConfig {
  if (config === null || typeof config !== "object")
    fail(`config must be an object, got ${jsonExcerpt(config)}`);
  const c = config as Record<string, unknown>;
  if (!["constant", "warmup", "cosine"].includes(c.kind as string)) {
    fail(`kind must be "constant", "warmup" or "cosine", got ${jsonExcerpt(c.kind)}`);
  }
  if (typeof c.lr !== "number" || !(c.lr > 0) || !Number.isFinite(c.lr)) {
    fail(`lr must be a positive number, got ${jsonExcerpt(c.lr)}`);
  }
  if (c.kind === "warmup" && !isNonNegInt(c.warmupSteps)) {
    fail(`warmupSteps must be a non-negative integer, got ${jsonExcerpt(c.warmupSteps)}`);
  }
  if (c.kind === "cosine") {
    const w = c.warmupSteps ?? 0;
    if (!isNonNegInt(w))
      fail(`warmupSteps must be a non-negative integer, got ${jsonExcerpt(c.warmupSteps)}`);
    if (!Number.isInteger(c.totalSteps) || (c.totalSteps as number) <= w) {
      fail(
        `totalSteps must be an integer greater than warmupSteps (${w}), got ${jsonExcerpt(c.totalSteps)}`,
      );
    }
    const f = c.finalFraction ?? 0;
    if (typeof f !== "number" || !(f >= 0 && f <= 1)) {
      fail(`finalFraction must be in [0, 1], got ${jsonExcerpt(c.finalFraction)}`);
    }
  }
  return config;
}

/** Build the schedule for `config`; lr values come out in `dtype` (default float32). */
export function makeSchedule(config: ScheduleConfig, dtype: DType = np.float32): Schedule {
  validateSchedule(config);
  const { lr } = config;
  const warmupSteps = config.kind === "constant" ? 0 : (config.warmupSteps ?? 0);
  // Warm-up factor min(1, (s + 1) / W): 1 from s = W - 1 on.
  const warm = (s: Array) =>
    warmupSteps > 0 ? np.minimum(s.add(1).div(warmupSteps), 1) : (s.dispose(), null);
  if (config.kind !== "cosine") {
    return (step) => {
      const w = warm(step.astype(dtype));
      return w ? w.mul(lr) : np.full([], lr, { dtype });
    };
  }
  const total = config.totalSteps;
  const f = config.finalFraction ?? 0;
  return (step) => {
    const s = step.astype(dtype);
    const p = np.clip(s.ref.sub(warmupSteps).div(total - warmupSteps), 0, 1);
    const cosine = np
      .cos(p.mul(Math.PI))
      .add(1)
      .mul(0.5 * (1 - f))
      .add(f);
    const w = warm(s);
    // Before W the cosine factor is exactly 1 (p = 0), so the product is the warm-up alone.
    return (w ? cosine.mul(w) : cosine).mul(lr);
  };
}

/** The same schedule evaluated in plain JS doubles, for logging and reports. */
export function scheduleValue(config: ScheduleConfig, step: number): number {
  validateSchedule(config);
  const warmupSteps = config.kind === "constant" ? 0 : (config.warmupSteps ?? 0);
  const warm = warmupSteps > 0 ? Math.min(1, (step + 1) / warmupSteps) : 1;
  if (config.kind !== "cosine") return config.lr * warm;
  const f = config.finalFraction ?? 0;
  const p = Math.min(1, Math.max(0, (step - warmupSteps) / (config.totalSteps - warmupSteps)));
  return config.lr * warm * (f + ((1 - f) * (1 + Math.cos(Math.PI * p))) / 2);
}
