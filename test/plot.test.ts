import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";
import {
  composePanels,
  formatTick,
  heatMap,
  imageGrid,
  linePlot,
  niceTicks,
  savePng,
  scatterPlot,
} from "../src/io/plot.js";
import { viridis } from "../src/io/colormap.js";
import { Canvas } from "../src/io/canvas.js";
import { textWidth } from "../src/io/font5x7.js";
import { sampleToy2d } from "../src/data/toy2d.js";

const px = (c: Canvas, x: number, y: number) => [
  ...c.data.subarray(3 * (y * c.width + x), 3 * (y * c.width + x) + 3),
];

test("ticks: nice steps and short labels", () => {
  assert.deepEqual(niceTicks(0, 10, 5), { ticks: [0, 2, 4, 6, 8, 10], step: 2 });
  assert.deepEqual(niceTicks(-4.5, 4.5, 3).ticks, [-4, -2, 0, 2, 4]);
  assert.deepEqual(
    niceTicks(0.8, 3.9, 6).ticks.map((t) => formatTick(t, 0.5)),
    ["1.0", "1.5", "2.0", "2.5", "3.0", "3.5"],
  );
  assert.equal(formatTick(0.00015, 0.00005), "1.5e-4");
  assert.equal(formatTick(200000, 100000), "2e5");
  assert.equal(formatTick(1e-17, 0.1), "0");
  assert.throws(() => niceTicks(1, 1), /min < max, got \[1, 1\]/);
  assert.throws(() => linePlot([{ y: [1, 2] }], { ylim: [0, NaN] }), /axis limits must be finite/);
});

test("viridis: anchors at the ends, clamped, NaN gray", () => {
  assert.deepEqual(viridis(0), [68, 1, 84]);
  assert.deepEqual(viridis(1), [253, 231, 37]);
  assert.deepEqual(viridis(-3), viridis(0));
  assert.deepEqual(viridis(NaN), [128, 128, 128]);
  // Lightness rises monotonically (perceptual ordering).
  const lum = (c: number[]) => 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  for (let t = 0.05; t <= 1; t += 0.05) assert.ok(lum(viridis(t)) > lum(viridis(t - 0.05)));
});

test("canvas: text, lines and clipping", () => {
  const c = new Canvas(40, 12);
  c.text(1, 1, "1e-4", [0, 0, 0]);
  assert.equal(textWidth("1e-4"), 23);
  assert.deepEqual(px(c, 3, 1), [0, 0, 0]); // top of the "1" stroke
  c.clip = { x0: 0, y0: 0, x1: 9, y1: 11 };
  c.line(0, 10, 39, 10, [255, 0, 0]);
  assert.deepEqual(px(c, 9, 10), [255, 0, 0]);
  assert.deepEqual(px(c, 10, 10), [255, 255, 255]);
});

