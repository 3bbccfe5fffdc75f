/**
 * An image flow: train a small Glow on FashionMNIST, report test bits per dimension, and save
 * a grid of samples. Needs the dataset on this machine (Debian: `apt install
 * dataset-fashion-mnist`, or a folder with the four IDX files given as --data-dir).
 *
 *   node image-sampling.mjs [--steps 2000] [--images 20000] [--flow-steps 4] [--out samples.png] [--data-dir DIR]
 *
 * The defaults make a model worth looking at in about half an hour on 2 cores; the command
 * line trains bigger ones (`clayflow train --model glow --data fashion-mnist`, docs/IMAGES.md).
 */
import { parseArgs } from "node:util";
import {
  buildImageFlow,
  fit,
  imageBitsPerDim,
  imageGrid,
  loadImageDataset,
  makeRng,
  numpy as np,
  random,
  sampleRows,
  savePng,
  startEngine,
} from "clayflow";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "2000" },
    "flow-steps": { type: "string", default: "4" },
    images: { type: "string", default: "20000" },
    "test-images": { type: "string", default: "500" },
    out: { type: "string", default: "samples.png" },
    "data-dir": { type: "string" },
  },
});

await startEngine();
const train = await loadImageDataset("fashion-mnist", "train", { dataDir: values["data-dir"] });
const test = await loadImageDataset("fashion-mnist", "test", { dataDir: values["data-dir"] });
const shape = [train.height, train.width, 1];
const dims = train.height * train.width;
const count = Math.min(Number(values.images), train.n);

// The flow models dequantised pixels (byte + uniform noise) / 256, in [0, 1).
const x = Float32Array.from(train.images.subarray(0, count * dims), (b) => b / 256);
const noise = (batch, step) => {
  const rng = makeRng(step + 1);
  for (let i = 0; i < batch.length; i++) batch[i] += rng.uniform() / 256;
};

const flow = buildImageFlow({
  model: "glow",
  shape,
  levels: 2,
  steps: Number(values["flow-steps"]),
  hidden: 32,
  blocks: 1,
});
// (`steps` here is Glow's flow steps per level; --steps is the training steps.)
// ActNorm initialises from data: a few dequantised images.
const init = x.slice(0, 16 * dims);
noise(init, -1);
const params = flow.init(random.key(0), { x: np.array(init).reshape([16, ...shape]) });
const { bestParams } = await fit(
  flow,
  params,
  { x, rows: count },
  {
    steps: Number(values.steps),
    batchSize: 32,
    optimizer: { kind: "adam", lr: 1e-3 },
    augment: noise,
  },
);

const bits = await imageBitsPerDim(flow, bestParams, test.images, Number(values["test-images"]), 0);
console.log(
  `test: ${(bits.reduce((a, v) => a + v, 0) / bits.length).toFixed(3)} bits/dim (8 = knowing nothing)`,
);

const n = 64;
const samples = await sampleRows(flow, bestParams, n, { temperature: 0.7, seed: 1 });
await savePng(
  values.out,
  imageGrid(
    samples.map((v) => Math.min(1, Math.max(0, v))),
    n,
    shape[0],
    shape[1],
    { cols: 8 },
  ),
);
console.log(`wrote ${n} samples (an 8x8 grid at temperature 0.7) to ${values.out}`);
