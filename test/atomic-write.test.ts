import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../src/io/atomic-write.js";

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "clayflow-atomic-"));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  "writeFileAtomic: creates and replaces, leaving no temp files",
  withDir(async (dir) => {
    const p = join(dir, "model.safetensors");
    await writeFileAtomic(p, "first");
    assert.equal(readFileSync(p, "utf8"), "first");
    await writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...readFileSync(p)], [1, 2, 3]);
    assert.deepEqual(readdirSync(dir), ["model.safetensors"]);
  }),
);

test(
  "writeFileAtomic: a failure before the rename leaves the old file intact and no partial file",
  withDir(async (dir) => {
    const p = join(dir, "ckpt.json");
    writeFileSync(p, "old contents");
    let seenTmp = "";
    await assert.rejects(
      writeFileAtomic(p, "new contents that never land", {
        beforeRename: (tmp) => {
          seenTmp = tmp;
          // The temp file is complete, in the same directory, and the target is still the old file.
          assert.equal(dirname(tmp), dir);
          assert.equal(readFileSync(tmp, "utf8"), "new contents that never land");
          assert.equal(readFileSync(p, "utf8"), "old contents");
          throw new Error("simulated crash");
        },
      }),
      /simulated crash/,
    );
    assert.ok(seenTmp !== "");
    assert.equal(readFileSync(p, "utf8"), "old contents");
    assert.deepEqual(readdirSync(dir), ["ckpt.json"]);
  }),
);

test(
  "writeFileAtomic: a failing rename (target is a non-empty directory) cleans up",
  withDir(async (dir) => {
    const p = join(dir, "taken");
    mkdirSync(p);
    writeFileSync(join(p, "inside"), "x");
    await assert.rejects(writeFileAtomic(p, "data"), (e: NodeJS.ErrnoException) =>
      ["EISDIR", "ENOTEMPTY", "EEXIST", "EPERM"].includes(e.code ?? ""),
    );
    assert.deepEqual(readdirSync(dir), ["taken"]);
    await assert.rejects(writeFileAtomic(join(dir, "no", "such", "dir"), "x"), { code: "ENOENT" });
  }),
);
