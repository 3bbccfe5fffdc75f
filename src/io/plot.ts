/**
 * A tiny raster plotting kit: line plots (loss curves), 2-D scatter plots, heat maps, side-by-side
 * panels and image grids, drawn on a `Canvas` and saved as PNG with no external packages.
 * Axes get "nice" ticks (steps of 1, 2 or 5 times a power of ten) labelled in the 5x7 font.
 */
import { Canvas, type RGB } from "./canvas.js";
import { viridis } from "./colormap.js";
import { GLYPH_HEIGHT, textWidth } from "./font5x7.js";
import { encodePng } from "./png.js";
import { writeFileAtomic } from "./atomic-write.js";

/** Size, title and axis labels shared by the plots. */
export interface PlotOptions {
  width?: number;
  height?: number;
  title?: string;
  xlabel?: string;
  ylabel?: string;
  /** Data limits; default: the data range plus 5% on each side. */
  xlim?: [number, number];
  ylim?: [number, number];
}

/** One line of `linePlot`. */
export interface LineSeries {
  y: ArrayLike<number>;
  /** Default 0, 1, 2, ... */
  x?: ArrayLike<number>;
  label?: string;
  color?: RGB;
}

/** Matplotlib's "tab10" first colours: distinguishable, and fine for the common kinds of colour blindness. */
export const PALETTE: RGB[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
];

const BLACK: RGB = [0, 0, 0];
const GRID: RGB = [225, 225, 225];
const MARGIN = { left: 58, right: 14, top: 24, bottom: 36 };

/** About `target` round tick values covering [lo, hi], and their step. */
export function niceTicks(lo: number, hi: number, target = 5): { ticks: number[]; step: number } {
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) {
    throw new Error(`plot: axis limits must be finite with min < max, got [${lo}, ${hi}]`);
  }
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  // The 1-2-5 step nearest to the raw step on a log scale.
  const step = [1, 2, 5, 10]
    .map((m) => m * mag)
    .reduce((a, b) => (Math.abs(Math.log(b / raw)) < Math.abs(Math.log(a / raw)) ? b : a));
  const ticks: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++)
    ticks.push(Number((k * step).toPrecision(12)) + 0); // "+ 0" turns -0 into 0
  return { ticks, step };
}

/** Short label for a tick at multiples of `step`: fixed decimals, or "1.5e-4" style when tiny or huge. */
export function formatTick(v: number, step: number): string {
  if (Math.abs(v) < step * 1e-9) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace(".0e", "e").replace("e+", "e");
  return v.toFixed(Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9))));
}

/** [min, max] of the finite values, padded by 5%; a degenerate range is widened to +-1 (or +-10%). */
function dataLimits(values: ArrayLike<number>[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    for (let i = 0; i < v.length; i++) {
      if (Number.isFinite(v[i])) {
        lo = Math.min(lo, v[i]);
        hi = Math.max(hi, v[i]);
      }
    }
  }
  if (lo > hi) return [0, 1];
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return [lo - d, hi + d];
  }
  const pad = 0.05 * (hi - lo);
  return [lo - pad, hi + pad];
}

/** A plot box on a canvas with data -> pixel maps. */
interface Frame {
  canvas: Canvas;
  left: number;
  top: number;
  w: number;
  h: number;
  px: (x: number) => number;
  py: (y: number) => number;
}

/** Draws title, labels, grid, ticks and the frame; returns the box with data -> pixel maps. */
function drawAxes(
  canvas: Canvas,
  xlim: [number, number],
  ylim: [number, number],
  o: PlotOptions,
  rightExtra = 0,
): Frame {
  const left = MARGIN.left;
  const top = MARGIN.top;
  const w = canvas.width - MARGIN.left - MARGIN.right - rightExtra;
  const h = canvas.height - MARGIN.top - MARGIN.bottom;
  if (w < 10 || h < 10)
    throw new Error(`plot: ${canvas.width}x${canvas.height} leaves no room for the plot area`);
  const px = (x: number) => left + ((x - xlim[0]) / (xlim[1] - xlim[0])) * (w - 1);
  const py = (y: number) => top + h - 1 - ((y - ylim[0]) / (ylim[1] - ylim[0])) * (h - 1);
  const xt = niceTicks(xlim[0], xlim[1], Math.max(3, Math.floor(w / 70)));
  const yt = niceTicks(ylim[0], ylim[1], Math.max(3, Math.floor(h / 45)));
  for (const t of xt.ticks) {
    const x = px(t);
    canvas.line(x, top, x, top + h - 1, GRID);
    canvas.line(x, top + h, x, top + h + 3, BLACK);
    const label = formatTick(t, xt.step);
    canvas.text(x - textWidth(label) / 2, top + h + 6, label, BLACK);
  }
  for (const t of yt.ticks) {
    const y = py(t);
    canvas.line(left, y, left + w - 1, y, GRID);
    canvas.line(left - 4, y, left - 1, y, BLACK);
    const label = formatTick(t, yt.step);
    canvas.text(left - 7 - textWidth(label), y - 3, label, BLACK);
  }
  canvas.strokeRect(left - 1, top - 1, w + 2, h + 2, BLACK);
  if (o.title) canvas.text(left + w / 2 - textWidth(o.title) / 2, 8, o.title, BLACK);
  if (o.xlabel) canvas.text(left + w / 2 - textWidth(o.xlabel) / 2, top + h + 18, o.xlabel, BLACK);
  if (o.ylabel) canvas.text(2, 8, o.ylabel, BLACK);
  return { canvas, left, top, w, h, px, py };
}

