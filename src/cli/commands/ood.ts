/**
 * `clayflow ood`: how well an image flow tells its own data (--in) from other data
 * (--out), with the raw likelihood and the remedies for its known failure
 * (Nalisnick et al. 2019: a FashionMNIST flow gives MNIST digits higher likelihood).
 * Scores are "higher = more out-of-distribution"; see src/eval/ood/.
 */
import { basename, dirname, join } from "node:path";
import { tree } from "@jax-js/jax";
import { startEngine } from "../../engine/index.js";
import { isImageConfig } from "../../models/image.js";
import {
  IMAGE_DATASET_NAMES,
  loadImageDataset,
  type ImageDataset,
  type ImageDatasetName,
  type ImageSplit,
} from "../../data/image-datasets.js";
import { imageBitsPerDim } from "../../eval/image-bits.js";
import {
  complexityCorrectedScores,
  complexityOfImages,
  fitTypicality,
  flagBatches,
  oodMetrics,
  typicalityStatistics,
  type OodMetrics,
} from "../../eval/ood/index.js";
import { writeFileAtomic } from "../../io/atomic-write.js";
import { composePanels, histogramPlot, savePng } from "../../io/plot.js";
import type { Canvas } from "../../io/canvas.js";
import { UsageError, type Command } from "../args.js";
import { inferenceParams, openRun } from "../run-dir.js";

const SCORES = ["raw", "complexity", "ratio", "typicality"] as const;
type ScoreName = (typeof SCORES)[number];
const DESCRIBE: Record<ScoreName, string> = {
  raw: "bits/dim",
  complexity: "bits/dim - PNG bits/dim",
  ratio: "bits/dim - background bits/dim",
  typicality: "abs(batch mean bits/dim - held-out mean)",
};
/** Held-out in-distribution images for the typicality threshold: the last ones of the training split (a run's validation images). */
const TYPICALITY_HELD_OUT = 2000;

interface DataSpec {
  name: ImageDatasetName;
  split: ImageSplit;
}

export function parseDataSpec(flag: string, text: string): DataSpec {
  const [name, split = "test", ...rest] = text.split(":");
  if (
    rest.length > 0 ||
    !(IMAGE_DATASET_NAMES as readonly string[]).includes(name) ||
    (split !== "train" && split !== "test")
  ) {
    throw new UsageError(
      `--${flag} must be NAME[:SPLIT] with NAME one of ${IMAGE_DATASET_NAMES.join(", ")} and SPLIT train or test; got "${text}"`,
    );
  }
  return { name: name as ImageDatasetName, split };
}

async function openImageRun(dir: string, role: string) {
  const run = await openRun(dir);
  const dispose = () => {
    tree.dispose(run.params);
    if (run.bestParams) tree.dispose(run.bestParams);
  };
  if (!isImageConfig(run.config.model)) {
    dispose();
    throw new UsageError(
      `${dir} (${role}) is not an image run; clayflow ood scores image flows (for tables use clayflow score --flag-quantile)`,
    );
  }
  if (run.flow.contextDim > 0) {
    dispose();
    throw new UsageError(
      `${dir} (${role}) is class-conditional; OOD scores need the unconditional likelihood p(x), so train without --conditional`,
    );
  }
  const params = inferenceParams(run);
  return { run, params };
}

interface ScoreResult extends OodMetrics {
  score: ScoreName;
  meaning: string;
  meanIn: number;
  meanOut: number;
}

function mean(v: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i];
  return sum / Math.max(1, v.length);
}

