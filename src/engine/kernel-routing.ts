/**
 * Where the worker shim runs a kernel chunk: on the main thread (no hop) or on a
 * real thread. jax-js splits a kernel into chunks by output elements; a thread
 * hop costs more than a small chunk's work, so small chunks stay on the main
 * thread. The pool runs one dispatch at a time, so mixing executors keeps the
 * kernel order.
 */

/** Chunks with fewer output elements than this are small. */
export const SMALL_CHUNK_ELEMENTS = 32768;

/**
 * Output count is a poor measure of work for long reductions: the weight gradient of a
 * 64 -> 64 channel convolution has 4,096 outputs, each a sum over 6,272 pixels, and its
 * two chunks took milliseconds each, one after the other, on the main thread. A split
 * kernel (a chunk beginning past 0) whose chunks ran longer than this on the main thread
 * goes to the threads from then on; a hop costs well under this.
 */
export const HEAVY_CHUNK_MS = 0.5;

/** Slow chunks in a row before a kernel counts as heavy: one could be a GC pause. */
export const HEAVY_AFTER = 2;

export type KernelMessage = { type?: string; begin?: number; end?: number; kernelHash?: unknown };

export class KernelRouting {
  /** Kernel hash -> slow main-thread chunks in a row (HEAVY_AFTER or more: heavy, for good). */
  readonly #slow = new Map<unknown, number>();

  /**
   * Record how long a chunk ran on the main thread. Only chunks beginning past 0 count: they
   * mark a kernel split into several chunks, which threads can run side by side; a kernel of
   * one chunk would only gain a hop.
   */
  noteMainThreadChunk(message: unknown, ms: number): void {
    const m = message as KernelMessage;
    if (m.type !== "kernel" || !(m.begin! > 0)) return;
    this.#slow.set(m.kernelHash, ms > HEAVY_CHUNK_MS ? (this.#slow.get(m.kernelHash) ?? 0) + 1 : 0);
  }

  /** A kernel chunk cheap enough for the main thread. */
  runsOnMainThread(message: unknown): boolean {
    const m = message as KernelMessage;
    return (
      m.type === "kernel" &&
      m.end! - m.begin! < SMALL_CHUNK_ELEMENTS &&
      (this.#slow.get(m.kernelHash) ?? 0) < HEAVY_AFTER
    );
  }
}
