/**
 * The playground's training worker: it owns the engine (one device per worker: a new engine
 * choice starts a new worker), trains with the library's `fit`, and draws every picture with
 * the library's own plot functions, so the page's thread only copies pixels and never freezes.
 */
import * as cf from "../../src/index.js";
import { LOG_DENSITY_RANGE, window2d } from "../../src/io/flow-plots.js";
import type { Canvas } from "../../src/io/canvas.js";
import type { FromWorker, Picture, ToWorker, TrainRequest } from "./protocol.js";

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  postMessage(m: FromWorker, t?: Transferable[]): void;
};
const post = (m: FromWorker) => scope.postMessage(m);

const GRID = 96;
const SAMPLES = 2000;
const LATENT_POINTS = 1500;
const PANEL = { width: 360, height: 340 };

/** What the worker holds between messages: the flow, its latest parameters and how to draw them. */
interface Current {
  flow: cf.Flow<any, any>;
  params: cf.FlowParams;
  std: cf.Standardizer;
  /** Points in the data's units that set the window and the latent panel (the data, or samples of a loaded run). */
  reference: Float32Array;
  state: cf.TrainState | null;
  dataName: string;
  losses: { step: number; loss: number }[];
  temperature: number;
}
let current: Current | null = null;
let abort: AbortController | null = null;
let engine: Promise<cf.EngineInfo> | null = null;

function picture(c: Canvas): Picture {
  const img = c.toImage();
  return { width: img.width, height: img.height, rgb: img.data };
}

function setParams(c: Current, params: cf.FlowParams) {
  cf.tree.dispose(c.params);
  c.params = params;
}

/** log p of a grid over the window, in the data's units (the standardiser's log-det added back). */
async function densityPicture(c: Current): Promise<Picture> {
  const [x0, x1, y0, y1] = window2d(c.reference);
  const grid = new Float32Array(GRID * GRID * 2);
  for (let r = 0; r < GRID; r++) {
    for (let k = 0; k < GRID; k++) {
      grid[2 * (r * GRID + k)] = x0 + ((k + 0.5) / GRID) * (x1 - x0);
      grid[2 * (r * GRID + k) + 1] = y0 + ((r + 0.5) / GRID) * (y1 - y0);
    }
  }
  const z = cf.standardizeTransform(c.std, grid) as Float32Array;
  const shift = cf.standardizerLogDet(c.std);
  const logp = (await cf.logProbRows(c.flow, c.params, z)).map((v) => v + shift);
  const peak = logp.reduce((m, v) => (Number.isFinite(v) && v > m ? v : m), -Infinity);
  const limits = Number.isFinite(peak) ? { vmin: peak - LOG_DENSITY_RANGE, vmax: peak } : {};
  return picture(
    cf.heatMap(logp, GRID, GRID, {
      ...PANEL,
      title: "learned log-density",
      extent: [x0, x1, y0, y1],
      ...limits,
      barLabel: "log p",
    }),
  );
}

async function samplesPicture(c: Current): Promise<Picture> {
  const [x0, x1, y0, y1] = window2d(c.reference);
  const z = await cf.sampleRows(c.flow, c.params, SAMPLES, { seed: 1, temperature: c.temperature });
  const x = cf.standardizeInverse(c.std, z);
  return picture(
    cf.scatterPlot(x, {
      ...PANEL,
      title: `samples (T = ${c.temperature.toFixed(2)})`,
      xlim: [x0, x1],
      ylim: [y0, y1],
      alpha: 0.3,
      color: [214, 39, 40],
    }),
  );
}

/** The reference points pushed to the latent space: a trained flow makes them a standard normal. */
async function latentPicture(c: Current): Promise<Picture> {
  const n = Math.min(LATENT_POINTS, c.reference.length / 2);
  const x = cf.standardizeTransform(c.std, c.reference.subarray(0, 2 * n)) as Float32Array;
  const z = c.flow.encode(
    cf.tree.ref(c.params),
    cf.numpy.array(Float32Array.from(x)).reshape([n, 2]),
  );
  const zs = (await z.data()) as Float32Array;
  return picture(
    cf.scatterPlot(zs, {
      ...PANEL,
      title: "data in latent space",
      xlim: [-4, 4],
      ylim: [-4, 4],
      alpha: 0.3,
      color: [44, 160, 44],
    }),
  );
}

async function snapshot(c: Current, step: number, totalSteps: number) {
  const loss =
    c.losses.length >= 2
      ? picture(
          cf.linePlot(
            [{ x: c.losses.map((l) => l.step), y: c.losses.map((l) => l.loss), label: "train" }],
            { ...PANEL, title: "NLL (nats, standardised)", xlabel: "step" },
          ),
        )
      : null;
  post({
    type: "snapshot",
    snapshot: {
      step,
      totalSteps,
      losses: c.losses,
      density: await densityPicture(c),
      samples: await samplesPicture(c),
      latent: await latentPicture(c),
      loss,
    },
  });
}

/** Parameters from a training state's flat vector (the layout of a throwaway init). */
function paramsOf(flow: cf.Flow<any, any>, state: cf.TrainState): cf.FlowParams {
  const { vector, unravel } = cf.flatten(flow.init(cf.random.key(0)));
  vector.dispose();
  return unravel(cf.numpy.array(state.params, { shape: [state.params.length] })) as cf.FlowParams;
}

