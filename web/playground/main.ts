/**
 * The playground page: a 2-D density (a toy one, drawn with the mouse, or a dropped CSV), a
 * flow trained live in a Web Worker (trainer-worker.ts), and the worker's pictures copied onto
 * canvases. The page's own thread only handles input and pixels.
 */
import { sampleToy2d, TOY_DATASETS } from "../../src/data/toy2d.js";
import { parseCsv } from "../../src/data/csv.js";
import { VECTOR_MODELS } from "../../src/models/vector.js";
import type { EngineChoice, FromWorker, Picture, Snapshot, ToWorker } from "./protocol.js";
import { imagesTabOpen, openImagesTab, setUpImagesTab } from "./images-tab.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const DRAW_WINDOW = 4; // the drawing panel spans [-4, 4] on both axes

/** What the page knows, exposed on window for the browser test. */
const state = {
  device: null as string | null,
  training: false,
  done: null as null | { steps: number; seconds: number; validNll: number | null },
  losses: [] as { step: number; loss: number }[],
  snapshots: 0,
  /** A checksum of each density picture shown, to see the heat map change. */
  densityChecksums: [] as number[],
  samplesRedrawn: 0,
  saved: null as null | { config: string; weights: Uint8Array },
  error: null as string | null,
};
(window as unknown as { playground: typeof state }).playground = state;

let data: Float32Array = new Float32Array(0);
let dataName = "8gaussians";
let drawn: number[] = [];
let worker: Worker | null = null;
let workerDevice: EngineChoice | null = null;

function status(text: string, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

function paint(id: string, p: Picture) {
  const canvas = $<HTMLCanvasElement>(id);
  canvas.width = p.width;
  canvas.height = p.height;
  const img = new ImageData(p.width, p.height);
  for (let i = 0, j = 0; i < p.width * p.height; i++, j += 3) {
    img.data[4 * i] = p.rgb[j];
    img.data[4 * i + 1] = p.rgb[j + 1];
    img.data[4 * i + 2] = p.rgb[j + 2];
    img.data[4 * i + 3] = 255;
  }
  canvas.getContext("2d")!.putImageData(img, 0, 0);
}

/** The data panel, drawn here (it takes the mouse): a fixed window while drawing, else the data's range. */
function drawData() {
  const canvas = $<HTMLCanvasElement>("data-panel");
  canvas.width = 360;
  canvas.height = 340;
  const g = canvas.getContext("2d")!;
  g.fillStyle = "#fff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  const [x0, x1, y0, y1] = dataWindow();
  g.fillStyle = "rgba(31, 119, 180, 0.35)";
  for (let i = 0; i < data.length; i += 2) {
    const px = ((data[i] - x0) / (x1 - x0)) * canvas.width;
    const py = (1 - (data[i + 1] - y0) / (y1 - y0)) * canvas.height;
    g.fillRect(px - 1, py - 1, 2, 2);
  }
  g.fillStyle = "#222";
  g.fillText(`data: ${dataName}, ${data.length / 2} points`, 8, 14);
}

function dataWindow(): [number, number, number, number] {
  if (dataName === "draw" || data.length === 0)
    return [-DRAW_WINDOW, DRAW_WINDOW, -DRAW_WINDOW, DRAW_WINDOW];
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < data.length; i += 2) {
    x0 = Math.min(x0, data[i]);
    x1 = Math.max(x1, data[i]);
    y0 = Math.min(y0, data[i + 1]);
    y1 = Math.max(y1, data[i + 1]);
  }
  const pad = 0.05 * Math.max(x1 - x0, y1 - y0, 1e-9);
  return [x0 - pad, x1 + pad, y0 - pad, y1 + pad];
}

function chooseData() {
  dataName = $<HTMLSelectElement>("dataset").value;
  const n = Math.max(100, Math.min(50000, Number($<HTMLInputElement>("points").value) || 4000));
  data =
    dataName === "draw"
      ? Float32Array.from(drawn)
      : sampleToy2d(dataName as (typeof TOY_DATASETS)[number], n, 0);
  drawData();
}

