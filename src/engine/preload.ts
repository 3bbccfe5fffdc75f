/**
 * Side-effect module, evaluated before @jax-js/jax: jax-js sizes its wasm kernel
 * pool when it is first imported, so the Node `Worker` shim and the pool size
 * must be in place by then. `src/index.ts` imports this first.
 */
import { VirtualWorker } from "./node-worker-shim.js";
import { isNode, nodeModule } from "../core/node-builtins.js";

const g = globalThis as Record<string, unknown>;

// jax-js tests `data instanceof Float16Array`; Node 20 has no such global.
if (typeof g.Float16Array === "undefined") {
  g.Float16Array = class Float16ArrayUnavailable {};
}

/** Number of virtual workers jax-js will create (an upper bound on threads). */
export const poolSize = isNode
  ? Math.max(
      nodeModule<typeof import("node:os")>("node:os").availableParallelism(),
      Number(process.env.CLAYFLOW_THREADS) || 1,
    )
  : 1;

// Browsers have Workers of their own; only Node needs the shim.
if (isNode && g.Worker === undefined && typeof SharedArrayBuffer !== "undefined") {
  g.Worker = VirtualWorker;
  const nav = (g.navigator ?? {}) as Record<string, unknown>;
  Object.defineProperty(nav, "hardwareConcurrency", { value: poolSize, configurable: true });
  if (!g.navigator) g.navigator = nav;
}

export const shimInstalled = g.Worker === VirtualWorker;
