/** `clayflow doctor`: check a trained run for invertibility, exact log-dets and finiteness. */
import { tree } from "@jax-js/jax";
import { startEngine } from "../../engine/index.js";
import { diagnose, formatReport } from "../../eval/doctor.js";
import type { Command } from "../args.js";
import { inferenceParams, openRun } from "../run-dir.js";
import { loadDataSource } from "../data-source.js";
import { makeRng } from "../../core/prng.js";

export const doctor: Command = {
  spec: {
    name: "doctor",
    summary: "check a trained run: invertibility, log-det against the exact Jacobian, finiteness",
    usage: "clayflow doctor --run DIR [--samples N]",
    options: {
      run: {
        type: "string",
        help: "run directory written by clayflow train",
        value: "DIR",
        required: true,
      },
      samples: { type: "int", help: "rows for the round-trip checks", default: 256 },
      jacobians: { type: "int", help: "rows for the exact-Jacobian check", default: 16 },
      threads: { type: "int", help: "engine threads" },
    },
  },
  async run(o) {
    await startEngine(o.threads ? { threads: o.threads as number } : {});
    const run = await openRun(o.run as string);
    const params = inferenceParams(run);
    // Check on the run's own test rows (and contexts) when its data can be regenerated or re-read.
    let data: Float32Array | undefined;
    let cond: Float32Array | undefined;
    const { name, rows, contextColumns } = run.config.data;
    try {
      if (name)
        ({ x: data, cond } = loadDataSource(name, {
          samples: rows ?? 20000,
          seed: run.config.training.options.seed ?? 0,
          contextColumns: contextColumns ?? [],
        }).test);
    } catch {
      data = undefined; // the data set moved or changed: check on the model's own samples
    }
    const k = run.flow.contextDim;
    if (k > 0 && !cond) {
      // Without the data, at standard-normal contexts: the context is standardised for training.
      data = undefined;
      const rng = makeRng(0);
      cond = Float32Array.from({ length: (o.samples as number) * k }, () => rng.normal());
    }
    try {
      const report = await diagnose(run.flow, params, {
        data,
        cond,
        samples: o.samples as number,
        jacobianSamples: o.jacobians as number,
      });
      process.stdout.write(`${o.run}: ${formatReport(report)}\n`);
      return report.verdict === "broken" ? 1 : 0;
    } finally {
      tree.dispose(params);
    }
  },
};
