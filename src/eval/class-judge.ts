/**
 * "The class-conditional model's samples are recognisably of the requested class",
 * measured: a judge classifier trained on the real training images (an MLP on
 * pixel / 255, softmax cross-entropy, Adam) labels samples drawn for each class;
 * the figure is the share labelled as the class they were drawn for. The judge's
 * accuracy on the real test images is reported beside it: samples as recognisable
 * as real garments would reach it, samples that ignore their label would sit near
 * 10% (chance over ten classes).
 *
 * The judge is deterministic for a seed (initialisation and batch order), so two
 * models are compared under the same judge.
 */
import { jit, nn, numpy as np, random, tree, type Array } from "@jax-js/jax";
import type { Flow, FlowParams } from "../distributions/flow.js";
import { makeRng } from "../core/prng.js";
import { mlp, type MlpParams } from "../nn/mlp.js";
import { flatten } from "../train/flat-params.js";
import { initOptState } from "../train/optimizer.js";
import { makeTrainStep } from "../train/train-step.js";
import { samplePixels } from "../data/image-context.js";
import { sampleGivenContexts } from "./context-samples.js";
import { oneHotRows } from "./image-bits.js";

/** Images as bytes with their class labels. */
export interface LabelledImages {
  /** n images of `dims` bytes each, row-major. */
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
}

/** Options of `trainClassJudge`. */
export interface JudgeOptions {
  /** Adam steps (reshuffling the images at each pass); default 1500, about 3 passes over 60,000. */
  steps?: number;
  /** Default 128. */
  batchSize?: number;
  /** Hidden widths of the MLP; default [256]. */
  hidden?: number[];
  seed?: number;
}

/** A trained judge classifier: its accuracy on the real test images and `classify` for new ones. */
export interface ClassJudge {
  classes: number;
  /** Share of the real test images the judge labels correctly. */
  testAccuracy: number;
  /** Labels of `count` images with values in [0, 1] (pixel / 255), `dims` each. */
  classify(images: Float32Array, count: number): Promise<Uint8Array>;
  /** Release the judge's arrays. */
  dispose(): void;
}

/** Rows classified per call: fixed, so the jitted forward compiles once. */
const CLASSIFY_CHUNK = 500;

