/**
 * `clayflow eval --curve`: the learning curve on test data. Each kept checkpoint of an
 * image run (train with --keep-every) is evaluated on the same test images (its current
 * parameters, not the best-so-far) and plotted against its training time, beside the
 * run's validation curve. Writes <run>/test-curve.json and <run>/test-curve.png. Points
 * already in test-curve.json for the same number of test images are reused, so running it
 * again after more training evaluates only the new checkpoints.
 */
import { join } from "node:path";
import { readFile } from "node:fs/promises";
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
export async function testCurve(
  dir: string,
  run: LoadedRun,
  pixels: Uint8Array,
  labels: Uint8Array,
  count: number,
  seed: number,
  onPoint?: (p: CurvePoint) => void,
): Promise<TestCurve> {
  const kept = await listKeptCheckpoints(dir);
  if (kept.length === 0)
    throw new UsageError(
      `${dir} has no kept checkpoints in ${join(dir, KEPT_DIR)}: train (or resume) with --keep-every N to keep them`,
    );
  const dims = run.flow.eventShape.reduce((a, d) => a * d, 1);
  count = Math.min(count, pixels.length / dims);
  const earlier = await previousPoints(dir, count);
  const points: CurvePoint[] = [];
  for (const k of kept) {
    const known = earlier.get(k.step);
    if (known) {
      points.push(known);
      onPoint?.(known);
      continue;
    }
    const snapshot = await loadRun(k.dir);
    if (snapshot.bestParams) tree.dispose(snapshot.bestParams);
    try {
      const r = await evaluateImages(snapshot.flow, snapshot.params, pixels, count, seed, labels);
      const point = {
        step: k.step,
        minutes: snapshot.state.seconds / 60,
        testBitsPerDim: r.testBitsPerDim,
        testBitsPerDimCI: r.testBitsPerDimCI,
      };
      points.push(point);
      onPoint?.(point);
    } finally {
      tree.dispose(snapshot.params);
    }
  }
  const validation = run.state.history
    .filter((h) => h.validLoss !== null)
    .map((h) => ({
      step: h.step,
      minutes: h.seconds / 60,
      bitsPerDim: nllBitsPerDim(h.validLoss!, dims),
    }));
  const curve: TestCurve = { testImages: count, points, validation };
  await writeFileAtomic(join(dir, "test-curve.json"), JSON.stringify(curve, null, 2) + "\n");
  await savePng(
    join(dir, "test-curve.png"),
    linePlot(
      [
        {
          x: validation.map((v) => v.minutes),
          y: validation.map((v) => v.bitsPerDim),
          label: "validation",
        },
        {
          x: points.map((p) => p.minutes),
          y: points.map((p) => p.testBitsPerDim),
          label: `test (${count} images)`,
        },
      ],
      {
        width: 520,
        height: 340,
        title: "bits/dim against training time",
        xlabel: "minutes",
        ylabel: "bits/dim",
      },
    ),
  );
  return curve;
}

/** Points of an earlier test-curve.json over the same `count` test images, by step (else none). */
async function previousPoints(dir: string, count: number): Promise<Map<number, CurvePoint>> {
  try {
    const old = JSON.parse(await readFile(join(dir, "test-curve.json"), "utf8")) as TestCurve;
    if (old.testImages !== count || !globalThis.Array.isArray(old.points)) return new Map();
    const valid = old.points.filter((p) =>
      [p.step, p.minutes, p.testBitsPerDim, p.testBitsPerDimCI].every(Number.isFinite),
    );
    return new Map(valid.map((p) => [p.step, p]));
  } catch {
    return new Map();
  }
}
