import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, jit, type Array } from "@jax-js/jax";
import {
  makeSchedule,
  scheduleValue,
  validateSchedule,
  type ScheduleConfig,
} from "../src/train/schedules.js";
import { values, assertClose } from "./helpers/arrays.js";

/** Evaluate the schedule on traced int32 steps inside one jit (the way the train step uses it). */
async function atSteps(config: ScheduleConfig, steps: number[]): Promise<number[]> {
  const schedule = makeSchedule(config);
  const f = jit((s: Array) => schedule(s));
  const out: number[] = [];
  for (const s of steps) out.push(...(await values(f(np.array(s, { dtype: np.int32 })))));
  f.dispose();
  return out;
}

describe("learning-rate schedules", () => {
  it("constant", async () => {
    assertClose(
      await atSteps({ kind: "constant", lr: 3e-4 }, [0, 1, 1000]),
      [3e-4, 3e-4, 3e-4],
      0,
      1e-6,
      "constant",
    );
  });

  it("linear warm-up: lr * (s + 1) / W, then constant", async () => {
    const config: ScheduleConfig = { kind: "warmup", lr: 1e-3, warmupSteps: 10 };
    const want = [1e-4, 5e-4, 9e-4, 1e-3, 1e-3, 1e-3];
    assertClose(await atSteps(config, [0, 4, 8, 9, 10, 500]), want, 0, 1e-6, "warmup");
    // warmupSteps = 0 is the constant schedule.
    assertClose(
      await atSteps({ kind: "warmup", lr: 2, warmupSteps: 0 }, [0, 7]),
      [2, 2],
      0,
      1e-6,
      "no warm-up",
    );
  });

  it("cosine with warm-up decays from lr at W to lr * finalFraction at T", async () => {
    const config: ScheduleConfig = {
      kind: "cosine",
      lr: 1,
      warmupSteps: 10,
      totalSteps: 110,
      finalFraction: 0.1,
    };
    const quarter = 0.1 + (0.9 * (1 + Math.SQRT1_2)) / 2; // p = 1/4: cos(pi/4) = 1/sqrt(2)
    const steps = [0, 4, 9, 10, 35, 60, 85, 110, 5000];
    const want = [0.1, 0.5, 1, 1, quarter, 0.55, 0.1 + (0.9 * (1 - Math.SQRT1_2)) / 2, 0.1, 0.1];
    assertClose(await atSteps(config, steps), want, 1e-6, 1e-5, "cosine");
    // Without warm-up or final fraction: 1 at 0, 0.5 half-way, 0 at the end.
    const plain = await atSteps({ kind: "cosine", lr: 2, totalSteps: 100 }, [0, 50, 100]);
    assertClose(plain, [2, 1, 0], 1e-6, 1e-6, "plain cosine");
  });

  it("the JS evaluation agrees with the traced one", async () => {
    const config: ScheduleConfig = {
      kind: "cosine",
      lr: 0.01,
      warmupSteps: 7,
      totalSteps: 40,
      finalFraction: 0.2,
    };
    const steps = globalThis.Array.from({ length: 45 }, (_, i) => i);
    assertClose(
      await atSteps(config, steps),
      steps.map((s) => scheduleValue(config, s)),
      1e-9,
      1e-5,
      "js vs traced",
    );
  });

  it("rejects bad JSON configs with the field named", () => {
    assert.throws(() => validateSchedule({ kind: "step", lr: 1 } as any), /kind must be/);
    assert.throws(
      () => validateSchedule({ kind: "constant", lr: -1 }),
      /lr must be a positive number/,
    );
    assert.throws(
      () => validateSchedule({ kind: "warmup", lr: 1 } as any),
      /warmupSteps must be a non-negative integer/,
    );
    assert.throws(
      () => validateSchedule({ kind: "cosine", lr: 1, warmupSteps: 10, totalSteps: 10 }),
      /totalSteps must be an integer greater than warmupSteps \(10\)/,
    );
    assert.throws(
      () => validateSchedule({ kind: "cosine", lr: 1, totalSteps: 10, finalFraction: 2 }),
      /finalFraction must be in \[0, 1\]/,
    );
    assert.doesNotThrow(() =>
      validateSchedule(
        JSON.parse('{"kind":"cosine","lr":0.001,"totalSteps":1000,"warmupSteps":100}'),
      ),
    );
  });
});
