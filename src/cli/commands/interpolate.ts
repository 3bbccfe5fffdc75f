/**
 * `clayflow interpolate`: walk the latent space between pairs of real test images.
 * Each row encodes two images, z_a and z_b, and decodes points on the arc between
 * them (spherical interpolation keeps the latent norm typical of the base normal).
 */
import { numpy as np, tree } from "@jax-js/jax";
import { startEngine } from "../../engine/index.js";
import { isImageConfig } from "../../models/image.js";
import {
  IMAGE_DATASET_NAMES,
  loadImageDataset,
  type ImageDatasetName,
} from "../../data/image-datasets.js";
import { makeRng } from "../../core/prng.js";
import { imageGrid, savePng } from "../../io/plot.js";
import { UsageError, type Command } from "../args.js";
import { inferenceParams, openRun } from "../run-dir.js";
import { contextRowsAt } from "./train-image.js";
import { slerp } from "../../core/slerp.js";

export const interpolate: Command = {
  spec: {
    name: "interpolate",
    summary: "decode latent interpolations between pairs of real test images (image runs)",
    usage: "clayflow interpolate --run DIR --out FILE.png [--pairs N] [--steps K]",
    options: {
      run: { type: "string", help: "image run directory", value: "DIR", required: true },
      out: { type: "string", help: "PNG file to write", value: "FILE", required: true },
      pairs: { type: "int", help: "rows (pairs of images)", default: 4 },
      steps: { type: "int", help: "images per row, ends included", default: 8 },
      seed: { type: "int", help: "which test images are paired", default: 0 },
      "data-dir": { type: "string", help: "folder holding the datasets", value: "DIR" },
      threads: { type: "int", help: "engine threads" },
    },
  },
  async run(o) {
    const pairs = o.pairs as number;
    const steps = o.steps as number;
    if (pairs < 1 || steps < 2)
      throw new UsageError("--pairs must be at least 1 and --steps at least 2");
    await startEngine(o.threads ? { threads: o.threads as number } : {});
    const run = await openRun(o.run as string);
    const name = run.config.data.name;
    const params = inferenceParams(run);
    try {
      if (
        !isImageConfig(run.config.model) ||
        !(IMAGE_DATASET_NAMES as readonly unknown[]).includes(name)
      ) {
        throw new UsageError(`${o.run} is not an image run`);
      }
      const test = await loadImageDataset(name as ImageDatasetName, "test", {
        dataDir: o["data-dir"] as string | undefined,
      });
      const { flow } = run;
      const [h, w, c] = flow.eventShape;
      const dims = h * w * c;
      const rng = makeRng(o.seed as number);
      const picks = Array.from({ length: 2 * pairs }, () => rng.int(test.n));
      const x = new Float32Array(picks.length * dims);
      picks.forEach((p, k) => {
        for (let i = 0; i < dims; i++) x[k * dims + i] = (test.images[p * dims + i] + 0.5) / 256;
      });
      const contextDim = flow.contextDim;
      // Conditional runs: each image's own label or context image.
      const contexts = (indices: number[]) =>
        contextDim
          ? np
              .array(contextRowsAt(flow, test.images, test.labels, indices)!)
              .reshape([indices.length, contextDim])
          : undefined;
      const cond = contexts(picks);
      const z = flow.encode(tree.ref(params), np.array(x).reshape([picks.length, h, w, c]), cond);
      const zs = Float32Array.from((await z.data()) as Float32Array);
      const latent = zs.length / picks.length;
      const path = new Float32Array(pairs * steps * latent);
      const rowPicks: number[] = [];
      for (let r = 0; r < pairs; r++) {
        const a = zs.subarray(2 * r * latent, (2 * r + 1) * latent);
        const b = zs.subarray((2 * r + 1) * latent, (2 * r + 2) * latent);
        for (let k = 0; k < steps; k++) {
          path.set(slerp(a, b, k / (steps - 1)), (r * steps + k) * latent);
          // A conditional model decodes the first half of a row with a's label (context), the rest with b's.
          rowPicks.push(picks[k < steps / 2 ? 2 * r : 2 * r + 1]);
        }
      }
      const decoded = flow.decode(
        tree.ref(params),
        np.array(path).reshape([pairs * steps, ...flow.latentShape]),
        contexts(rowPicks),
      );
      const pixels = Float32Array.from((await decoded.data()) as Float32Array).map((v) =>
        Math.min(1, Math.max(0, v)),
      );
      await savePng(
        o.out as string,
        imageGrid(pixels, pairs * steps, h, w, { cols: steps, scale: 2 }),
      );
      process.stdout.write(`wrote ${pairs} interpolations of ${steps} steps to ${o.out}\n`);
    } finally {
      tree.dispose(params);
    }
  },
};
