/** `clayflow demo`: the main job on built-in defaults, a flow on a 2-D toy density in about a minute. */
import { type Command } from "../args.js";
import { checkFreshRunDir } from "../run-dir.js";
import { trainRun } from "./train.js";

export const demo: Command = {
  spec: {
    name: "demo",
    summary: "train a neural spline flow on the 8-gaussians density (about a minute) and write its pictures",
    usage: "clayflow demo [--out DIR]",
    options: {
      out: { type: "string", help: "run directory (a previous demo run there is replaced)", value: "DIR", default: "runs/demo" },
      steps: { type: "int", help: "training steps", default: 3000 },
      threads: { type: "int", help: "engine threads" },
    },
  },
  async run(o) {
    const out = o.out as string;
    checkFreshRunDir(out, { allowReplaceRun: true });
    const { rm } = await import("node:fs/promises");
    await rm(out, { recursive: true, force: true });
    await trainRun({
      model: "nsf",
      data: "8gaussians",
      out,
      steps: o.steps as number,
      batchSize: 256,
      lr: 3e-3,
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
