/**
 * The Images tab: a pretrained class-conditional FashionMNIST flow (shipped with the page, run
 * in images-worker.ts) sampled per class with a temperature, interpolated between two test
 * garments, "restyled" (one garment's latent decoded under every class), and asked for a
 * dropped picture's bits/dim and whether it looks like FashionMNIST at all.
 */
import type {
  EngineChoice,
  FromImages,
  ImageModelManifest,
  ImageVerdict,
  Images,
  ToImages,
} from "./protocol.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const SIDE = 28;
const SCALE = 3;

/** What the tab knows, exposed on window for the browser test. */
const state = {
  device: null as string | null,
  manifest: null as ImageModelManifest | null,
  /** The OOD threshold the worker calibrated with this browser's compressor. */
  threshold: null as number | null,
  grids: 0,
  gridTemperature: null as number | null,
  interpolations: 0,
  restyles: 0,
  /** Pictures scored so far. */
  scored: 0,
  verdict: null as (ImageVerdict & { pixels: number[]; inverted: boolean }) | null,
  error: null as string | null,
};
(window as unknown as { playgroundImages: typeof state }).playgroundImages = state;

let worker: Worker | null = null;
let garments: Uint8Array = new Uint8Array(0);
let lastDrop: { pixels: Uint8Array; inverted: boolean } | null = null;

