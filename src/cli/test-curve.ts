/**
 * `clayflow eval --curve`: the learning curve on test data. Each kept checkpoint of an
 * image run (train with --keep-every) is evaluated on the same test images (its current
 * parameters, not the best-so-far) and plotted against its training time, beside the
 * run's validation curve. Writes <run>/test-curve.json and <run>/test-curve.png.
 */
import { join } from "node:path";
import { tree } from "@jax-js/jax";
import { loadRun, type LoadedRun } from "../io/checkpoint.js";
import { listKeptCheckpoints, KEPT_DIR } from "../io/kept-checkpoints.js";
import { writeFileAtomic } from "../io/atomic-write.js";
import { linePlot, savePng } from "../io/plot.js";
import { nllBitsPerDim } from "../eval/image-bits.js";
import { evaluateImages } from "./commands/train-image.js";
import { UsageError } from "./args.js";

export interface CurvePoint {
  step: number;
  /** Training time when the checkpoint was saved. */
  minutes: number;
  testBitsPerDim: number;
  /** Half-width of the 95% confidence interval. */
  testBitsPerDimCI: number;
}

export interface TestCurve {
  testImages: number;
  points: CurvePoint[];
  /** The run's validation bits/dim at each evaluation (its history), for comparison. */
  validation: { step: number; minutes: number; bitsPerDim: number }[];
}

/**
 * Evaluate every kept checkpoint of the run in `dir` (already loaded as `run`, whose
 * history gives the validation curve) on the first `count` test images.
 */
export async function testCurve(dir: string, run: LoadedRun, pixels: Uint8Array, labels: Uint8Array, count: number, seed: number, onPoint?: (p: CurvePoint) => void): Promise<TestCurve> {
  const kept = await listKeptCheckpoints(dir);
  if (kept.length === 0) throw new UsageError(`${dir} has no kept checkpoints in ${join(dir, KEPT_DIR)}: train (or resume) with --keep-every N to keep them`);
  const dims = run.flow.eventShape.reduce((a, d) => a * d, 1);
  const points: CurvePoint[] = [];
  for (const k of kept) {
    const snapshot = await loadRun(k.dir);
    if (snapshot.bestParams) tree.dispose(snapshot.bestParams);
    try {
      const r = await evaluateImages(snapshot.flow, snapshot.params, pixels, count, seed, labels);
      const point = { step: k.step, minutes: snapshot.state.seconds / 60, testBitsPerDim: r.testBitsPerDim, testBitsPerDimCI: r.testBitsPerDimCI };
      points.push(point);
      onPoint?.(point);
      count = r.testImages;
    } finally {
      tree.dispose(snapshot.params);
    }
  }
  const validation = run.state.history
    .filter((h) => h.validLoss !== null)
    .map((h) => ({ step: h.step, minutes: h.seconds / 60, bitsPerDim: nllBitsPerDim(h.validLoss!, dims) }));
  const curve: TestCurve = { testImages: count, points, validation };
  await writeFileAtomic(join(dir, "test-curve.json"), JSON.stringify(curve, null, 2) + "\n");
  await savePng(
    join(dir, "test-curve.png"),
    linePlot(
      [
        { x: validation.map((v) => v.minutes), y: validation.map((v) => v.bitsPerDim), label: "validation" },
        { x: points.map((p) => p.minutes), y: points.map((p) => p.testBitsPerDim), label: `test (${count} images)` },
      ],
      { width: 520, height: 340, title: "bits/dim against training time", xlabel: "minutes", ylabel: "bits/dim" },
    ),
  );
  return curve;
}