test("plots: sizes, marks in the right colours, errors", () => {
  const lp = linePlot(
    [
      { y: [3, 2, 1.5, Infinity, 1.2], label: "train" },
      { x: [0, 4], y: [1e9, -1e9] },
    ],
    { title: "loss" },
  );
  assert.equal(lp.width, 480);
  assert.equal(lp.height, 320);
  assert.throws(() => linePlot([{ x: [1], y: [1, 2] }]), /x has 1 values, y has 2/);

  const sc = scatterPlot(new Float32Array([0, 0, 1, 1]), {
    alpha: 1,
    color: [255, 0, 0],
    xlim: [-1, 2],
    ylim: [-1, 2],
  });
  let red = 0;
  for (let i = 0; i < sc.width * sc.height; i++)
    if (sc.data[3 * i] === 255 && sc.data[3 * i + 1] === 0) red++;
  assert.equal(red, 8); // two 2x2 markers
  assert.throws(() => scatterPlot([1, 2, 3]), /expected \[n, 2\] points/);

  // Row 0 is the bottom: a grid with 1 in the top row only is bright at the top of the plot box.
  const hm = heatMap([0, 0, 1, 1], 2, 2, { width: 200, height: 160 });
  assert.deepEqual(px(hm, 60, 30), viridis(1));
  assert.deepEqual(px(hm, 60, 115), viridis(0));
  assert.throws(() => heatMap([1, 2, 3], 2, 2), /3 values for a 2x2 grid/);
  // Colour limits clip: below vmin is the lowest colour, above vmax the highest (a log-density floor).
  const clipped = heatMap([-50, -50, 5, 5], 2, 2, {
    width: 200,
    height: 160,
    vmin: -10,
    vmax: 0,
    barLabel: "log p",
  });
  assert.deepEqual(px(clipped, 60, 30), viridis(1));
  assert.deepEqual(px(clipped, 60, 115), viridis(0));

  const grid = imageGrid(new Float32Array([0, 1, 0.5, NaN, 2, -1, 0, 0]), 2, 2, 2, {
    scale: 1,
    pad: 1,
  });
  assert.equal(grid.width, 2 * 3 + 1);
  assert.equal(grid.height, 1 * 3 + 1);
  assert.deepEqual(px(grid, 1, 1), [0, 0, 0]);
  assert.deepEqual(px(grid, 2, 1), [255, 255, 255]);
  assert.deepEqual(px(grid, 2, 2), [255, 0, 0]); // NaN
  assert.deepEqual(px(grid, 4, 1), [255, 255, 255]); // 2 clamped to 1

  const both = composePanels([lp, sc], 10);
  assert.equal(both.width, 480 + 10 + sc.width);
  assert.equal(both.height, 360);
});

test("plots: an example figure written as a PNG of the right size", async () => {
  const dir = mkdtempSync(join(tmpdir(), "clayflow-plot-"));
  try {
    const loss = Array.from({ length: 100 }, (_, i) => 3 * Math.exp(-i / 20) + 1);
    const fig = composePanels([
      linePlot([{ y: loss, label: "train" }], {
        title: "NLL",
        xlabel: "step",
        width: 300,
        height: 220,
      }),
      scatterPlot(sampleToy2d("moons", 500, 0), { width: 220, height: 220, title: "moons" }),
    ]);
    const path = join(dir, "fig.png");
    await savePng(path, fig);
    const png = readFileSync(path);
    const size = statSync(path).size;
    assert.ok(size > 1000 && size < 300 * 220 * 3, `size ${size}`);
    assert.equal(png.readUInt32BE(16), 528);
    assert.equal(png.readUInt32BE(20), 220);
    const idatLen = png.readUInt32BE(33);
    assert.equal(png.subarray(37, 41).toString(), "IDAT");
    assert.equal(inflateSync(png.subarray(41, 41 + idatLen)).length, 220 * (1 + 528 * 3));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the density figure: data, log-density clipped 10 nats below its peak, and samples side by side", async () => {
  const { buildFlow } = await import("../src/models/index.js");
  const { densityFigure, LOG_DENSITY_RANGE } = await import("../src/io/flow-plots.js");
  const { random, tree } = await import("@jax-js/jax");
  const flow = buildFlow({ model: "realnvp", dim: 2, layers: 2, hidden: [4] }); // starts as the identity: a standard normal
  const params = flow.init(random.key(0));
  // Data spread to +-6: the corners of the window lie far more than 10 nats below the peak.
  const data = Float32Array.from({ length: 400 }, (_, i) => ((i * 37) % 97) / 8 - 6);
  const two = await densityFigure(flow, params, data, { resolution: 40 });
  const three = await densityFigure(flow, params, data, { resolution: 40, samples: data });
  tree.dispose(params);
  assert.equal(LOG_DENSITY_RANGE, 10);
  assert.equal(two.width, 2 * 380 + 8);
  assert.equal(three.width, 3 * 380 + 16);
});
