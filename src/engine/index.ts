/**
 * Engine start-up: one call that chooses the jax-js device and, in Node, how
 * many threads run the wasm kernels.
 *
 *   await startEngine();                  // threads from CLAYFLOW_THREADS, else the core count
 *   await startEngine({ threads: 1 });    // main thread only: lowest latency for tiny models
 *   await startEngine({ device: "webgpu" });  // or "auto": WebGPU where the platform has it
 *
 * It may be called again to change the thread count (e.g. per workload).
 */
import "./preload.js";
import { init, defaultDevice, type Device } from "@jax-js/jax";
import { poolSize, shimInstalled } from "./preload.js";
import { setShimThreads } from "./node-worker-shim.js";
import { isNode } from "../core/node-builtins.js";

/** Options of `startEngine`: the device and, in Node, the kernel threads. */
export interface EngineOptions {
  /**
   * Device to run on. Default "wasm": it evaluates float64 arrays, and it trained the
   * playground's 2-D model faster than WebGPU on a software (CPU) adapter (docs/BROWSER.md);
   * a real GPU is unmeasured. "auto" takes WebGPU where the platform has it, else wasm.
   */
  device?: Device | "auto";
  /**
   * Threads for wasm kernels in Node. Default: the CLAYFLOW_THREADS environment
   * variable, else the number of cores. 1 runs every kernel on the main thread.
   */
  threads?: number;
}

/** What `startEngine` chose: the device and the number of kernel threads. */
export interface EngineInfo {
  device: Device;
  threads: number;
}

let started: EngineInfo | null = null;

function threadsFromEnv(): number | undefined {
  const raw = isNode ? process.env.CLAYFLOW_THREADS : undefined;
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`CLAYFLOW_THREADS must be a positive integer, got "${raw}"`);
  }
  return n;
}

/** Start (or reconfigure) the engine. Safe to call more than once. */
export async function startEngine(options: EngineOptions = {}): Promise<EngineInfo> {
  const requested = options.threads ?? threadsFromEnv() ?? poolSize;
  if (!Number.isInteger(requested) || requested < 1) {
    throw new Error(`threads must be a positive integer, got ${requested}`);
  }
  if (requested > poolSize) {
    throw new Error(
      `threads=${requested} exceeds the kernel pool of ${poolSize}; ` +
        `set CLAYFLOW_THREADS=${requested} in the environment before the process starts`,
    );
  }
  const threads = shimInstalled ? requested : 1;
  setShimThreads(threads);

  const want = options.device ?? "wasm";
  const hasWebGPU = !!(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu;
  const candidates: Device[] =
    want === "auto" ? (hasWebGPU ? ["wasm", "webgpu"] : ["wasm"]) : [want];
  const available = await init(...candidates);
  let device: Device;
  if (want === "auto") device = available.includes("webgpu") ? "webgpu" : "wasm";
  else if (available.includes(want)) device = want;
  else
    throw new Error(
      `device "${want}" is not available here (available: ${available.join(", ") || "none"})`,
    );
  defaultDevice(device);
  started = { device, threads: device === "wasm" ? threads : 1 };
  return started;
}

/** The running engine configuration, or null before `startEngine`. */
export function engineInfo(): EngineInfo | null {
  return started;
}