export const ood: Command = {
  spec: {
    name: "ood",
    summary:
      "out-of-distribution detection with an image flow: AUROC, AUPR, FPR@95%TPR of several scores, and their histograms",
    usage:
      "clayflow ood --run DIR --in NAME[:SPLIT] --out NAME[:SPLIT] [--score all|raw|complexity|ratio|typicality] [--background DIR]",
    options: {
      run: {
        type: "string",
        help: "image run written by clayflow train",
        value: "DIR",
        required: true,
      },
      in: {
        type: "string",
        help: "in-distribution images, e.g. fashion-mnist:test",
        value: "NAME[:SPLIT]",
        required: true,
      },
      out: {
        type: "string",
        help: "out-of-distribution images, e.g. mnist:test",
        value: "NAME[:SPLIT]",
        required: true,
      },
      score: {
        type: "string",
        help: "all, or one of raw, complexity, ratio, typicality",
        default: "all",
        value: "NAME",
      },
      background: {
        type: "string",
        help: "run trained with --perturb on the same data: enables the likelihood-ratio score",
        value: "DIR",
      },
      images: { type: "int", help: "images of each set to score (default: all)" },
      "batch-size": { type: "int", help: "typicality test: images per batch", default: 10 },
      report: {
        type: "string",
        help: "JSON report to write; the histograms go beside it as .png (default: DIR/ood-IN-vs-OUT.json)",
        value: "FILE",
      },
      "data-dir": { type: "string", help: "folder holding the datasets", value: "DIR" },
      threads: { type: "int", help: "engine threads" },
    },
    examples: [
      "clayflow ood --run runs/fashion-glow --in fashion-mnist:test --out mnist:test",
      "clayflow ood --run runs/fashion-glow --background runs/fashion-bg --in fashion-mnist --out mnist --score ratio",
    ],
  },
  async run(o) {
    const inSpec = parseDataSpec("in", o.in as string);
    const outSpec = parseDataSpec("out", o.out as string);
    const wanted = o.score as string;
    if (wanted !== "all" && !(SCORES as readonly string[]).includes(wanted)) {
      throw new UsageError(`--score must be all or one of ${SCORES.join(", ")}; got "${wanted}"`);
    }
    if (wanted === "ratio" && !o.background)
      throw new UsageError(
        "--score ratio needs --background DIR: a run trained with --perturb 0.2 on the same data",
      );
    const scores = (
      wanted === "all" ? SCORES.filter((s) => s !== "ratio" || o.background) : [wanted]
    ) as ScoreName[];
    const batchSize = o["batch-size"] as number;
    if (!(batchSize >= 1))
      throw new UsageError(`--batch-size must be at least 1, got ${batchSize}`);
    if (o.images !== undefined && !((o.images as number) >= 1))
      throw new UsageError(`--images must be at least 1, got ${o.images}`);
    if (
      scores.includes("typicality") &&
      o.images !== undefined &&
      (o.images as number) < batchSize
    ) {
      throw new UsageError(
        `--batch-size ${batchSize} is more than the ${o.images} images scored: score more images or use smaller batches`,
      );
    }

    await startEngine(o.threads ? { threads: o.threads as number } : {});
    const dataDir = o["data-dir"] as string | undefined;
    const inData = await loadImageDataset(inSpec.name, inSpec.split, { dataDir });
    const outData = await loadImageDataset(outSpec.name, outSpec.split, { dataDir });
    const model = await openImageRun(o.run as string, "--run");
    const background = o.background
      ? await openImageRun(o.background as string, "--background")
      : null;
    const seed = (model.run.config.training.options.seed ?? 0) + 3;
    const count = (d: ImageDataset) => Math.min((o.images as number | undefined) ?? d.n, d.n);
    const results: ScoreResult[] = [];
    const histograms: Canvas[] = [];
    try {
      const shape = model.run.flow.eventShape;
      for (const d of [inData, outData]) {
        if (d.height !== shape[0] || d.width !== shape[1])
          throw new Error(
            `${d.name} images are ${d.height}x${d.width}, the model in ${o.run} takes ${shape[0]}x${shape[1]}`,
          );
      }
      const say = (m: string) => process.stderr.write(`${m}\n`);
      say(
        `scoring ${count(inData)} ${inSpec.name}:${inSpec.split} and ${count(outData)} ${outSpec.name}:${outSpec.split} images`,
      );
      const bpd = async (m: typeof model, d: ImageDataset) =>
        imageBitsPerDim(m.run.flow, m.params, d.images, count(d), seed);
      const bpdIn = await bpd(model, inData);
      const bpdOut = await bpd(model, outData);
      const add = (
        score: ScoreName,
        sIn: ArrayLike<number>,
        sOut: ArrayLike<number>,
        extra: object = {},
      ) => {
        results.push({
          score,
          meaning: DESCRIBE[score],
          ...oodMetrics(sIn, sOut),
          meanIn: mean(sIn),
          meanOut: mean(sOut),
          ...extra,
        });
        histograms.push(
          histogramPlot(
            [
              { values: sIn, label: `in: ${inSpec.name}` },
              { values: sOut, label: `out: ${outSpec.name}` },
            ],
            { width: 420, height: 280, title: `${score}: ${DESCRIBE[score]}` },
          ),
        );
      };
      for (const score of scores) {
        if (score === "raw") add(score, bpdIn, bpdOut);
        if (score === "complexity") {
          const cx = (d: ImageDataset) =>
            complexityOfImages(
              d.images.subarray(0, count(d) * d.height * d.width),
              count(d),
              d.height,
              d.width,
            );
          add(
            score,
            complexityCorrectedScores(bpdIn, cx(inData)),
            complexityCorrectedScores(bpdOut, cx(outData)),
          );
        }
        if (score === "ratio" && background) {
          const bgIn = await bpd(background, inData);
          const bgOut = await bpd(background, outData);
          add(
            score,
            bpdIn.map((v, i) => v - bgIn[i]),
            bpdOut.map((v, i) => v - bgOut[i]),
          );
        }
        if (score === "typicality") {
          const train = await loadImageDataset(inSpec.name, "train", { dataDir });
          const held = Math.min(TYPICALITY_HELD_OUT, train.n);
          const heldOut = await imageBitsPerDim(
            model.run.flow,
            model.params,
            train.images.subarray((train.n - held) * train.height * train.width),
            held,
            seed + 1,
          );
          const test = fitTypicality(heldOut, { batchSize, seed });
          const flaggedShare = (bpds: Float64Array) => {
            const flags = flagBatches(bpds, test);
            return flags.filter(Boolean).length / flags.length;
          };
          add(score, typicalityStatistics(bpdIn, test), typicalityStatistics(bpdOut, test), {
            typicality: {
              batchSize,
              epsilon: test.epsilon,
              entropy: test.entropy,
              alpha: test.alpha,
              heldOutImages: held,
              flaggedIn: flaggedShare(bpdIn),
              flaggedOut: flaggedShare(bpdOut),
            },
          });
        }
      }
    } finally {
      tree.dispose(model.params);
      if (background) tree.dispose(background.params);
    }
    const tag = `${inSpec.name}-${inSpec.split}-vs-${outSpec.name}-${outSpec.split}`;
    const report = (o.report as string | undefined) ?? join(o.run as string, `ood-${tag}.json`);
    const png = join(dirname(report), `${basename(report).replace(/\.json$/i, "")}.png`);
    const body = {
      run: o.run,
      background: o.background ?? null,
      step: model.run.state.step,
      in: { ...inSpec, images: count(inData), origin: inData.origin },
      out: { ...outSpec, images: count(outData), origin: outData.origin },
      convention: "higher score = more out-of-distribution; out is the positive class",
      scores: results,
    };
    await writeFileAtomic(report, JSON.stringify(body, null, 2) + "\n");
    await savePng(png, composePanels(histograms, 10));
    const rows = results.map(
      (r) =>
        `  ${r.score.padEnd(11)} ${r.auroc.toFixed(4)}  ${r.aupr.toFixed(4)}  ${r.fprAt95Tpr.toFixed(4)}   ${r.meaning}`,
    );
    process.stdout.write(
      [
        `${inSpec.name}:${inSpec.split} (in) vs ${outSpec.name}:${outSpec.split} (out), run ${o.run} at step ${model.run.state.step}`,
        `  score       AUROC   AUPR    FPR@95%TPR`,
        ...rows,
        `wrote ${report} and ${png}`,
      ].join("\n") + "\n",
    );
  },
};