/** Runs `draw` with marks clipped to the plot box. */
function insideFrame(f: Frame, draw: () => void): void {
  f.canvas.clip = { x0: f.left, y0: f.top, x1: f.left + f.w - 1, y1: f.top + f.h - 1 };
  try {
    draw();
  } finally {
    f.canvas.clip = null;
  }
}

/** Liang-Barsky: the part of segment (x0,y0)-(x1,y1) inside the box, or null. Keeps huge values from making long lines. */
function clipSegment(
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  b: { x0: number; y0: number; x1: number; y1: number },
): number[] | null {
  let t0 = 0;
  let t1 = 1;
  const dx = x1 - x0;
  const dy = y1 - y0;
  const edges: Array<[number, number]> = [
    [-dx, x0 - b.x0],
    [dx, b.x1 - x0],
    [-dy, y0 - b.y0],
    [dy, b.y1 - y0],
  ];
  for (const [p, q] of edges) {
    if (p === 0) {
      if (q < 0) return null;
    } else {
      const r = q / p;
      if (p < 0) t0 = Math.max(t0, r);
      else t1 = Math.min(t1, r);
    }
  }
  return t0 > t1 ? null : [x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy];
}

/** Line plot of one or more series (e.g. train and validation loss); non-finite points break the line. */
export function linePlot(series: LineSeries[], o: PlotOptions = {}): Canvas {
  const canvas = new Canvas(o.width ?? 480, o.height ?? 320);
  const xs = series.map((s) => s.x ?? Float64Array.from({ length: s.y.length }, (_, i) => i));
  series.forEach((s, k) => {
    if (xs[k].length !== s.y.length)
      throw new Error(`linePlot: series ${k}: x has ${xs[k].length} values, y has ${s.y.length}`);
  });
  const f = drawAxes(
    canvas,
    o.xlim ?? dataLimits(xs),
    o.ylim ?? dataLimits(series.map((s) => s.y)),
    o,
  );
  const box = { x0: f.left - 2, y0: f.top - 2, x1: f.left + f.w + 1, y1: f.top + f.h + 1 };
  insideFrame(f, () => {
    series.forEach((s, k) => {
      const c = s.color ?? PALETTE[k % PALETTE.length];
      for (let i = 1; i < s.y.length; i++) {
        const p = [xs[k][i - 1], s.y[i - 1], xs[k][i], s.y[i]];
        if (!p.every(Number.isFinite)) continue;
        const seg = clipSegment(f.px(p[0]), f.py(p[1]), f.px(p[2]), f.py(p[3]), box);
        if (seg) canvas.line(seg[0], seg[1], seg[2], seg[3], c, 2);
      }
      if (s.y.length === 1 && Number.isFinite(s.y[0]))
        canvas.fillRect(f.px(xs[k][0]) - 1, f.py(s.y[0]) - 1, 3, 3, c);
    });
  });
  // Legend, top right inside the box.
  const labelled = series
    .map((s, k) => ({ label: s.label, c: s.color ?? PALETTE[k % PALETTE.length] }))
    .filter((s) => s.label);
  if (labelled.length > 0) {
    const lw = Math.max(...labelled.map((s) => textWidth(s.label!))) + 26;
    const x = f.left + f.w - lw - 6;
    canvas.fillRect(x, f.top + 4, lw + 2, labelled.length * 11 + 4, [255, 255, 255]);
    labelled.forEach((s, i) => {
      const y = f.top + 8 + i * 11;
      canvas.line(x + 3, y + 3, x + 17, y + 3, s.c, 2);
      canvas.text(x + 22, y, s.label!, BLACK);
    });
  }
  return canvas;
}

/** Options of `scatterPlot`. */
export interface ScatterOptions extends PlotOptions {
  color?: RGB;
  /** Opacity of each point; low values show density where points overlap. Default 0.5. */
  alpha?: number;
  /** Square marker side in pixels. Default 2. */
  pointSize?: number;
}

