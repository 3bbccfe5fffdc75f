/** `clayflow demo`: the main job on built-in defaults, a flow on a 2-D toy density in about a minute. */
import type { Command } from "../args.js";
import { checkFreshRunDir } from "../run-dir.js";
import { trainRun } from "./train.js";

/** What the demo trains; bench/quality.ts measures the same run, so the two cannot drift apart. */
export const DEMO_RUN = { model: "nsf", data: "8gaussians", steps: 3000, lr: 3e-3 } as const;

export const demo: Command = {
  spec: {
    name: "demo",
    summary:
      "train a neural spline flow on the 8-gaussians density (about a minute) and write its pictures",
    usage: "clayflow demo [--out DIR]",
    options: {
      out: {
        type: "string",
        help: "run directory (a previous demo run there is replaced)",
        value: "DIR",
        default: "runs/demo",
      },
      steps: { type: "int", help: "training steps", default: DEMO_RUN.steps },
      threads: { type: "int", help: "engine threads" },
    },
  },
  async run(o) {
    const out = o.out as string;
    checkFreshRunDir(out, { allowReplaceRun: true });
    const { rm } = await import("node:fs/promises");
    await rm(out, { recursive: true, force: true });
    await trainRun({
      model: DEMO_RUN.model,
      data: DEMO_RUN.data,
      out,
      steps: o.steps as number,
      batchSize: 256,
      lr: DEMO_RUN.lr,
      samples: 20000,
      seed: 0,
      evalEvery: 250,
      checkpointEvery: 1000,
      schedule: "cosine",
      threads: o.threads as number | undefined,
      plots: true,
    });
  },
};
