/**
 * A Web `Worker` for Node (which has none), so that jax-js runs its wasm kernels
 * on several threads.
 *
 * jax-js builds its kernel pool when the library is first imported: it reads
 * `navigator.hardwareConcurrency`, and later creates that many workers from a
 * `blob:` URL. Each message it posts to a worker gets exactly one reply. This
 * shim makes those workers *virtual*: each message is routed, at post time, to
 * one of `threads` real `node:worker_threads` workers, or, with one thread, to
 * an executor on the main thread (no thread hop: the fastest for tiny kernels).
 * So the thread count can be chosen after import, and changed between runs.
 *
 * Real workers are referenced only while a reply is outstanding, so a process
 * that used the engine exits normally.
 */
import type { Worker as NodeWorkerType } from "node:worker_threads";
import { nodeModule } from "../core/node-builtins.js";
import { KernelRouting } from "./kernel-routing.js";

type Reply = (data: unknown) => void;

interface Executor {
  post(message: unknown, reply: Reply): void;
}

const BOOTSTRAP = `
const { parentPort } = require("node:worker_threads");
globalThis.self = globalThis;
globalThis.postMessage = (m) => parentPort.postMessage(m);
parentPort.once("message", (source) => {
  (0, eval)(source);
  parentPort.on("message", (data) => globalThis.self.onmessage({ data }));
});
`;

/** A real thread. Replies come back in the order the messages went out. */
class ThreadExecutor implements Executor {
  readonly #worker: NodeWorkerType;
  readonly #waiting: Reply[] = [];

  constructor(source: string) {
    const { Worker } = nodeModule<typeof import("node:worker_threads")>("node:worker_threads");
    this.#worker = new Worker(BOOTSTRAP, { eval: true });
    this.#worker.unref();
    this.#worker.postMessage(source);
    this.#worker.on("message", (data) => {
      const reply = this.#waiting.shift()!;
      if (this.#waiting.length === 0) this.#worker.unref();
      reply(data);
    });
    this.#worker.on("error", (err) => {
      const pending = this.#waiting.splice(0);
      for (const reply of pending) reply({ type: "done", ok: false, error: String(err) });
    });
  }

  post(message: unknown, reply: Reply): void {
    if (this.#waiting.length === 0) this.#worker.ref();
    this.#waiting.push(reply);
    this.#worker.postMessage(message);
  }
}

/** The worker source evaluated on the main thread; runs each message on a microtask. */
class MainThreadExecutor implements Executor {
  readonly #self: { onmessage?: (e: { data: unknown }) => void } = {};
  #reply: Reply | null = null;

  constructor(source: string) {
    // The source assigns self.onmessage and calls postMessage(reply) once per message.
    new Function("self", "postMessage", source)(this.#self, (data: unknown) => this.#reply!(data));
  }

  post(message: unknown, reply: Reply): void {
    queueMicrotask(() => {
      this.#reply = reply;
      const start = performance.now();
      this.#self.onmessage!({ data: message });
      if (threads > 1) routing.noteMainThreadChunk(message, performance.now() - start);
    });
  }
}

let threads = 1;
let source: string | null = null;
/** The pool's "init" message (it carries the shared memory); replayed to executors created later. */
let initMessage: unknown = null;
const pool: Executor[] = [];
let mainThread: MainThreadExecutor | null = null;
let nextVirtualId = 0;

/** Route kernels to `n` real threads (n > 1) or the main thread (n = 1). */
export function setShimThreads(n: number): void {
  threads = n;
}

/** Which chunks stay on the main thread (used while threads > 1). */
const routing = new KernelRouting();

/** A new executor must see the shared memory before any kernel: replay the pool's init. */
function started<E extends Executor>(executor: E, message: unknown): E {
  const m = message as { type?: string };
  if (initMessage !== null && m.type !== "init") executor.post(initMessage, () => {});
  return executor;
}

function executorFor(virtualId: number, message: unknown): Executor {
  if ((message as { type?: string }).type === "init") initMessage = message;
  if (threads <= 1 || routing.runsOnMainThread(message)) {
    return (mainThread ??= started(new MainThreadExecutor(source!), message));
  }
  const slot = virtualId % threads;
  while (pool.length <= slot) pool.push(started(new ThreadExecutor(source!), message));
  return pool[slot];
}

export class VirtualWorker {
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onerror: ((event: { message: string }) => void) | null = null;
  readonly #id = nextVirtualId++;
  #ready: Promise<void> | null = null;

  constructor(url: string | URL) {
    if (source === null) {
      const blob = nodeModule<typeof import("node:buffer")>("node:buffer").resolveObjectURL(
        String(url),
      );
      if (!blob) throw new Error(`worker source not found at ${String(url)}`);
      this.#ready = blob.text().then((text) => {
        source ??= text;
      });
    }
  }

  postMessage(message: unknown): void {
    const send = () =>
      executorFor(this.#id, message).post(message, (data) => {
        // jax-js drops a failed kernel's error silently (its outputs stay stale): say so.
        const reply = data as { ok?: boolean; error?: string };
        if (reply.ok === false)
          process.stderr.write(`clayflow engine: a kernel failed: ${reply.error}\n`);
        this.onmessage?.({ data });
      });
    if (this.#ready) {
      const ready = this.#ready;
      this.#ready = null;
      void ready.then(send);
    } else send();
  }

  terminate(): void {}
}
