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
import { locateImageDataset } from "../src/data/image-datasets.js";

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
    const imageCases: [string[], RegExp][] = [
      [["--coupling", "ot"], /--coupling ot \(minibatch optimal transport\) is for vector data/],
      [["--context", "downsample4"], /--context belongs to glow and realnvp/],
      [["--dequantization", "variational"], /--dequantization belongs to glow and realnvp/],
    ];
    for (const [args, message] of imageCases) {
      const r = await clayflow(
        "train",
        "--model",
        "flow-matching",
        "--data",
        "fashion-mnist",
        "--out",
        out,
        ...args,
      );
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.ok(!existsSync(out), "no run directory is left behind");
  });
});

const fashion = locateImageDataset("fashion-mnist", "test").found !== null;

describe("clayflow train --model flow-matching on images", {
  skip: fashion ? false : "dataset-fashion-mnist is not installed",
}, () => {
  it("trains a class-conditional U-Net field, reports bits/dim, and its run samples and evaluates", async () => {
    const run = join(tmp, "images");
    // A tiny field and few images: the run's parts, not its quality (docs/FLOW_MATCHING.md).
    const t = await clayflow(
      "train",
      "--model",
      "flow-matching",
      "--data",
      "fashion-mnist",
      "--conditional",
      "--out",
      run,
      "--steps",
      "6",
      "--batch-size",
      "8",
      "--hidden",
      "4",
      "--ode-steps",
      "2",
      "--eval-every",
      "6",
      "--checkpoint-every",
      "6",
      "--test-images",
      "16",
      "--no-judge",
    );
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /trained flow-matching on fashion-mnist for 6 steps/);
    assert.match(t.stdout, /test \d+\.\d+ ± \d+\.\d+ bits\/dim on 16 images/);
    assert.match(t.stderr, /flow-matching regression loss/);
    const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8")).model;
    assert.equal(config.model, "flow-matching");
    assert.deepEqual(config.shape, [28, 28, 1]);
    assert.equal(config.classes, 10);
    assert.equal(config.divergence, "hutchinson");
    assert.ok(existsSync(join(run, "samples.png")));

    // Resuming keeps the run's ODE settings and honours the evaluation options given again.
    const changed = await clayflow("train", "--resume", run, "--steps", "8", "--ode-steps", "3");
    assert.equal(changed.code, 2);
    assert.match(changed.stderr, /--ode-steps cannot change when resuming/);
    const resumed = await clayflow(
      "train",
      "--resume",
      run,
      "--steps",
      "8",
      "--test-images",
      "16",
      "--no-judge",
    );
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /for 8 steps/);
    assert.match(resumed.stdout, /bits\/dim on 16 images/);
    assert.doesNotMatch(resumed.stdout, /samples judged/);

    const e = await clayflow("eval", "--run", run, "--images", "16", "--no-judge");
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stdout, /bits\/dim on 16 images/);
    const grid = join(tmp, "fm-grid.png");
    const s = await clayflow("sample", "--run", run, "-n", "10", "--out", grid);
    assert.equal(s.code, 0, s.stderr);
    assert.ok(existsSync(grid));
    // encode and decode by the ODE: the latents have the images' shape, not a flat vector.
    const arcs = join(tmp, "fm-arcs.png");
    const i = await clayflow(
      "interpolate",
      "--run",
      run,
      "--out",
      arcs,
      "--pairs",
      "1",
      "--steps",
      "3",
    );
    assert.equal(i.code, 0, i.stderr);
    assert.ok(existsSync(arcs));
  });
});