function status(text: string, isError = false) {
  const el = $("images-status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

/** Grey images in [0, 1] onto a canvas, `cols` per row, each SCALE times larger, with optional row labels. */
function drawImages(id: string, images: Images, rowLabels: string[] = [], labelWidth = 0) {
  const canvas = $<HTMLCanvasElement>(id);
  const cell = SIDE * SCALE + 2;
  const rows = Math.ceil(images.count / images.cols);
  canvas.width = labelWidth + images.cols * cell;
  canvas.height = rows * cell;
  const g = canvas.getContext("2d")!;
  g.fillStyle = "#fff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  const tile = new ImageData(SIDE, SIDE);
  const scratch = new OffscreenCanvas(SIDE, SIDE);
  g.imageSmoothingEnabled = false;
  for (let k = 0; k < images.count; k++) {
    for (let i = 0; i < SIDE * SIDE; i++) {
      const v = Math.round(255 * images.pixels[k * SIDE * SIDE + i]);
      tile.data.set([v, v, v, 255], 4 * i);
    }
    scratch.getContext("2d")!.putImageData(tile, 0, 0);
    g.drawImage(
      scratch,
      labelWidth + (k % images.cols) * cell + 1,
      Math.floor(k / images.cols) * cell + 1,
      SIDE * SCALE,
      SIDE * SCALE,
    );
  }
  g.fillStyle = "#222";
  g.font = "12px system-ui, sans-serif";
  rowLabels.forEach((label, r) => g.fillText(label, 4, r * cell + cell / 2 + 4));
}

const garmentImages = (indices: number[]): Images => ({
  pixels: Float32Array.from(
    { length: indices.length * SIDE * SIDE },
    (_, i) =>
      garments[indices[Math.floor(i / (SIDE * SIDE))] * SIDE * SIDE + (i % (SIDE * SIDE))] / 255,
  ),
  count: indices.length,
  cols: indices.length,
});

function send(m: ToImages, transfer: Transferable[] = []) {
  worker?.postMessage(m, transfer);
}

function onWorker(m: FromImages) {
  switch (m.type) {
    case "ready": {
      state.device = m.device;
      state.manifest = m.manifest;
      state.threshold = m.threshold;
      garments = m.garments;
      $("device").textContent =
        `device: ${m.device}${m.device === "wasm" ? ` (${m.threads} thread${m.threads === 1 ? "" : "s"})` : ""}`;
      describeModel(m.manifest);
      fillGarmentChoices(m.manifest);
      status("model loaded");
      requestGrid();
      requestInterpolation();
      requestRestyle();
      if (lastDrop) send({ type: "score", pixels: lastDrop.pixels.slice() });
      break;
    }
    case "grid":
      drawImages("images-grid", m.images, state.manifest!.classes, 90);
      state.grids++;
      state.gridTemperature = m.temperature;
      break;
    case "interpolation":
      drawImages("images-interpolation", m.images);
      state.interpolations++;
      break;
    case "restyle":
      drawImages("images-restyle", {
        ...m.images,
        pixels: concat(garmentImages([m.a]).pixels, m.images.pixels),
        count: m.images.count + 1,
        cols: m.images.count + 1,
      });
      state.restyles++;
      break;
    case "score":
      showVerdict(m.verdict);
      status("");
      break;
    case "error":
      state.error = m.message;
      status(m.message, true);
      break;
  }
}

const concat = (a: Float32Array, b: Float32Array) => {
  const c = new Float32Array(a.length + b.length);
  c.set(a);
  c.set(b, a.length);
  return c;
};

function describeModel(m: ImageModelManifest) {
  $("images-model").textContent =
    `${m.about}. Test ${m.test.bitsPerDim.toFixed(3)} ± ${m.test.ci95.toFixed(3)} bits/dim given ${m.test.given} (${m.test.images.toLocaleString()} test images), ` +
    `${m.marginalTestBitsPerDim.toFixed(3)} without the class; as a classifier ${(100 * m.classifierTestAccuracy).toFixed(1)}% correct. ` +
    `Out-of-distribution check: ${m.ood.score}, thresholded at the ${(100 * (1 - m.ood.falseAlarmRate)).toFixed(0)}th percentile of validation images; measured at packing it flags ${(100 * m.ood.fashionTestFlagged).toFixed(1)}% of FashionMNIST test images and ${(100 * m.ood.mnistTestFlagged).toFixed(1)}% of MNIST digits (AUROC ${m.ood.auroc.toFixed(3)}).`;
}

function fillGarmentChoices(m: ImageModelManifest) {
  const perClass = new Map<number, number>();
  for (const id of ["images-a", "images-b", "images-restyle-of"]) {
    const select = $<HTMLSelectElement>(id);
    select.replaceChildren();
    perClass.clear();
    m.garments.labels.forEach((label, i) => {
      const k = (perClass.get(label) ?? 0) + 1;
      perClass.set(label, k);
      select.add(new Option(`${m.classes[label]} #${k}`, String(i)));
    });
  }
  // Defaults: a trouser into a dress; restyle a sneaker.
  $<HTMLSelectElement>("images-a").value = String(m.garments.labels.indexOf(1));
  $<HTMLSelectElement>("images-b").value = String(m.garments.labels.indexOf(3));
  $<HTMLSelectElement>("images-restyle-of").value = String(m.garments.labels.indexOf(7));
}

const temperature = () => Number($<HTMLInputElement>("images-temperature").value);
let gridSeed = 0;
const requestGrid = () => send({ type: "grid", temperature: temperature(), seed: gridSeed });
const requestInterpolation = () =>
  send({
    type: "interpolate",
    a: Number($<HTMLSelectElement>("images-a").value),
    b: Number($<HTMLSelectElement>("images-b").value),
  });
const requestRestyle = () =>
  send({ type: "restyle", a: Number($<HTMLSelectElement>("images-restyle-of").value) });

function showVerdict(v: ImageVerdict) {
  const m = state.manifest!;
  const top = v.posterior
    .map((p, c) => [p, c] as const)
    .sort((a, b) => b[0] - a[0])
    .slice(0, 3);
  state.verdict = {
    ...v,
    pixels: Array.from(lastDrop?.pixels ?? []),
    inverted: lastDrop?.inverted ?? false,
  };
  state.scored++;
  $("images-verdict").textContent =
    `${v.outOfDistribution ? "OUT of distribution: this does not look like FashionMNIST" : "in distribution: this looks like FashionMNIST"}\n` +
    `${v.bitsPerDim.toFixed(3)} bits/dim under the model, ${v.complexity.toFixed(3)} bits/dim for a PNG-style compressor; ` +
    `score ${v.score.toFixed(3)} against the threshold ${v.threshold.toFixed(3)}\n` +
    `closest classes: ${top.map(([p, c]) => `${m.classes[c]} ${(100 * p).toFixed(1)}%`).join(", ")}` +
    (lastDrop?.inverted
      ? "\n(the picture had a light background, so it was inverted to FashionMNIST's light-on-dark)"
      : "");
}

/** Largest square drawn before the exact area average (bigger pictures are shrunk by the browser first). */
const MAX_SIDE = SIDE * 16;

/**
 * Any picture to 28x28 grey the way FashionMNIST is: fitted whole into a square padded with its
 * own background, averaged down over exact pixel areas (a box filter, so a picture that is a
 * garment scaled up comes back as that garment), and inverted when its background is light.
 */
async function toGarmentPixels(file: File): Promise<{ pixels: Uint8Array; inverted: boolean }> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error(
      `${file.name} is not an image this browser can read (PNG, JPEG, GIF, WebP, BMP)`,
    );
  }
  const side = Math.min(MAX_SIDE, Math.max(bitmap.width, bitmap.height));
  const greyOf = (canvas: OffscreenCanvas) => {
    const d = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
    return Float32Array.from(
      { length: canvas.width * canvas.height },
      (_, i) => 0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2],
    );
  };
  // The background: the outer ring of the picture stretched to the square (transparent counts as white).
  const rough = new OffscreenCanvas(side, side);
  const rg = rough.getContext("2d")!;
  rg.fillStyle = "#fff";
  rg.fillRect(0, 0, side, side);
  rg.drawImage(bitmap, 0, 0, side, side);
  const r = greyOf(rough);
  let ring = 0,
    n = 0;
  for (let i = 0; i < side; i++) {
    ring += r[i] + r[(side - 1) * side + i] + r[i * side] + r[i * side + side - 1];
    n += 4;
  }
  const background = Math.round(ring / n);
  const square = new OffscreenCanvas(side, side);
  const g = square.getContext("2d")!;
  g.fillStyle = `rgb(${background},${background},${background})`;
  g.fillRect(0, 0, side, side);
  g.imageSmoothingQuality = "high";
  const s = side / Math.max(bitmap.width, bitmap.height);
  const [w, h] = [Math.round(bitmap.width * s), Math.round(bitmap.height * s)];
  g.drawImage(bitmap, Math.floor((side - w) / 2), Math.floor((side - h) / 2), w, h);
  bitmap.close();
  const grey = areaAverage(greyOf(square), side, SIDE);
  const inverted = background > 127;
  return { pixels: Uint8Array.from(grey, (v) => Math.round(inverted ? 255 - v : v)), inverted };
}

