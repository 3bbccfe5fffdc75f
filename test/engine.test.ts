/**
 * The engine's threads: a child process computes the same training steps with
 * 1 and 2 threads (small kernels on the main thread, large ones on workers)
 * and must get identical numbers, and exit on its own; and the policy that picks
 * the executor of each kernel chunk.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import {
  HEAVY_AFTER,
  HEAVY_CHUNK_MS,
  KernelRouting,
  SMALL_CHUNK_ELEMENTS,
} from "../src/engine/kernel-routing.js";

const script = join(dirname(fileURLToPath(import.meta.url)), "helpers", "engine-child.js");

function runChild(
  threads: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [script],
      { env: { ...process.env, CLAYFLOW_THREADS: String(threads) }, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
      },
    );
  });
}

describe("engine threads", () => {
  it("1 and 2 threads give identical results, and the process exits by itself", async () => {
    const one = await runChild(1);
    const two = await runChild(2);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(two.code, 0, two.stderr);
    assert.equal(two.stderr, "", "no kernel may fail");
    const a = JSON.parse(one.stdout);
    const b = JSON.parse(two.stdout);
    assert.equal(a.threads, 1);
    assert.equal(b.threads, 2);
    assert.ok(a.losses.every(Number.isFinite) && a.losses.length > 0);
    assert.deepEqual(b.losses, a.losses);
    assert.deepEqual(b.big, a.big);
  });
});

describe("kernel routing (which chunks stay on the main thread)", () => {
  const chunk = (hash: string, begin: number, elements: number) => ({
    type: "kernel",
    kernelHash: hash,
    begin,
    end: begin + elements,
  });

  it("small chunks stay on the main thread, large ones and routines go to threads", () => {
    const r = new KernelRouting();
    assert.equal(r.runsOnMainThread(chunk("a", 0, SMALL_CHUNK_ELEMENTS - 1)), true);
    assert.equal(r.runsOnMainThread(chunk("a", 0, SMALL_CHUNK_ELEMENTS)), false);
    assert.equal(r.runsOnMainThread({ type: "routine" }), false);
  });

  it("a split kernel goes to threads after slow chunks in a row, not after one (a GC pause)", () => {
    const r = new KernelRouting();
    const later = chunk("w", 2048, 2048);
    const slow = HEAVY_CHUNK_MS * 4;
    r.noteMainThreadChunk(later, slow);
    assert.equal(r.runsOnMainThread(later), true, "one slow chunk is not enough");
    r.noteMainThreadChunk(later, HEAVY_CHUNK_MS / 10);
    for (let i = 0; i < HEAVY_AFTER - 1; i++) r.noteMainThreadChunk(later, slow);
    assert.equal(r.runsOnMainThread(later), true, "a fast chunk resets the tally");
    r.noteMainThreadChunk(later, slow);
    assert.equal(
      r.runsOnMainThread(later),
      false,
      `${HEAVY_AFTER} slow chunks in a row make it heavy`,
    );
    assert.equal(
      r.runsOnMainThread(chunk("w", 0, 2048)),
      false,
      "every chunk of a heavy kernel goes to threads",
    );
    assert.equal(r.runsOnMainThread(chunk("other", 0, 2048)), true, "other kernels are unaffected");
  });

  it("only split kernels are judged by time (one chunk alone gains nothing from a thread)", () => {
    const r = new KernelRouting();
    const first = chunk("f", 0, 2048);
    for (let i = 0; i < HEAVY_AFTER + 1; i++) r.noteMainThreadChunk(first, HEAVY_CHUNK_MS * 4);
    assert.equal(r.runsOnMainThread(first), true);
  });
});
