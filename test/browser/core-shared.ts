/** What the core browser page and its worker share: the model, the data and a short fit. */
import * as cf from "../../src/index.js";

export const CONFIG = { model: "realnvp", dim: 2, layers: 4, hidden: [16, 16] } as const;
export const ROWS = 1024;

/**
 * Fits `steps` steps (from a seeded init unless `params` are given) on moons; returns the losses
 * and the run's files. WebGPU in jax-js 0.1.25 on SwiftShader loses its device when a train
 * step with lr 1e-2 compiles (docs/BROWSER.md), so the checks on each device use 1e-3.
 */
export async function shortFit(steps: number, params?: cf.FlowParams, lr = 1e-2) {
  const flow = cf.buildFlow({ ...CONFIG, hidden: [...CONFIG.hidden] });
  const x = cf.sampleToy2d("moons", ROWS, 0);
  let state: cf.TrainState | null = null;
  const losses: number[] = [];
  const fitted = await cf.fit(
    flow,
    params ?? flow.init(cf.random.key(0)),
    { x, rows: ROWS },
    {
      steps,
      batchSize: 128,
      evalEvery: steps,
      optimizer: { kind: "adam", lr },
      validFraction: 0,
      checkpointEvery: steps,
      onCheckpoint: (s) => {
        state = s;
      },
      onProgress: (p) => {
        losses.push(p.loss);
      },
    },
  );
  cf.tree.dispose(fitted.bestParams);
  cf.tree.dispose(fitted.params);
  if (state === null) throw new Error("fit gave no checkpoint");
  return { losses, files: cf.encodeRun({ flow, state, data: { name: "moons", rows: ROWS } }) };
}

/** URLs of every resource this global scope fetched (page or worker). */
export function fetchedUrls(): string[] {
  return performance.getEntriesByType("resource").map((e) => e.name);
}
