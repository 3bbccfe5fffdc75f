/**
 * `clayflow export`: a run's chosen parameters alone, for serving or shipping (a web page, an
 * app): no optimizer moments and no second copy, about a third of a checkpoint's bytes. The
 * result loads everywhere a run loads, except `train --resume`.
 */
import { tree } from "@jax-js/jax";
import { loadRun, saveRun } from "../../io/checkpoint.js";
import { UsageError, type Command } from "../args.js";
import { checkFreshRunDir } from "../run-dir.js";

export const exportRun: Command = {
  spec: {
    name: "export",
    summary:
      "write a run's parameters alone (a third of the bytes) for serving: loads anywhere, cannot resume",
    usage: "clayflow export --run DIR --out DIR [--params best|last]",
    options: {
      run: {
        type: "string",
        help: "run directory written by clayflow train",
        value: "DIR",
        required: true,
      },
      out: { type: "string", help: "new run directory to write", value: "DIR", required: true },
      params: {
        type: "string",
        help: "best (lowest validation loss, when the run kept it) or last",
        default: "best",
        value: "WHICH",
      },
    },
    examples: ["clayflow export --run runs/fashion --out models/fashion"],
  },
  async run(o) {
    const which = o.params as string;
    if (which !== "best" && which !== "last")
      throw new UsageError(`--params must be best or last, got "${which}"`);
    const out = o.out as string;
    checkFreshRunDir(out);
    const run = await loadRun(o.run as string);
    tree.dispose(run.params);
    if (run.bestParams) tree.dispose(run.bestParams);
    const { state, config } = run;
    const chosen = which === "best" && state.best ? state.best : null;
    const { name, rows, columns, contextColumns, perturb, source } = config.data;
    await saveRun(out, {
      flow: run.flow,
      state: { ...state, params: chosen ? chosen.params : state.params, best: null },
      preprocessing: run.preprocessing,
      contextPreprocessing: run.contextPreprocessing,
      data: {
        name: name ?? undefined,
        rows: rows ?? undefined,
        columns: columns ?? undefined,
        contextColumns: contextColumns ?? undefined,
        perturb,
        source,
      },
      training: config.training.options,
      weightsOnly: true,
    });
    const from = chosen
      ? `the best parameters (step ${chosen.step}, validation loss ${chosen.validLoss.toFixed(4)})`
      : `the parameters of step ${state.step}`;
    process.stdout.write(
      `wrote ${from} of ${o.run} to ${out} (weights only: it loads for sample, score, eval and the rest, but cannot resume training)\n`,
    );
  },
};
