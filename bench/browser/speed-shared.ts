/** The browser speed bench's workload, the same in Node and in a page's worker. */
import * as cf from "../../src/index.js";

/** The playground's default 2-D model and data. */
export const SPEED_MODEL = { model: "nsf", dim: 2, layers: 6, hidden: [64, 64] } as const;
export const SPEED_ROWS = 4000;
const WARMUP = 20;

/** Training steps per second of the default 2-D model, timed after `WARMUP` steps (compilation excluded). */
export async function trainingSpeed(steps: number): Promise<number> {
  const flow = cf.buildFlow({ ...SPEED_MODEL, hidden: [...SPEED_MODEL.hidden] });
  const x = cf.sampleToy2d("8gaussians", SPEED_ROWS, 0);
  let t0 = 0;
  let t1 = 0;
  const fitted = await cf.fit(
    flow,
    flow.init(cf.random.key(0)),
    { x, rows: SPEED_ROWS },
    {
      steps: WARMUP + steps,
      batchSize: 256,
      optimizer: { kind: "adam", lr: 3e-3 },
      validFraction: 0,
      evalEvery: WARMUP + steps,
      onProgress: (p) => {
        if (p.step === WARMUP) t0 = performance.now();
        if (p.step === WARMUP + steps) t1 = performance.now();
      },
    },
  );
  cf.tree.dispose(fitted.params);
  cf.tree.dispose(fitted.bestParams);
  return (steps * 1000) / (t1 - t0);
}
