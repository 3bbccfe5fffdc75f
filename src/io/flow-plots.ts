/**
 * Pictures of a 2-D flow: the data, its log-density as a heat map and its samples side
 * by side, its samples alone, and the training curves.
 */
import type { Flow, FlowParams } from "../distributions/flow.js";
import { logProbRows } from "../eval/log-prob-rows.js";
import { composePanels, heatMap, linePlot, scatterPlot } from "./plot.js";
import type { Canvas } from "./canvas.js";

/** A square window around the data: the 0.5%..99.5% range of each axis, padded. */
export function window2d(points: Float32Array): [number, number, number, number] {
  const lim = (axis: number): [number, number] => {
    const v = Float64Array.from(
      { length: points.length / 2 },
      (_, i) => points[2 * i + axis],
    ).sort();
    const lo = v[Math.floor(v.length * 0.005)];
    const hi = v[Math.ceil(v.length * 0.995) - 1];
    const pad = 0.15 * (hi - lo || 1);
    return [lo - pad, hi + pad];
  };
  const [x0, x1] = lim(0);
  const [y0, y1] = lim(1);
  const half = Math.max(x1 - x0, y1 - y0) / 2;
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  return [cx - half, cx + half, cy - half, cy + half];
}

/** How far below its peak the log-density map goes (nats): e^-10 of the peak is "empty". */
export const LOG_DENSITY_RANGE = 10;

/**
 * The data, the learned density and (when given) samples, side by side like the figures of
 * the papers. The density is drawn as log p(x), clipped LOG_DENSITY_RANGE nats below its
 * peak: on a linear scale every mode but the highest fades out, and the floor keeps the
 * colour bar readable instead of running down to underflow.
 */
export async function densityFigure(
  flow: Flow<any, any>,
  params: FlowParams<any, any>,
  data: Float32Array,
  {
    resolution = 200,
    title = "learned log-density",
    samples = undefined as Float32Array | undefined,
  } = {},
): Promise<Canvas> {
  const extent = window2d(data);
  const [x0, x1, y0, y1] = extent;
  const grid = new Float32Array(resolution * resolution * 2);
  for (let r = 0; r < resolution; r++) {
    for (let c = 0; c < resolution; c++) {
      const i = r * resolution + c;
      grid[2 * i] = x0 + ((c + 0.5) / resolution) * (x1 - x0);
      grid[2 * i + 1] = y0 + ((r + 0.5) / resolution) * (y1 - y0);
    }
  }
  const logp = await logProbRows(flow, params, grid);
  const peak = logp.reduce((m, v) => (Number.isFinite(v) && v > m ? v : m), -Infinity);
  const limits = Number.isFinite(peak) ? { vmin: peak - LOG_DENSITY_RANGE, vmax: peak } : {};
  const size = { width: 380, height: 360 };
  const shown = data.subarray(0, Math.min(data.length, 2 * 5000));
  return composePanels([
    scatterPlot(shown, { ...size, title: "data", xlim: [x0, x1], ylim: [y0, y1], alpha: 0.25 }),
    heatMap(logp, resolution, resolution, { ...size, title, extent, ...limits, barLabel: "log p" }),
    ...(samples
      ? [samplesFigure(samples.subarray(0, Math.min(samples.length, 2 * 5000)), data)]
      : []),
  ]);
}

/** A scatter plot of a 2-D flow's samples, in the window of the data. */
export function samplesFigure(
  samples: Float32Array,
  data: Float32Array,
  title = "samples",
): Canvas {
  const [x0, x1, y0, y1] = window2d(data);
  return scatterPlot(samples, {
    width: 380,
    height: 360,
    title,
    xlim: [x0, x1],
    ylim: [y0, y1],
    alpha: 0.25,
    color: [214, 39, 40],
  });
}

/** One point of a training curve. */
export interface LossPoint {
  step: number;
  trainLoss?: number;
  validLoss?: number;
}

/** The training and validation loss curves (in `unit`). */
export function lossFigure(history: LossPoint[], unit = "nats"): Canvas {
  const pick = (key: "trainLoss" | "validLoss") => {
    const pts = history.filter((h) => Number.isFinite(h[key]));
    return { x: pts.map((h) => h.step), y: pts.map((h) => h[key]!) };
  };
  const train = pick("trainLoss");
  const valid = pick("validLoss");
  const series = [
    { ...train, label: "train" },
    ...(valid.y.length ? [{ ...valid, label: "validation" }] : []),
  ].filter((s) => s.y.length > 0);
  if (series.length === 0) throw new Error("lossFigure: no finite losses to plot");
  return linePlot(series, {
    width: 520,
    height: 340,
    title: `negative log-likelihood (${unit})`,
    xlabel: "step",
    ylabel: "NLL",
  });
}
