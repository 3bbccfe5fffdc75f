/**
 * The Images tab's worker: it loads the bundled class-conditional FashionMNIST flow from the
 * page's own origin and answers with pixels. Every request runs one of three jitted functions
 * (encode, decode, log-density) on a batch of exactly one row per class, so each compiles once.
 */
import * as cf from "../../src/index.js";
import { slerp } from "../../src/core/slerp.js";
import type { FromImages, ImageModelManifest, ImageVerdict, Images, ToImages } from "./protocol.js";

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<ToImages>) => void) | null;
  postMessage(m: FromImages, t?: Transferable[]): void;
};
const post = (m: FromImages, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

const GRID_COLUMNS = 8;
const INTERPOLATION_STEPS = 10;

interface Model {
  flow: cf.Flow<any, any>;
  params: cf.FlowParams;
  manifest: ImageModelManifest;
  garments: Uint8Array;
  /** The OOD threshold, calibrated here: the validation images' scores with this browser's compressor. */
  threshold: number;
  classes: number;
  dims: number;
  encode: (p: cf.FlowParams, x: cf.Array, c: cf.Array) => cf.Array;
  decode: (p: cf.FlowParams, z: cf.Array, c: cf.Array) => cf.Array;
  logProb: (p: cf.FlowParams, x: cf.Array, c: cf.Array) => cf.Array;
}
let model: Promise<Model> | null = null;

async function fetchOwn(base: string, file: string): Promise<Response> {
  const url = new URL(file, base);
  const r = await fetch(url);
  if (!r.ok)
    throw new Error(
      `could not load ${url.pathname} (HTTP ${r.status}); build the page with npm run build:web, which copies the model`,
    );
  return r;
}

async function open(device: "wasm" | "webgpu", base: string): Promise<Model> {
  const info = await cf.startEngine({ device });
  const manifest = (await (await fetchOwn(base, "model.json")).json()) as ImageModelManifest;
  const [config, weights, garments, validation] = await Promise.all([
    fetchOwn(base, "config.json").then((r) => r.text()),
    fetchOwn(base, "weights.safetensors").then((r) => r.arrayBuffer()),
    fetchOwn(base, manifest.garments.file).then((r) => r.arrayBuffer()),
    fetchOwn(base, manifest.ood.validation.file).then((r) => r.arrayBuffer()),
  ]);
  const run = cf.decodeRun({ config, weights: new Uint8Array(weights) });
  if (run.bestParams) cf.tree.dispose(run.bestParams);
  const flow = run.flow;
  const threshold = await calibrate(manifest, new Uint8Array(validation), flow.eventShape);
  const m: Model = {
    flow,
    params: run.params,
    manifest,
    garments: new Uint8Array(garments),
    threshold,
    classes: flow.contextDim,
    dims: flow.eventShape.reduce((a: number, d: number) => a * d, 1),
    encode: cf.jit((p: cf.FlowParams, x: cf.Array, c: cf.Array) => flow.encode(p, x, c)),
    decode: cf.jit((p: cf.FlowParams, z: cf.Array, c: cf.Array) => flow.decode(p, z, c)),
    logProb: cf.jit((p: cf.FlowParams, x: cf.Array, c: cf.Array) => flow.logProb(p, x, c)),
  };
  post({
    type: "ready",
    device: info.device,
    threads: info.threads,
    manifest,
    garments: m.garments.slice(),
    threshold,
  });
  return m;
}

/** The threshold at the manifest's false-alarm rate, from the validation images' stored bits/dim and their complexity here. */
async function calibrate(
  manifest: ImageModelManifest,
  pixels: Uint8Array,
  [h, w]: number[],
): Promise<number> {
  const { count, bitsPerDim } = manifest.ood.validation;
  if (pixels.length !== count * h * w)
    throw new Error(
      `${manifest.ood.validation.file} holds ${pixels.length} bytes, model.json says ${count} images of ${h}x${w}`,
    );
  const scores = new Float64Array(count);
  for (let i = 0; i < count; i++)
    scores[i] =
      bitsPerDim[i] -
      (await cf.complexityBitsPerDimAsync(pixels.subarray(i * h * w, (i + 1) * h * w), h, w));
  return cf.thresholdAtFalseAlarmRate(scores, manifest.ood.falseAlarmRate);
}

/** Context rows [classes, classes]: row k is `rows[k]` (a class index, or a mix of two one-hots). */
function contexts(m: Model, rows: (number | [number, number, number])[]): cf.Array {
  const c = new Float32Array(m.classes * m.classes);
  rows.forEach((r, k) => {
    if (typeof r === "number") c[k * m.classes + r] = 1;
    else {
      const [a, b, t] = r;
      c[k * m.classes + a] += 1 - t;
      c[k * m.classes + b] += t;
    }
  });
  return cf.numpy.array(c).reshape([m.classes, m.classes]);
}

async function decoded(
  m: Model,
  z: Float32Array,
  rows: (number | [number, number, number])[],
): Promise<Float32Array> {
  const x = m.decode(
    cf.tree.ref(m.params),
    cf.numpy.array(z).reshape([m.classes, ...m.flow.latentShape]),
    contexts(m, rows),
  );
  return ((await x.data()) as Float32Array).map((v) => Math.min(1, Math.max(0, v)));
}

/** Garment `i` (0..255 pixels) as the flow's input: the centre of each pixel's cell. */
function garment(m: Model, i: number): Float32Array {
  if (!(Number.isInteger(i) && i >= 0 && i < m.manifest.garments.count))
    throw new Error(`no garment ${i}; there are ${m.manifest.garments.count}`);
  return Float32Array.from(
    m.garments.subarray(i * m.dims, (i + 1) * m.dims),
    (p) => (p + 0.5) / 256,
  );
}

/** Latents of up to `classes` images, each under its own class. */
async function encoded(
  m: Model,
  images: Float32Array[],
  labels: number[],
): Promise<Float32Array[]> {
  const x = new Float32Array(m.classes * m.dims);
  images.forEach((img, k) => x.set(img, k * m.dims));
  const rows = Array.from({ length: m.classes }, (_, k) => labels[k] ?? 0);
  const z = m.encode(
    cf.tree.ref(m.params),
    cf.numpy.array(x).reshape([m.classes, ...m.flow.eventShape]),
    contexts(m, rows),
  );
  const all = (await z.data()) as Float32Array;
  return images.map((_, k) => all.slice(k * m.dims, (k + 1) * m.dims));
}

/** A row of samples per class: z ~ N(0, T^2) decoded under each class (a sample at temperature T). */
async function grid(m: Model, temperature: number, seed: number): Promise<Images> {
  const rng = cf.makeRng(seed);
  const columns: Float32Array[] = [];
  for (let col = 0; col < GRID_COLUMNS; col++) {
    const z = Float32Array.from({ length: m.classes * m.dims }, () => temperature * rng.normal());
    columns.push(
      await decoded(
        m,
        z,
        Array.from({ length: m.classes }, (_, c) => c),
      ),
    );
  }
  // Reorder column-major batches into rows of one class.
  const pixels = new Float32Array(m.classes * GRID_COLUMNS * m.dims);
  for (let c = 0; c < m.classes; c++) {
    for (let col = 0; col < GRID_COLUMNS; col++)
      pixels.set(
        columns[col].subarray(c * m.dims, (c + 1) * m.dims),
        (c * GRID_COLUMNS + col) * m.dims,
      );
  }
  return { pixels, count: m.classes * GRID_COLUMNS, cols: GRID_COLUMNS };
}

/** Spherical interpolation between two garments' latents; the class context moves from a's to b's. */
async function interpolate(m: Model, a: number, b: number): Promise<Images> {
  const la = m.manifest.garments.labels[a];
  const lb = m.manifest.garments.labels[b];
  const [za, zb] = await encoded(m, [garment(m, a), garment(m, b)], [la, lb]);
  const steps = Math.min(INTERPOLATION_STEPS, m.classes);
  const z = new Float32Array(m.classes * m.dims);
  const rows: [number, number, number][] = [];
  for (let k = 0; k < m.classes; k++) {
    const t = Math.min(k, steps - 1) / (steps - 1);
    z.set(slerp(za, zb, t), k * m.dims);
    rows.push([la, lb, t]);
  }
  const pixels = await decoded(m, z, rows);
  return { pixels: pixels.slice(0, steps * m.dims), count: steps, cols: steps };
}

/** "Restyle": the garment's latent under its own class, decoded under every class. */
async function restyle(m: Model, a: number): Promise<Images> {
  const [z] = await encoded(m, [garment(m, a)], [m.manifest.garments.labels[a]]);
  const all = new Float32Array(m.classes * m.dims);
  for (let c = 0; c < m.classes; c++) all.set(z, c * m.dims);
  const pixels = await decoded(
    m,
    all,
    Array.from({ length: m.classes }, (_, c) => c),
  );
  return { pixels, count: m.classes, cols: m.classes };
}

/** Bits/dim of p(x) (the uniform mixture over classes), its complexity correction, the verdict and p(class | x). */
async function score(m: Model, pixels: Uint8Array): Promise<ImageVerdict> {
  if (pixels.length !== m.dims)
    throw new Error(`expected ${m.dims} grey pixels, got ${pixels.length}`);
  const s = await cf.classScores(m.flow, m.params, pixels, 1, m.manifest.ood.seed);
  const complexity = await cf.complexityBitsPerDimAsync(
    pixels,
    m.flow.eventShape[0],
    m.flow.eventShape[1],
  );
  const value = s.bitsPerDim[0] - complexity;
  const threshold = m.threshold;
  return {
    bitsPerDim: s.bitsPerDim[0],
    complexity,
    score: value,
    threshold,
    outOfDistribution: !(value <= threshold),
    posterior: Array.from(s.posterior),
  };
}

const transferOf = (images: Images) => [images.pixels.buffer];

scope.onmessage = async (e) => {
  const msg = e.data;
  try {
    if (msg.type === "open") {
      model ??= open(msg.device, msg.base);
      await model;
      return;
    }
    if (!model) throw new Error("the model is not loaded yet");
    const m = await model;
    if (msg.type === "grid") {
      const images = await grid(m, msg.temperature, msg.seed);
      post({ type: "grid", images, temperature: msg.temperature }, transferOf(images));
    } else if (msg.type === "interpolate") {
      const images = await interpolate(m, msg.a, msg.b);
      post({ type: "interpolation", images, a: msg.a, b: msg.b }, transferOf(images));
    } else if (msg.type === "restyle") {
      const images = await restyle(m, msg.a);
      post({ type: "restyle", images, a: msg.a }, transferOf(images));
    } else if (msg.type === "score") {
      post({ type: "score", verdict: await score(m, msg.pixels) });
    }
  } catch (err) {
    post({ type: "error", message: (err as Error)?.message ?? String(err) });
  }
};