/** Scatter plot of row-major [n, 2] points. */
export function scatterPlot(points: ArrayLike<number>, o: ScatterOptions = {}): Canvas {
  if (points.length % 2 !== 0)
    throw new Error(`scatterPlot: expected [n, 2] points, got ${points.length} values`);
  const n = points.length / 2;
  const xs = Float64Array.from({ length: n }, (_, i) => points[2 * i]);
  const ys = Float64Array.from({ length: n }, (_, i) => points[2 * i + 1]);
  const canvas = new Canvas(o.width ?? 360, o.height ?? 360);
  const f = drawAxes(canvas, o.xlim ?? dataLimits([xs]), o.ylim ?? dataLimits([ys]), o);
  const c = o.color ?? PALETTE[0];
  const size = o.pointSize ?? 2;
  insideFrame(f, () => {
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
      const x = f.px(xs[i]);
      const y = f.py(ys[i]);
      if (x < -size || y < -size || x > canvas.width || y > canvas.height) continue;
      canvas.fillRect(x - size / 2, y - size / 2, size, size, c, o.alpha ?? 0.5);
    }
  });
  return canvas;
}

/** Options of `heatMap`. */
export interface HeatMapOptions extends PlotOptions {
  /** Data coordinates of the grid: [xmin, xmax, ymin, ymax]. Default [0, cols, 0, rows]. */
  extent?: [number, number, number, number];
  /** Colour limits; default the finite min and max. Values outside take the end colours. */
  vmin?: number;
  vmax?: number;
  /** Label above the colour bar, e.g. "log p". */
  barLabel?: string;
}

/**
 * Heat map of a row-major [rows, cols] grid in viridis, with a colour bar. Row 0 is the BOTTOM
 * (y = ymin), as for a density evaluated on a grid of increasing y; NaN cells are gray.
 */
export function heatMap(
  values: ArrayLike<number>,
  rows: number,
  cols: number,
  o: HeatMapOptions = {},
): Canvas {
  if (values.length !== rows * cols)
    throw new Error(`heatMap: ${values.length} values for a ${rows}x${cols} grid`);
  const ext = o.extent ?? [0, cols, 0, rows];
  let lo = o.vmin ?? Infinity;
  let hi = o.vmax ?? -Infinity;
  if (o.vmin === undefined || o.vmax === undefined) {
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) continue;
      if (o.vmin === undefined) lo = Math.min(lo, values[i]);
      if (o.vmax === undefined) hi = Math.max(hi, values[i]);
    }
  }
  if (!(lo <= hi)) [lo, hi] = [0, 1];
  const span = hi > lo ? hi - lo : 1;
  const canvas = new Canvas(o.width ?? 400, o.height ?? 340);
  const barSpace = 64;
  const f = drawAxes(canvas, o.xlim ?? [ext[0], ext[1]], o.ylim ?? [ext[2], ext[3]], o, barSpace);
  for (let j = 0; j < f.h; j++) {
    for (let i = 0; i < f.w; i++) {
      // Nearest cell under the pixel centre.
      const c = Math.min(cols - 1, Math.floor(((i + 0.5) / f.w) * cols));
      const r = Math.min(rows - 1, Math.floor(((f.h - j - 0.5) / f.h) * rows));
      const v = values[r * cols + c];
      canvas.set(f.left + i, f.top + j, viridis(Number.isFinite(v) ? (v - lo) / span : NaN));
    }
  }
  canvas.strokeRect(f.left - 1, f.top - 1, f.w + 2, f.h + 2, BLACK);
  // Colour bar with its limits.
  const bx = f.left + f.w + 10;
  for (let j = 0; j < f.h; j++)
    canvas.fillRect(bx, f.top + j, 12, 1, viridis(1 - j / Math.max(1, f.h - 1)));
  canvas.strokeRect(bx - 1, f.top - 1, 14, f.h + 2, BLACK);
  // Ticks at round values, as on the axes.
  const bt = niceTicks(lo, hi, Math.max(3, Math.floor(f.h / 50)));
  for (const t of bt.ticks) {
    if (t < lo || t > hi) continue;
    const y = Math.round(f.top + (f.h - 1) * (1 - (t - lo) / span));
    canvas.line(bx + 12, y, bx + 15, y, BLACK);
    canvas.text(
      bx + 17,
      Math.min(Math.max(y - 3, f.top), f.top + f.h - GLYPH_HEIGHT),
      formatTick(t, bt.step),
      BLACK,
    );
  }
  if (o.barLabel)
    canvas.text(
      Math.min(bx, canvas.width - textWidth(o.barLabel) - 2),
      f.top - GLYPH_HEIGHT - 3,
      o.barLabel,
      BLACK,
    );
  return canvas;
}