async function train(m: TrainRequest) {
  const rows = m.data.length / 2;
  if (!Number.isInteger(rows) || rows < 10)
    throw new Error(`need at least 10 points to train, got ${Math.floor(rows)}`);
  const std = cf.fitStandardizer(m.data, 2);
  const x = cf.standardizeTransform(std, m.data) as Float32Array;
  const flow = cf.buildFlow(m.model);
  const c: Current = {
    flow,
    params: flow.init(cf.random.key(0)),
    std,
    reference: m.data,
    state: null,
    dataName: m.dataName,
    losses: [],
    temperature: m.temperature,
  };
  if (current) cf.tree.dispose(current.params);
  current = c;
  const every = Math.max(25, Math.round(m.steps / 25));
  abort = new AbortController();
  let sum = 0;
  let count = 0;
  const started = performance.now();
  const fitted = await cf.fit(
    flow,
    cf.tree.ref(c.params),
    { x, rows },
    {
      steps: m.steps,
      batchSize: Math.min(m.batchSize, rows),
      optimizer: { kind: "adam", lr: m.lr },
      validFraction: 0.1,
      evalEvery: every,
      checkpointEvery: every,
      signal: abort.signal,
      onProgress: (p) => {
        if (Number.isFinite(p.loss)) {
          sum += p.loss;
          count++;
        }
        if (p.step % 5 === 0 || p.step === p.totalSteps)
          post({
            type: "progress",
            step: p.step,
            totalSteps: p.totalSteps,
            loss: p.loss,
            stepsPerSecond: p.stepsPerSecond,
          });
      },
      onCheckpoint: async (state) => {
        c.state = state;
        if (count > 0) c.losses.push({ step: state.step, loss: sum / count });
        sum = 0;
        count = 0;
        setParams(c, paramsOf(flow, state));
        await snapshot(c, state.step, m.steps);
      },
    },
  );
  cf.tree.dispose(fitted.bestParams);
  cf.tree.dispose(fitted.params);
  const last = c.state?.history.at(-1);
  const valid = last?.validLoss;
  post({
    type: "done",
    steps: c.state?.step ?? 0,
    seconds: (performance.now() - started) / 1000,
    validNll:
      typeof valid === "number" && Number.isFinite(valid)
        ? valid - cf.standardizerLogDet(std)
        : null,
  });
}

async function load(m: Extract<ToWorker, { type: "load" }>) {
  const run = cf.decodeRun({ config: m.config, weights: m.weights });
  cf.tree.dispose(run.bestParams);
  if (
    run.flow.eventShape.length !== 1 ||
    run.flow.eventShape[0] !== 2 ||
    run.flow.contextDim !== 0
  ) {
    cf.tree.dispose(run.params);
    throw new Error(
      `this run's model has event shape [${run.flow.eventShape.join(", ")}]${run.flow.contextDim ? " and a context" : ""}; the 2-D tab shows unconditional 2-D runs`,
    );
  }
  const std = run.preprocessing ?? {
    kind: "standardizer" as const,
    mean: [0, 0],
    std: [1, 1],
    notes: [],
  };
  const c: Current = {
    flow: run.flow,
    params: run.params,
    std,
    reference: new Float32Array(0),
    state: run.state,
    dataName: run.config.data.name ?? "loaded run",
    losses: [],
    temperature: m.temperature,
  };
  // Without the data, the window and the latent panel come from the run's own samples.
  c.reference = cf.standardizeInverse(
    std,
    await cf.sampleRows(run.flow, run.params, SAMPLES, { seed: 2 }),
  ) as Float32Array;
  c.losses = run.state.history.flatMap((h) =>
    typeof h.trainLoss === "number" && Number.isFinite(h.trainLoss)
      ? [{ step: h.step, loss: h.trainLoss }]
      : [],
  );
  if (current) cf.tree.dispose(current.params);
  current = c;
  await snapshot(c, run.state.step, run.state.step);
}

function save() {
  if (!current?.state) throw new Error("nothing to save yet: train (or load) a run first");
  const files = cf.encodeRun({
    flow: current.flow,
    state: current.state,
    preprocessing: current.std,
    data: { name: current.dataName, rows: current.reference.length / 2, columns: ["x", "y"] },
  });
  post({ type: "saved", config: files.config, weights: files.weights });
}

async function ensureEngine(device: "wasm" | "webgpu") {
  engine ??= cf.startEngine({ device });
  const info = await engine;
  post({ type: "started", device: info.device, threads: info.threads });
}

scope.onmessage = async (e) => {
  const m = e.data;
  try {
    if (m.type === "stop") abort?.abort();
    else if (m.type === "save") save();
    else if (m.type === "temperature") {
      if (current) {
        current.temperature = m.temperature;
        post({ type: "samples", samples: await samplesPicture(current) });
      }
    } else if (m.type === "train") {
      await ensureEngine(m.device);
      await train(m);
    } else if (m.type === "load") {
      await ensureEngine(m.device);
      await load(m);
    }
  } catch (err) {
    post({ type: "error", message: (err as Error)?.message ?? String(err) });
  }
};
