/**
 * The page's script: read a run's two files, rebuild the flow with `decodeRun` (the same checks
 * as `loadRun`, in memory), draw samples and show them: an image grid for image runs, a scatter
 * plot for 2-D runs, the first rows as text otherwise.
 */
import {
  decodeRun,
  imageGrid,
  sampleRows,
  scatterPlot,
  standardizeInverse,
  startEngine,
  tree,
} from "clayflow";

const $ = (id) => document.getElementById(id);

/** Samples of a loaded run as a picture (a clayflow canvas), or null with a text summary. */
export async function drawSamples(run, n) {
  const samples = await sampleRows(run.flow, run.bestParams ?? run.params, n, { seed: 0 });
  const shape = run.flow.eventShape;
  if (shape.length === 3) {
    const clipped = samples.map((v) => Math.min(1, Math.max(0, v)));
    return {
      canvas: imageGrid(clipped, n, shape[0], shape[1], { cols: Math.ceil(Math.sqrt(n)) }),
      text: `${n} samples`,
    };
  }
  // Vector runs trained on standardised data: back to the data's units.
  const rows = run.preprocessing ? standardizeInverse(run.preprocessing, samples) : samples;
  if (shape[0] === 2)
    return { canvas: scatterPlot(rows, { title: "samples", alpha: 0.3 }), text: `${n} samples` };
  const first = Array.from({ length: 5 }, (_, r) =>
    Array.from(rows.subarray(r * shape[0], (r + 1) * shape[0]), (v) => v.toFixed(3)).join(", "),
  );
  return { canvas: null, text: `first samples:\n${first.join("\n")}` };
}

function paint(canvas, picture) {
  const { width, height, data } = picture.toImage();
  canvas.width = width;
  canvas.height = height;
  const img = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    img.data.set(data.subarray(3 * i, 3 * i + 3), 4 * i);
    img.data[4 * i + 3] = 255;
  }
  canvas.getContext("2d").putImageData(img, 0, 0);
}

if (typeof document !== "undefined") {
  await startEngine();
  $("files").addEventListener("change", async (event) => {
    const files = [...event.target.files];
    const config = files.find((f) => f.name.endsWith(".json"));
    const weights = files.find((f) => f.name.endsWith(".safetensors"));
    if (!config || !weights) {
      $("status").textContent = "Pick both files: config.json and weights.safetensors.";
      return;
    }
    try {
      const run = decodeRun({
        config: await config.text(),
        weights: new Uint8Array(await weights.arrayBuffer()),
      });
      const isImage = run.flow.eventShape.length === 3;
      const { canvas, text } = await drawSamples(run, isImage ? 64 : 2000);
      tree.dispose(run.params);
      if (run.bestParams) tree.dispose(run.bestParams);
      if (canvas) paint($("picture"), canvas);
      $("status").textContent = `${run.config.model.model}: ${text}`;
    } catch (e) {
      $("status").textContent = `Could not load the run: ${e.message}`;
    }
  });
}
