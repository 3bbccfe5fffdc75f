/** One device's training speed, measured in a Web Worker (one engine per worker). */
import * as cf from "../../src/index.js";
import { trainingSpeed } from "./speed-shared.js";

const scope = self as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(m: unknown): void;
};
scope.onmessage = async (e: MessageEvent<{ device: "wasm" | "webgpu"; steps: number }>) => {
  try {
    const engine = await cf.startEngine({ device: e.data.device });
    scope.postMessage({
      ok: true,
      device: engine.device,
      stepsPerSecond: await trainingSpeed(e.data.steps),
    });
  } catch (err) {
    scope.postMessage({ ok: false, error: String((err as Error)?.message ?? err) });
  }
};
