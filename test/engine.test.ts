/**
 * The engine's threads: a child process computes the same training steps with
 * 1 and 2 threads (small kernels on the main thread, large ones on workers)
 * and must get identical numbers, and exit on its own.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const script = join(dirname(fileURLToPath(import.meta.url)), "helpers", "engine-child.js");

function runChild(threads: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script], { env: { ...process.env, CLAYFLOW_THREADS: String(threads) }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
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
