/**
 * `clayflow train --model flow-matching`: a run trains, saves, resumes, samples and scores like
 * the discrete flows' runs, and options that do not belong to it (or to the others) are refused.
 */
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clayflow as runClayflow } from "./helpers/cli.js";

const clayflow = (...args: string[]) => runClayflow(args, 240_000);

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "clayflow-fm-"));
});

describe("clayflow train --model flow-matching", () => {
  it("trains, resumes with its settings, samples and scores", async () => {
    const run = join(tmp, "run");
    // rk4 with 4 steps keeps the likelihoods of 20000 test rows to seconds.
    const common = ["--checkpoint-every", "250", "--no-plots"];
    const t = await clayflow(
      "train",
      "--model",
      "flow-matching",
      "--data",
      "8gaussians",
      "--out",
      run,
      "--steps",
      "500",
      "--lr",
      "3e-3",
      "--hidden",
      "32,32",
      "--samples",
      "2000",
      "--solver",
      "rk4",
      "--ode-steps",
      "4",
      "--coupling",
      "ot",
      "--eval-every",
      "250",
      ...common,
    );
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /trained flow-matching for 500 steps/);
    assert.match(t.stdout, /test NLL \d+\.\d+ nats per row on 20000 rows \(best possible 2\.832/);
    assert.match(t.stderr, /flow-matching regression loss/);
    const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8"));
    assert.equal(config.model.model, "flow-matching");
    assert.equal(config.model.solver, "rk4");
    assert.equal(config.model.coupling, "ot");

    const changed = await clayflow("train", "--resume", run, "--steps", "600", "--solver", "euler");
    assert.equal(changed.code, 2);
    assert.match(changed.stderr, /--solver cannot change when resuming/);
    const resumed = await clayflow("train", "--resume", run, "--steps", "600", "--no-plots");
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /trained flow-matching for 600 steps/);

    const samples = join(tmp, "samples.csv");
    const s = await clayflow("sample", "--run", run, "-n", "7", "--out", samples);
    assert.equal(s.code, 0, s.stderr);
    const rows = readFileSync(samples, "utf8").trim().split("\n");
    assert.equal(rows[0], "x,y");
    assert.equal(rows.length, 8);
    assert.ok(rows.slice(1).every((r) => r.split(",").map(Number).every(Number.isFinite)));

    const points = join(tmp, "points.csv");
    writeFileSync(points, "x,y\n2.83,0\n0,0\n");
    const scored = join(tmp, "scored.csv");
    const sc = await clayflow("score", "--run", run, "--data", points, "--out", scored);
    assert.equal(sc.code, 0, sc.stderr);
    const [, onMode, between] = readFileSync(scored, "utf8").trim().split("\n");
    // (2.83, 0) is the centre of one of the 8 Gaussians; (0, 0) is the empty middle of the ring.
    assert.ok(Number(onMode.split(",")[2]) > Number(between.split(",")[2]), "mode above the hole");
  });

  it("refuses options of the other kind of flow, and image data, with what to do", async () => {
    const out = join(tmp, "never");
    const cases: [string[], RegExp][] = [
      [["--model", "realnvp", "--solver", "rk4"], /--solver belongs to --model flow-matching/],
      [["--model", "flow-matching", "--layers", "4"], /flow matching has one vector field/],
      [
        ["--model", "flow-matching", "--solver", "rk45"],
        /--solver must be one of euler, midpoint, rk4, dopri5/,
      ],
      [["--model", "flow-matching", "--path", "cosine"], /--path must be one of ot, vp/],
      [["--model", "flow-matching", "--ode-steps", "0"], /--ode-steps must be from 1/],
    ];
    for (const [args, message] of cases) {
      const r = await clayflow("train", "--data", "moons", "--out", out, ...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const img = await clayflow(
      "train",
      "--model",
      "flow-matching",
      "--data",
      "fashion-mnist",
      "--out",
      out,
    );
    assert.equal(img.code, 2);
    assert.match(img.stderr, /flow-matching models vectors .* for images use glow or realnvp/);
    assert.ok(!existsSync(out), "no run directory is left behind");
  });
});
