/**
 * `clayflow export`: a weights-only run is a third of a checkpoint, scores exactly as the run it
 * came from (its best parameters), and refuses to resume with a message that says why.
 */
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tree } from "@jax-js/jax";
import { decodeSafetensors, encodeSafetensors } from "../src/io/safetensors.js";
import { decodeRun, loadRun } from "../src/io/checkpoint.js";
import { clayflow as runClayflow } from "./helpers/cli.js";

const clayflow = (...args: string[]) => runClayflow(args);

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "clayflow-export-"));
});

describe("clayflow export", () => {
  it("writes the best parameters alone: a third of the bytes, the same scores, no resume", async () => {
    const run = join(tmp, "run");
    const t = await clayflow(
      "train",
      "--data",
      "moons",
      "--out",
      run,
      "--steps",
      "120",
      "--layers",
      "2",
      "--hidden",
      "16",
      "--samples",
      "2000",
      "--eval-every",
      "40",
      "--no-plots",
    );
    assert.equal(t.code, 0, t.stderr);
    const out = join(tmp, "exported");
    const e = await clayflow("export", "--run", run, "--out", out);
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stdout, /the best parameters \(step \d+/);

    const full = statSync(join(run, "weights.safetensors")).size;
    const slim = statSync(join(out, "weights.safetensors")).size;
    assert.ok(slim < full / 3 + 4096, `${slim} bytes exported of ${full}`);
    const names = [
      ...decodeSafetensors(readFileSync(join(out, "weights.safetensors"))).tensors.keys(),
    ];
    assert.ok(
      names.every((n) => n.startsWith("params/")),
      names.join(", "),
    );

    // The exported params are the run's best ones, leaf for leaf.
    const a = await loadRun(run);
    const b = await loadRun(out);
    assert.equal(b.weightsOnly, true);
    assert.equal(b.bestParams, null);
    assert.deepEqual(Array.from(b.state.params), Array.from(a.state.best!.params));
    for (const r of [a, b]) {
      tree.dispose(r.params);
      if (r.bestParams) tree.dispose(r.bestParams);
    }

    // Scores agree with the original run's (which scores with its best parameters too).
    writeFileSync(join(tmp, "rows.csv"), "x,y\n0.1,0.2\n1.5,-0.3\n-0.7,0.9\n");
    const s1 = await clayflow(
      "score",
      "--run",
      run,
      "--data",
      join(tmp, "rows.csv"),
      "--out",
      join(tmp, "s1.csv"),
    );
    const s2 = await clayflow(
      "score",
      "--run",
      out,
      "--data",
      join(tmp, "rows.csv"),
      "--out",
      join(tmp, "s2.csv"),
    );
    assert.equal(s1.code + s2.code, 0, s1.stderr + s2.stderr);
    assert.equal(
      readFileSync(join(tmp, "s2.csv"), "utf8"),
      readFileSync(join(tmp, "s1.csv"), "utf8"),
    );

    const r = await clayflow("train", "--resume", out, "--steps", "200");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /holds weights only \(written by clayflow export\)/);
    const again = await clayflow("export", "--run", run, "--out", out);
    assert.equal(again.code, 2);
    const bad = await clayflow(
      "export",
      "--run",
      run,
      "--out",
      join(tmp, "x"),
      "--params",
      "worst",
    );
    assert.match(bad.stderr, /--params must be best or last/);
  });

  it("a weights-only file missing a tensor, or with a bad flag, is refused by name", async () => {
    const out = join(tmp, "exported");
    const config = readFileSync(join(out, "config.json"), "utf8");
    const { tensors, metadata } = decodeSafetensors(readFileSync(join(out, "weights.safetensors")));
    const edited = (m: Record<string, string>, drop?: string) => {
      const t = new Map(tensors);
      if (drop) t.delete(drop);
      const weights = encodeSafetensors(t, m);
      // Keep the checksum consistent so the structural check is what speaks.
      const c = JSON.parse(config);
      c.weightsSha256 = null;
      delete c.weightsSha256;
      return { config: JSON.stringify(c), weights };
    };
    const first = [...tensors.keys()][0];
    assert.throws(
      () => decodeRun(edited(metadata, first)),
      new RegExp(`${first.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is missing`),
    );
    const state = JSON.parse(metadata.training_state);
    assert.throws(
      () =>
        decodeRun(
          edited({ ...metadata, training_state: JSON.stringify({ ...state, weightsOnly: "yes" }) }),
        ),
      /weightsOnly must be true or absent/,
    );
    // Without the flag, the same file is a checkpoint missing its optimizer state.
    const { weightsOnly: _, ...plain } = state;
    assert.throws(
      () => decodeRun(edited({ ...metadata, training_state: JSON.stringify(plain) })),
      /optimizer\/m is missing/,
    );
  });
});