/** Drawing: each mouse move adds a few points scattered around the pointer. */
function setUpDrawing() {
  const canvas = $<HTMLCanvasElement>("data-panel");
  let down = false;
  let seed = 1;
  const noise = () => {
    // Box-Muller on a small LCG: the strokes need no cryptographic randomness.
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const u = (seed + 1) / 2147483649;
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const v = (seed + 1) / 2147483649;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const add = (e: PointerEvent) => {
    if (!down) return;
    if (dataName !== "draw") {
      $<HTMLSelectElement>("dataset").value = "draw";
      dataName = "draw";
    }
    const r = canvas.getBoundingClientRect();
    const x = ((e.clientX - r.left) / r.width) * 2 * DRAW_WINDOW - DRAW_WINDOW;
    const y = (1 - (e.clientY - r.top) / r.height) * 2 * DRAW_WINDOW - DRAW_WINDOW;
    for (let k = 0; k < 8; k++) drawn.push(x + 0.12 * noise(), y + 0.12 * noise());
    data = Float32Array.from(drawn);
    drawData();
  };
  canvas.addEventListener("pointerdown", (e) => {
    down = true;
    add(e);
  });
  canvas.addEventListener("pointermove", add);
  window.addEventListener("pointerup", () => {
    down = false;
  });
}

function readCsv(text: string, name: string) {
  const table = parseCsv(text);
  if (table.cols !== 2)
    throw new Error(
      `${name} has ${table.cols} columns (${table.columns.join(", ")}); the 2-D tab needs exactly two`,
    );
  data = Float32Array.from(table.data);
  dataName = name;
  drawData();
  status(`${name}: ${table.rows} rows of ${table.columns.join(", ")}`);
}

function workerFor(device: EngineChoice): Worker {
  if (worker && workerDevice === device) return worker;
  // One engine per worker: switching the engine starts a fresh worker.
  worker?.terminate();
  workerDevice = device;
  worker = new Worker(new URL("./trainer-worker.js", import.meta.url), { type: "module" });
  worker.onmessage = (e: MessageEvent<FromWorker>) => onWorker(e.data);
  worker.onerror = (e) =>
    onWorker({ type: "error", message: e.message || "the worker failed to start" });
  return worker;
}

function send(m: ToWorker, transfer: Transferable[] = []) {
  workerFor($<HTMLSelectElement>("engine").value as EngineChoice).postMessage(m, transfer);
}

function showSnapshot(s: Snapshot) {
  paint("density-panel", s.density);
  state.densityChecksums.push(checksum(s.density.rgb));
  paint("samples-panel", s.samples);
  paint("latent-panel", s.latent);
  if (s.loss) paint("loss-panel", s.loss);
  state.losses = s.losses;
  state.snapshots++;
}

function setTraining(on: boolean) {
  state.training = on;
  $<HTMLButtonElement>("train").disabled = on;
  $<HTMLButtonElement>("stop").disabled = !on;
  $<HTMLSelectElement>("engine").disabled = on;
}

function onWorker(m: FromWorker) {
  switch (m.type) {
    case "started":
      state.device = m.device;
      $("device").textContent =
        `device: ${m.device}${m.device === "wasm" ? ` (${m.threads} thread${m.threads === 1 ? "" : "s"})` : ""}`;
      break;
    case "progress":
      status(
        `step ${m.step}/${m.totalSteps}  loss ${m.loss.toFixed(3)} (standardised)  ${m.stepsPerSecond.toFixed(0)} steps/s`,
      );
      break;
    case "snapshot":
      showSnapshot(m.snapshot);
      $<HTMLButtonElement>("save").disabled = false;
      break;
    case "samples":
      paint("samples-panel", m.samples);
      state.samplesRedrawn++;
      break;
    case "done":
      setTraining(false);
      state.done = { steps: m.steps, seconds: m.seconds, validNll: m.validNll };
      status(
        `trained ${m.steps} steps in ${m.seconds.toFixed(1)} s` +
          (m.validNll === null
            ? ""
            : `; validation NLL ${m.validNll.toFixed(3)} nats (data units)`),
      );
      break;
    case "saved": {
      state.saved = { config: m.config, weights: m.weights };
      download("config.json", new Blob([m.config], { type: "application/json" }));
      download(
        "weights.safetensors",
        new Blob([m.weights as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }),
      );
      break;
    }
    case "error":
      setTraining(false);
      state.error = m.message;
      status(m.message, true);
      break;
  }
}

/** FNV-1a over the pixels. */
function checksum(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return h;
}

function download(name: string, blob: Blob) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function modelConfig() {
  const model = $<HTMLSelectElement>("model").value as (typeof VECTOR_MODELS)[number];
  const width = Number($<HTMLInputElement>("hidden").value);
  return {
    model,
    dim: 2,
    layers: Number($<HTMLInputElement>("layers").value),
    hidden: [width, width],
  };
}

async function loadFiles(files: File[]) {
  const csv = files.find((f) => f.name.toLowerCase().endsWith(".csv"));
  if (csv) return readCsv(await csv.text(), csv.name);
  const config = files.find((f) => f.name.endsWith(".json"));
  const weights = files.find((f) => f.name.endsWith(".safetensors"));
  if (!config || !weights)
    throw new Error(
      "a run is two files: pick or drop config.json and weights.safetensors together (or a CSV of two columns)",
    );
  const bytes = new Uint8Array(await weights.arrayBuffer());
  send(
    {
      type: "load",
      device: $<HTMLSelectElement>("engine").value as EngineChoice,
      config: await config.text(),
      weights: bytes,
      temperature: temperature(),
    },
    [bytes.buffer],
  );
  status(`loading ${config.name} + ${weights.name}`);
}

const temperature = () => Number($<HTMLInputElement>("temperature").value);

function setUp() {
  const datasets = $<HTMLSelectElement>("dataset");
  for (const name of [...TOY_DATASETS, "draw"])
    datasets.add(new Option(name, name, name === "8gaussians", name === "8gaussians"));
  const models = $<HTMLSelectElement>("model");
  for (const name of VECTOR_MODELS)
    models.add(new Option(name, name, name === "nsf", name === "nsf"));
  const engine = $<HTMLSelectElement>("engine");
  if (!("gpu" in navigator)) {
    engine.querySelector<HTMLOptionElement>("option[value=webgpu]")!.disabled = true;
    engine.title = "this browser has no WebGPU";
  }
  datasets.addEventListener("change", chooseData);
  $("points").addEventListener("change", chooseData);
  $("clear").addEventListener("click", () => {
    drawn = [];
    if (dataName === "draw") chooseData();
  });
  $("train").addEventListener("click", () => {
    if (data.length < 20)
      return status("draw or choose some data first (at least 10 points)", true);
    setTraining(true);
    state.done = null;
    state.error = null;
    const copy = Float32Array.from(data);
    send(
      {
        type: "train",
        device: engine.value as EngineChoice,
        model: modelConfig(),
        data: copy,
        dataName,
        steps: Number($<HTMLInputElement>("steps").value),
        lr: Number($<HTMLInputElement>("lr").value),
        batchSize: Number($<HTMLInputElement>("batch").value),
        temperature: temperature(),
      },
      [copy.buffer],
    );
    status("compiling the training step...");
  });
  $("stop").addEventListener("click", () => send({ type: "stop" }));
  $("temperature").addEventListener("input", () => {
    $("temperature-value").textContent = temperature().toFixed(2);
    if (worker) send({ type: "temperature", temperature: temperature() });
  });
  $("save").addEventListener("click", () => send({ type: "save" }));
  $<HTMLInputElement>("load").addEventListener("change", (e) => {
    loadFiles(Array.from((e.target as HTMLInputElement).files ?? [])).catch((err) =>
      status(String(err.message ?? err), true),
    );
  });
  const panel = $("data-panel");
  panel.addEventListener("dragover", (e) => {
    e.preventDefault();
    panel.classList.add("drop");
  });
  panel.addEventListener("dragleave", () => panel.classList.remove("drop"));
  panel.addEventListener("drop", (e) => {
    e.preventDefault();
    panel.classList.remove("drop");
    loadFiles(Array.from(e.dataTransfer?.files ?? [])).catch((err) =>
      status(String(err.message ?? err), true),
    );
  });
  // Tabs: the Images tab starts its worker (and loads its model) when first shown.
  const showTab = (images: boolean) => {
    $("tab-2d").hidden = images;
    $("tab-images").hidden = !images;
    $("tab-2d-button").classList.toggle("active", !images);
    $("tab-images-button").classList.toggle("active", images);
    if (images && !imagesTabOpen()) openImagesTab(engine.value as EngineChoice);
  };
  $("tab-2d-button").addEventListener("click", () => showTab(false));
  $("tab-images-button").addEventListener("click", () => showTab(true));
  engine.addEventListener("change", () => {
    if (imagesTabOpen()) openImagesTab(engine.value as EngineChoice);
  });
  setUpImagesTab();
  setUpDrawing();
  chooseData();
  status("choose a density and a model, then train");
  document.title = "clayflow playground";
  document.body.dataset.ready = "true";
}

setUp();
