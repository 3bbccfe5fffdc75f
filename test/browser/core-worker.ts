/**
 * The core browser checks' Web Worker. Each worker starts one engine on one device (a page
 * that starts wasm and then WebGPU in one global scope loses its GPU device in jax-js 0.1.25:
 * "Instance dropped in popErrorScope"), so the page runs every device in a worker of its own.
 *
 * Messages: { task: "train", steps } trains on wasm and returns the run's files;
 * { task: "check", device, files } scores, samples, inverts and trains that run on `device`.
 */
import * as cf from "../../src/index.js";
import { shortFit, fetchedUrls } from "./core-shared.js";

const PROBE_ROWS = 64;
const scope = self as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(m: unknown, t?: Transferable[]): void;
};

type Message =
  | { task: "train"; steps: number }
  | { task: "check"; device: "wasm" | "webgpu"; files: cf.RunFiles };

/** Everything the test compares for one device, from the same run files. */
async function check(files: cf.RunFiles) {
  const run = cf.decodeRun(files);
  cf.tree.dispose(run.bestParams);
  const probe = cf.sampleToy2d("moons", PROBE_ROWS, 7);
  const logp = await cf.logProbRows(run.flow, cf.tree.ref(run.params), probe);
  const samples = await cf.sampleRows(run.flow, cf.tree.ref(run.params), 256, {
    seed: 3,
    temperature: 0.9,
  });
  // Inverse round trip: x -> z -> x on this device.
  const x = cf.numpy.array(probe).reshape([PROBE_ROWS, 2]);
  const z = run.flow.encode(cf.tree.ref(run.params), x.ref);
  const back = run.flow.decode(cf.tree.ref(run.params), z);
  const [a, b] = [await back.data(), await x.data()];
  let roundTripError = 0;
  for (let i = 0; i < a.length; i++)
    roundTripError = Math.max(roundTripError, Math.abs(Number(a[i]) - Number(b[i])));
  // A short fit continuing from the decoded parameters, then its run files round trip.
  const fitted = await shortFit(5, run.params, 1e-3);
  const again = cf.decodeRun(fitted.files);
  cf.tree.dispose(again.bestParams);
  const logpFitted = await cf.logProbRows(again.flow, again.params, probe);
  return {
    logp: [...logp],
    samples: [...samples],
    roundTripError,
    fitLosses: fitted.losses,
    fittedLogpFinite: [...logpFitted].every(Number.isFinite),
  };
}

scope.onmessage = async (e: MessageEvent<Message>) => {
  try {
    const m = e.data;
    const engine = await cf.startEngine({ device: m.task === "train" ? "wasm" : m.device });
    if (m.task === "train") {
      const { losses, files } = await shortFit(m.steps);
      const logp = await (async () => {
        const run = cf.decodeRun({ config: files.config, weights: files.weights.slice() });
        cf.tree.dispose(run.bestParams);
        return [...(await cf.logProbRows(run.flow, run.params, cf.sampleToy2d("moons", 16, 9)))];
      })();
      scope.postMessage({
        ok: true,
        device: engine.device,
        losses,
        logp,
        files,
        fetched: fetchedUrls(),
      });
    } else {
      scope.postMessage({
        ok: true,
        device: engine.device,
        ...(await check(m.files)),
        fetched: fetchedUrls(),
      });
    }
  } catch (err) {
    scope.postMessage({ ok: false, error: String((err as Error)?.stack ?? err) });
  }
};