/** A [side, side] image averaged down to [out, out], each output pixel the mean over its exact area. */
function areaAverage(src: Float32Array, side: number, out: number): Float32Array {
  // Per axis: the source pixels each output pixel covers, with their covered fractions.
  const spans = Array.from({ length: out }, (_, o) => {
    const [a, b] = [(o * side) / out, ((o + 1) * side) / out];
    const parts: [number, number][] = [];
    for (let k = Math.floor(a); k < Math.min(side, Math.ceil(b)); k++)
      parts.push([k, Math.min(b, k + 1) - Math.max(a, k)]);
    return parts;
  });
  const area = (side / out) ** 2;
  const dst = new Float32Array(out * out);
  for (let oy = 0; oy < out; oy++) {
    for (let ox = 0; ox < out; ox++) {
      let sum = 0;
      for (const [y, wy] of spans[oy])
        for (const [x, wx] of spans[ox]) sum += wy * wx * src[y * side + x];
      dst[oy * out + ox] = sum / area;
    }
  }
  return dst;
}

async function scoreFile(file: File | undefined) {
  if (!file) return;
  try {
    lastDrop = await toGarmentPixels(file);
    const preview: Images = {
      pixels: Float32Array.from(lastDrop.pixels, (p) => p / 255),
      count: 1,
      cols: 1,
    };
    drawImages("images-dropped", preview);
    status(`scoring ${file.name}`);
    send({ type: "score", pixels: lastDrop.pixels.slice() });
  } catch (e) {
    status((e as Error).message, true);
  }
}

/** Start (or restart on another engine) the tab's worker; it loads the model and draws everything. */
export function openImagesTab(device: EngineChoice) {
  worker?.terminate();
  // A fresh engine: everything shown is drawn again, and counted again.
  Object.assign(state, {
    device: null,
    threshold: null,
    grids: 0,
    gridTemperature: null,
    interpolations: 0,
    restyles: 0,
    scored: 0,
    verdict: null,
    error: null,
  });
  worker = new Worker(new URL("./images-worker.js", import.meta.url), { type: "module" });
  worker.onmessage = (e: MessageEvent<FromImages>) => onWorker(e.data);
  worker.onerror = (e) =>
    onWorker({ type: "error", message: e.message || "the images worker failed to start" });
  send({ type: "open", device, base: new URL("models/fashion-class/", location.href).href });
  status(`loading the model on ${device}...`);
}

export function setUpImagesTab() {
  $("images-temperature").addEventListener("change", requestGrid);
  $("images-temperature").addEventListener("input", () => {
    $("images-temperature-value").textContent = temperature().toFixed(2);
  });
  $("images-resample").addEventListener("click", () => {
    gridSeed++;
    requestGrid();
  });
  for (const id of ["images-a", "images-b"]) $(id).addEventListener("change", requestInterpolation);
  $("images-restyle-of").addEventListener("change", requestRestyle);
  $<HTMLInputElement>("images-file").addEventListener("change", (e) =>
    scoreFile((e.target as HTMLInputElement).files?.[0]),
  );
  const zone = $("images-drop");
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("drop");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("drop"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("drop");
    scoreFile(e.dataTransfer?.files?.[0]);
  });
}

export const imagesTabOpen = () => worker !== null;
