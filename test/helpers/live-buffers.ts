/**
 * Counts live device buffers on the wasm backend, to prove that a function
 * frees everything it allocates. jax-js keeps its buffer table private, so this
 * wraps the backend's reference-counting methods (test-only; the engine
 * version is pinned).
 */
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import assert from "node:assert/strict";

interface CountingBackend {
  malloc(size: number, data?: Uint8Array): number;
  incRef(slot: number): void;
  decRef(slot: number): void;
}

const refs = new Map<number, number>();

export async function installBufferCounter(): Promise<void> {
  const require = createRequire(import.meta.url);
  const distDir = dirname(require.resolve("@jax-js/jax"));
  const chunk = readdirSync(distDir).find((f) => /^backend-.*\.js$/.test(f));
  if (!chunk) throw new Error(`no backend chunk in ${distDir}`);
  const mod = (await import(pathToFileURL(join(distDir, chunk)).href)) as Record<string, unknown>;
  const getBackend = Object.values(mod).find(
    (v) => typeof v === "function" && v.name === "getBackend",
  ) as ((d: string) => CountingBackend) | undefined;
  if (!getBackend) throw new Error("getBackend not found in the jax-js backend chunk");
  const backend = getBackend("wasm");
  const { malloc, incRef, decRef } = backend;
  backend.malloc = function (size, data) {
    const slot = malloc.call(this, size, data);
    refs.set(slot, 1);
    return slot;
  };
  backend.incRef = function (slot) {
    incRef.call(this, slot);
    if (refs.has(slot)) refs.set(slot, refs.get(slot)! + 1);
  };
  backend.decRef = function (slot) {
    decRef.call(this, slot);
    const n = refs.get(slot);
    if (n === undefined) return;
    if (n <= 1) refs.delete(slot);
    else refs.set(slot, n - 1);
  };
}

/** Buffers allocated since the counter was installed and not yet freed. */
export function liveBuffers(): number {
  return refs.size;
}

/**
 * Runs `step` once to warm up (constants cached by the first trace may stay alive), then twice
 * more: the number of live buffers must not change across those two.
 */
export async function assertSteadyBuffers(step: () => Promise<void>, what: string): Promise<void> {
  await step();
  const before = liveBuffers();
  await step();
  await step();
  assert.equal(liveBuffers(), before, `live buffers changed across ${what}`);
}