/** Train the judge on `train` and measure it on `test`. Both hold `dims`-pixel images. */
export async function trainClassJudge(
  train: LabelledImages,
  test: LabelledImages,
  dims: number,
  options: JudgeOptions = {},
): Promise<ClassJudge> {
  const steps = options.steps ?? 1500;
  const batch = Math.min(options.batchSize ?? 128, train.n);
  const seed = options.seed ?? 0;
  let classes = 0;
  for (const l of train.labels.subarray(0, train.n)) classes = Math.max(classes, l + 1);
  if (classes < 2)
    throw new Error("trainClassJudge: the training labels hold fewer than 2 classes");
  const net = mlp({ inDim: dims, outDim: classes, hidden: options.hidden ?? [256] });
  const flat = flatten(net.init(random.key(seed)) as any);
  const loss = (p: MlpParams, x: Array, y: Array) =>
    nn.logSoftmax(net.apply(p, x), -1).mul(y).sum().div(-batch);
  const step = makeTrainStep(loss as any, { kind: "adam", lr: 1e-3 }, flat);
  let v = flat.vector;
  let state = initOptState(v);
  const rng = makeRng(seed + 1);
  const order = Int32Array.from({ length: train.n }, (_, i) => i);
  const x = new Float32Array(batch * dims);
  const y = new Float32Array(batch * classes);
  for (let done = 0, at = train.n; done < steps; done++, at += batch) {
    if (at + batch > train.n) {
      for (let i = train.n - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      at = 0;
    }
    y.fill(0);
    for (let r = 0; r < batch; r++) {
      const k = order[at + r];
      for (let d = 0; d < dims; d++) x[r * dims + d] = train.images[k * dims + d] / 255;
      y[r * classes + train.labels[k]] = 1;
    }
    const [nv, ns, l, norm, finite] = step(
      v,
      state,
      np.array(x).reshape([batch, dims]),
      np.array(y).reshape([batch, classes]),
    );
    v = nv;
    state = ns;
    l.dispose();
    norm.dispose();
    finite.dispose();
    if (done % 100 === 99) await v.ref.blockUntilReady();
  }
  step.dispose();
  tree.dispose(state);
  const params = flat.unravel(v) as unknown as MlpParams;
  const forward = jit((p: MlpParams, xs: Array) => net.apply(p, xs));

  const classify = async (images: Float32Array, count: number): Promise<Uint8Array> => {
    if (images.length !== count * dims)
      throw new Error(
        `classify: expected ${count} images of ${dims} values, got ${images.length} values`,
      );
    const out = new Uint8Array(count);
    const chunk = new Float32Array(CLASSIFY_CHUNK * dims);
    for (let at = 0; at < count; at += CLASSIFY_CHUNK) {
      const m = Math.min(CLASSIFY_CHUNK, count - at);
      chunk.fill(0);
      chunk.set(images.subarray(at * dims, (at + m) * dims));
      const logits = (await forward(
        tree.ref(params),
        np.array(chunk).reshape([CLASSIFY_CHUNK, dims]),
      ).data()) as Float32Array;
      for (let r = 0; r < m; r++) {
        let best = 0;
        for (let c = 1; c < classes; c++)
          if (logits[r * classes + c] > logits[r * classes + best]) best = c;
        out[at + r] = best;
      }
    }
    return out;
  };

  const testX = new Float32Array(test.n * dims);
  for (let i = 0; i < testX.length; i++) testX[i] = test.images[i] / 255;
  const predicted = await classify(testX, test.n);
  let right = 0;
  for (let i = 0; i < test.n; i++) if (predicted[i] === test.labels[i]) right++;
  return {
    classes,
    testAccuracy: right / test.n,
    classify,
    dispose() {
      forward.dispose();
      tree.dispose(params);
    },
  };
}

/** Share of class-conditional samples the judge labels as the class they were drawn for, at one temperature. */
export interface ClassAgreement {
  temperature: number;
  samplesPerClass: number;
  /** Share of all samples the judge labels as their requested class. */
  accuracy: number;
  /** The same per requested class. */
  byClass: number[];
  /** confusion[requested][judged]: sample counts. */
  confusion: number[][];
}

/**
 * Draw `perClass` samples of every class from a class-conditional flow at
 * `temperature` and let the judge label them. Does not consume `params`.
 */
export async function classAgreement(
  flow: Flow<any, any>,
  params: FlowParams,
  judge: ClassJudge,
  perClass: number,
  temperature: number,
  seed: number,
): Promise<ClassAgreement> {
  const classes = flow.contextDim;
  if (classes !== judge.classes)
    throw new Error(
      `classAgreement: the flow conditions on ${classes} values but the judge knows ${judge.classes} classes`,
    );
  const count = classes * perClass;
  const requested = Uint8Array.from({ length: count }, (_, i) => Math.floor(i / perClass));
  const x = await sampleGivenContexts(
    flow,
    params,
    oneHotRows(requested, 0, count, classes),
    count,
    seed,
    temperature,
  );
  const pixels = samplePixels(x);
  const judged = await judge.classify(
    Float32Array.from(pixels, (p) => p / 255),
    count,
  );
  const confusion = globalThis.Array.from({ length: classes }, () =>
    new globalThis.Array<number>(classes).fill(0),
  );
  for (let i = 0; i < count; i++) confusion[requested[i]][judged[i]]++;
  const byClass = confusion.map((row, c) => row[c] / perClass);
  return {
    temperature,
    samplesPerClass: perClass,
    accuracy: byClass.reduce((a, b) => a + b, 0) / classes,
    byClass,
    confusion,
  };
}

/** Samples per class for the class-agreement figure (1,000 samples in all for ten classes). */
const JUDGED_PER_CLASS = 100;

/** Class agreement at each temperature, beside the judge's test accuracy. */
export interface JudgedSamples {
  /** The judge's accuracy on the real test images: the figure samples are measured against. */
  judgeTestAccuracy: number;
  atTemperature: ClassAgreement[];
}

/**
 * Train the judge classifier on the training images and label samples of every class at
 * temperatures 0.7 and 1: the figure `clayflow train` and `clayflow eval` report for
 * class-conditional runs. Does not consume `params`.
 */
export async function judgeClassSamples(
  flow: Flow<any, any>,
  params: FlowParams,
  train: LabelledImages,
  test: LabelledImages,
  seed: number,
): Promise<JudgedSamples> {
  const dims = flow.eventShape.reduce((a, d) => a * d, 1);
  const judge = await trainClassJudge(train, test, dims, { seed });
  try {
    const atTemperature: ClassAgreement[] = [];
    for (const t of [0.7, 1])
      atTemperature.push(await classAgreement(flow, params, judge, JUDGED_PER_CLASS, t, seed + 1));
    return { judgeTestAccuracy: judge.testAccuracy, atTemperature };
  } finally {
    judge.dispose();
  }
}
