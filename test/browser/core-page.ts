/**
 * The core browser checks, run in a real page by test/browser-core.test.ts: a worker trains a
 * run on wasm, then one worker per device decodes the same run files and scores, samples,
 * inverts and trains them, so the two backends can be compared on the same parameters.
 */
import * as cf from "../../src/index.js";
import { fetchedUrls } from "./core-shared.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Reply =
  | { ok: true; device: string; fetched: string[]; [k: string]: any }
  | { ok: false; error: string };

function inWorker(message: unknown): Promise<Reply & { ok: true }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./core-worker.js", import.meta.url), { type: "module" });
    worker.onmessage = (e: MessageEvent<Reply>) => {
      worker.terminate();
      if (e.data.ok) resolve(e.data);
      else reject(new Error(`worker: ${e.data.error}`));
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error(`worker: ${e.message}`));
    };
    worker.postMessage(message);
  });
}

/** PNG and gzip in the page itself, without Node: a PNG of a known image, and a gzip IDX file given by the test. */
async function fileFormats(gzIdx: number[]) {
  const width = 5,
    height = 3;
  const data = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37) % 256);
  const png = await cf.encodePngAsync({ width, height, channels: 3, data }, { filter: "adaptive" });
  const idx = await cf.parseIdxAsync(Uint8Array.from(gzIdx), { file: "t.idx.gz" });
  let corrupt = "";
  try {
    await cf.parseIdxAsync(Uint8Array.from([0x1f, 0x8b, 8, 0, 1, 2, 3]), { file: "bad.idx.gz" });
  } catch (e) {
    corrupt = (e as Error).message;
  }
  let sync = "";
  try {
    cf.encodePng({ width, height, channels: 3, data });
  } catch (e) {
    sync = (e as Error).message;
  }
  return {
    png: [...png],
    pixels: [...data],
    idx: { dims: idx.dims, data: [...idx.data] },
    corrupt,
    sync,
  };
}

async function runAll(gzIdx: number[]) {
  const trained = await inWorker({ task: "train", steps: 30 });
  const files = trained.files as cf.RunFiles;
  const wasm = await inWorker({ task: "check", device: "wasm", files });
  const webgpu =
    "gpu" in navigator ? await inWorker({ task: "check", device: "webgpu", files }) : null;
  // The run decoded on the page itself: the bytes survived the message.
  await cf.startEngine({ device: "wasm" });
  const run = cf.decodeRun(files);
  cf.tree.dispose(run.bestParams);
  const pageLogp = await cf.logProbRows(run.flow, run.params, cf.sampleToy2d("moons", 16, 9));
  return {
    formats: await fileFormats(gzIdx),
    trained: { device: trained.device, losses: trained.losses, logp: trained.logp },
    pageLogp: [...pageLogp],
    wasm,
    webgpu,
    fetched: [...fetchedUrls(), ...trained.fetched, ...wasm.fetched, ...(webgpu?.fetched ?? [])],
  };
}

(window as unknown as { clayflowCore: (gzIdx: number[]) => Promise<unknown> }).clayflowCore = (
  gzIdx,
) => runAll(gzIdx);
document.title = "clayflow core: ready";