/** Panels side by side (top-aligned) with `gap` pixels between them. */
export function composePanels(
  panels: Canvas[],
  gap = 8,
  background: RGB = [255, 255, 255],
): Canvas {
  if (panels.length === 0) throw new Error("composePanels: no panels");
  const width = panels.reduce((a, p) => a + p.width, 0) + gap * (panels.length - 1);
  const out = new Canvas(width, Math.max(...panels.map((p) => p.height)), background);
  let x = 0;
  for (const p of panels) {
    out.blit(p, x, 0);
    x += p.width + gap;
  }
  return out;
}

/** Options of `imageGrid`. */
export interface ImageGridOptions {
  /** Images per row; default ceil(sqrt(n)). */
  cols?: number;
  /** Integer magnification. Default 2. */
  scale?: number;
  /** Pixels between images. Default 2. */
  pad?: number;
}

/** A grid of N grayscale images [N, H, W] with values in [0, 1] (clamped; NaN shown red). */
export function imageGrid(
  images: ArrayLike<number>,
  n: number,
  h: number,
  w: number,
  o: ImageGridOptions = {},
): Canvas {
  if (images.length !== n * h * w)
    throw new Error(`imageGrid: ${images.length} values for [${n}, ${h}, ${w}]`);
  if (n < 1) throw new Error("imageGrid: no images");
  const cols = o.cols ?? Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const s = o.scale ?? 2;
  const pad = o.pad ?? 2;
  const canvas = new Canvas(
    cols * (w * s + pad) + pad,
    rows * (h * s + pad) + pad,
    [128, 128, 128],
  );
  for (let k = 0; k < n; k++) {
    const x0 = pad + (k % cols) * (w * s + pad);
    const y0 = pad + Math.floor(k / cols) * (h * s + pad);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const v = images[(k * h + r) * w + c];
        const g = Math.round(255 * Math.min(1, Math.max(0, v)));
        canvas.fillRect(x0 + c * s, y0 + r * s, s, s, Number.isNaN(v) ? [255, 0, 0] : [g, g, g]);
      }
    }
  }
  return canvas;
}

/** PNG bytes of a canvas. */
export function canvasToPng(canvas: Canvas): Uint8Array {
  return encodePng(canvas.toImage());
}

/** Writes a canvas as a PNG file, atomically. */
export async function savePng(path: string, canvas: Canvas): Promise<void> {
  await writeFileAtomic(path, canvasToPng(canvas));
}

/** One group of values of `histogramPlot`, drawn in its own colour. */
export interface HistogramGroup {
  values: ArrayLike<number>;
  label?: string;
  color?: RGB;
}

/** Options of `histogramPlot`. */
export interface HistogramOptions extends PlotOptions {
  /** Bins across the range. Default 40. */
  bins?: number;
}

/**
 * Overlaid density histograms (step outlines, each integrating to 1) of several groups on
 * shared bins, e.g. the scores of in- and out-of-distribution inputs. The range spans the
 * finite values from the 0.5% to the 99.5% quantile of all groups (a few extreme scores would
 * otherwise squeeze the rest into one bin); values outside it, and infinities, are counted in the
 * end bins.
 */
export function histogramPlot(groups: HistogramGroup[], o: HistogramOptions = {}): Canvas {
  const bins = o.bins ?? 40;
  if (!Number.isInteger(bins) || bins < 1)
    throw new Error(`histogramPlot: bins must be a positive integer, got ${bins}`);
  const all = groups
    .flatMap((g) => Array.from(g.values).filter(Number.isFinite))
    .sort((a, b) => a - b);
  const at = (q: number) => all[Math.min(all.length - 1, Math.floor(q * all.length))];
  let [lo, hi] = all.length > 0 ? [at(0.005), at(0.995)] : [0, 1];
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, lo + 0.5];
  const width = (hi - lo) / bins;
  const series: LineSeries[] = groups.map((g, k) => {
    const counts = new Float64Array(bins);
    let n = 0;
    for (let i = 0; i < g.values.length; i++) {
      const v = g.values[i];
      if (Number.isNaN(v)) continue;
      counts[Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / width)))]++;
      n++;
    }
    const x: number[] = [lo];
    const y: number[] = [0];
    for (let b = 0; b < bins; b++) {
      const d = n > 0 ? counts[b] / (n * width) : 0;
      x.push(lo + b * width, lo + (b + 1) * width);
      y.push(d, d);
    }
    x.push(hi);
    y.push(0);
    return { x, y, label: g.label, color: g.color ?? PALETTE[k % PALETTE.length] };
  });
  const top = Math.max(1e-12, ...series.map((s) => Math.max(...(s.y as number[]))));
  return linePlot(series, {
    ...o,
    xlim: o.xlim ?? [lo - width, hi + width],
    ylim: o.ylim ?? [0, top * 1.1],
    ylabel: o.ylabel ?? "density",
  });
}
