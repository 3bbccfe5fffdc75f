/**
 * The `clayflow` command end to end, as a user runs it: train, resume after a
 * kill, sample, score, and clear one-sentence errors that damage nothing.
 */
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, existsSync, readdirSync, cpSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { decodeSafetensors, encodeSafetensors } from "../src/io/safetensors.js";
import { CLI, CLI_ENV, clayflow as runClayflow } from "./helpers/cli.js";

const clayflow = (...args: string[]) => runClayflow(args);

const SMALL = [
  "--layers",
  "2",
  "--hidden",
  "16",
  "--samples",
  "2000",
  "--eval-every",
  "50",
  "--no-plots",
];

function paramsOf(dir: string): Float32Array {
  const { tensors } = decodeSafetensors(readFileSync(join(dir, "weights.safetensors")));
  const parts = [...tensors]
    .filter(([name]) => name.startsWith("params/"))
    .sort(([a], [b]) => a.localeCompare(b));
  return Float32Array.from(parts.flatMap(([, t]) => Array.from(t.data as Float32Array)));
}

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "clayflow-cli-"));
});

describe("clayflow train / sample / score", () => {
  it("trains on a toy density, writes a run, samples CSV and PNG, and scores rows", async () => {
    const out = join(tmp, "moons");
    const r = await clayflow(
      "train",
      "--data",
      "moons",
      "--out",
      out,
      "--steps",
      "150",
      ...SMALL.filter((a) => a !== "--no-plots"),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /test NLL \d+\.\d+ nats/);
    for (const f of [
      "config.json",
      "weights.safetensors",
      "report.json",
      "loss.png",
      "density.png",
      "samples.png",
    ]) {
      assert.ok(existsSync(join(out, f)), `${f} missing`);
    }
    const s = await clayflow(
      "sample",
      "--run",
      out,
      "-n",
      "50",
      "--out",
      join(tmp, "s.csv"),
      "--temperature",
      "0.7",
    );
    assert.equal(s.code, 0, s.stderr);
    const lines = readFileSync(join(tmp, "s.csv"), "utf8").trim().split("\n");
    assert.equal(lines[0], "x,y");
    assert.equal(lines.length, 51);
    const p = await clayflow(
      "sample",
      "--run",
      out,
      "-n",
      "500",
      "--out",
      join(tmp, "s.png"),
      "--temperature",
      "0.5,1",
    );
    assert.equal(p.code, 0, p.stderr);
    assert.ok(readFileSync(join(tmp, "s.png")).subarray(1, 4).toString() === "PNG");
    const sc = await clayflow(
      "score",
      "--run",
      out,
      "--data",
      join(tmp, "s.csv"),
      "--out",
      join(tmp, "scores.csv"),
    );
    assert.equal(sc.code, 0, sc.stderr);
    const scored = readFileSync(join(tmp, "scores.csv"), "utf8").trim().split("\n");
    assert.equal(scored[0], "x,y,log_likelihood");
    assert.ok(scored.slice(1).every((l) => Number.isFinite(Number(l.split(",")[2]))));
    const d = await clayflow("doctor", "--run", out, "--samples", "64", "--jacobians", "4");
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /verdict: healthy/);
  });

  it("trains, resumes, samples and scores the spline flows, which keep their spline options", async () => {
    for (const model of ["nsf", "nsf-ar"]) {
      const out = join(tmp, model);
      const r = await clayflow(
        "train",
        "--model",
        model,
        "--data",
        "8gaussians",
        "--out",
        out,
        "--steps",
        "60",
        "--bins",
        "4",
        "--tail-bound",
        "4",
        ...SMALL,
      );
      assert.equal(r.code, 0, r.stderr);
      const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
      assert.equal(config.model.model, model);
      assert.equal(config.model.bins, 4);
      assert.equal(config.model.tailBound, 4);
      const resumed = await clayflow("train", "--resume", out, "--steps", "80");
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.equal(
        JSON.parse(readFileSync(join(out, "config.json"), "utf8")).training.progress.step,
        80,
      );
      const samples = join(tmp, `${model}.csv`);
      const s = await clayflow("sample", "--run", out, "-n", "40", "--out", samples);
      assert.equal(s.code, 0, s.stderr);
      const sc = await clayflow(
        "score",
        "--run",
        out,
        "--data",
        samples,
        "--out",
        join(tmp, `${model}-scores.csv`),
      );
      assert.equal(sc.code, 0, sc.stderr);
      const scored = readFileSync(join(tmp, `${model}-scores.csv`), "utf8")
        .trim()
        .split("\n")
        .slice(1);
      assert.equal(scored.length, 40);
      assert.ok(scored.every((l) => Number.isFinite(Number(l.split(",")[2]))));
    }
    const bad = await clayflow(
      "train",
      "--model",
      "realnvp",
      "--data",
      "moons",
      "--out",
      join(tmp, "nobins"),
      "--bins",
      "8",
    );
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /--bins and --tail-bound shape the splines of --model nsf or nsf-ar; realnvp has none/,
    );
    assert.ok(!existsSync(join(tmp, "nobins")));
    const changed = await clayflow(
      "train",
      "--resume",
      join(tmp, "nsf"),
      "--steps",
      "90",
      "--bins",
      "6",
    );
    assert.equal(changed.code, 2);
    assert.match(changed.stderr, /--bins cannot change when resuming/);
  });

  it("a run killed mid-training resumes and ends where the uninterrupted run ends", async () => {
    const whole = join(tmp, "whole");
    const args = [
      "--data",
      "8gaussians",
      "--steps",
      "240",
      "--checkpoint-every",
      "40",
      "--schedule",
      "constant",
      ...SMALL,
    ];
    assert.equal((await clayflow("train", "--out", whole, ...args)).code, 0);

    const killed = join(tmp, "killed");
    const child = spawn(process.execPath, [CLI, "train", "--out", killed, ...args], {
      env: CLI_ENV,
      stdio: "ignore",
    });
    // Kill it hard once a checkpoint exists (and before it finishes).
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (existsSync(join(killed, "config.json"))) {
          child.kill("SIGKILL");
          clearInterval(poll);
        }
      }, 20);
      child.on("exit", () => {
        clearInterval(poll);
        resolve();
      });
    });
    const config = JSON.parse(readFileSync(join(killed, "config.json"), "utf8"));
    assert.ok(config.training.progress.step < 240, "the run finished before it could be killed");
    // What a kill in mid-save leaves: the temp file of the dead process's write (made here, as the
    // kill only sometimes lands mid-write). The next load removes it.
    const leftover = `.weights.safetensors.${child.pid}.00c0ffee0000.tmp`;
    writeFileSync(join(killed, leftover), "partial");
    const r = await clayflow("train", "--resume", killed);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      !readdirSync(killed).some((n) => n.endsWith(".tmp")),
      "the dead write's temp file is gone",
    );
    const a = paramsOf(whole);
    const b = paramsOf(killed);
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++)
      assert.ok(
        Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(a[i])),
        `param ${i}: ${a[i]} vs ${b[i]}`,
      );
    const again = await clayflow("train", "--resume", killed);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already finished/);
    // Training on with a lower learning rate (the late-training drop): stored for later resumes.
    const lower = await clayflow(
      "train",
      "--resume",
      killed,
      "--steps",
      "250",
      "--lr",
      "0.0002",
      "--no-plots",
    );
    assert.equal(lower.code, 0, lower.stderr);
    const after = JSON.parse(readFileSync(join(killed, "config.json"), "utf8")).training;
    assert.equal(after.progress.step, 250);
    assert.equal(after.options.optimizer.lr.lr ?? after.options.optimizer.lr, 0.0002);
    const bad = await clayflow("train", "--resume", killed, "--steps", "260", "--lr", "-1");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--lr must be positive/);
  });

  it("trains MAF on a CSV file and reports likelihoods in the data's units", async () => {
    const rows = ["a,b,c"];
    let s = 1;
    const rnd = () => (s = (s * 16807) % 2147483647) / 2147483647;
    for (let i = 0; i < 600; i++) {
      const u = rnd() * 2 - 1;
      rows.push(
        `${(100 + 10 * u).toFixed(4)},${(5 * u + rnd()).toFixed(4)},${(rnd() * 1000).toFixed(3)}`,
      );
    }
    const csv = join(tmp, "table.csv");
    writeFileSync(csv, rows.join("\n") + "\n");
    const out = join(tmp, "table");
    const r = await clayflow(
      "train",
      "--model",
      "maf",
      "--data",
      csv,
      "--out",
      out,
      "--steps",
      "100",
      ...SMALL,
    );
    assert.equal(r.code, 0, r.stderr);
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    assert.deepEqual(config.data.columns, ["a", "b", "c"]);
    assert.ok(config.preprocessing, "the standardisation is stored with the model");
    const samples = join(tmp, "table-samples.csv");
    assert.equal((await clayflow("sample", "--run", out, "-n", "200", "--out", samples)).code, 0);
    const values = readFileSync(samples, "utf8")
      .trim()
      .split("\n")
      .slice(1)
      .map((l) => Number(l.split(",")[0]));
    const mean = values.reduce((x, y) => x + y, 0) / values.length;
    assert.ok(Math.abs(mean - 100) < 5, `samples are in the data's units (mean of a = ${mean})`);
  });
});

describe("clayflow conditional tabular runs (--context-columns)", () => {
  // y1 = 3c + 0.5 e1, y2 = 1 - c + 0.2 e2 with c ~ U(-2, 2): given c the rows are Gaussian, so
  // the best possible test NLL is the conditional entropy, known exactly.
  const H =
    0.5 * Math.log(2 * Math.PI * Math.E * 0.25) + 0.5 * Math.log(2 * Math.PI * Math.E * 0.04);
  let dir: string;
  let s = 7;
  const rnd = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const normal = () => Math.sqrt(-2 * Math.log(rnd())) * Math.cos(2 * Math.PI * rnd());
  const row = () => {
    const c = 4 * rnd() - 2;
    return { c, y1: 3 * c + 0.5 * normal(), y2: 1 - c + 0.2 * normal() };
  };
  const f = (v: number) => v.toFixed(5);

  before(async () => {
    const csv = join(tmp, "given.csv");
    const lines = ["c,y1,y2"];
    for (let i = 0; i < 4000; i++) {
      const r = row();
      lines.push(`${f(r.c)},${f(r.y1)},${f(r.y2)}`);
    }
    writeFileSync(csv, lines.join("\n") + "\n");
    dir = join(tmp, "given");
    const r = await clayflow(
      "train",
      "--model",
      "maf",
      "--data",
      csv,
      "--context-columns",
      "c",
      "--out",
      dir,
      "--steps",
      "600",
      "--lr",
      "0.003",
      "--layers",
      "3",
      "--hidden",
      "32",
      "--eval-every",
      "100",
      "--no-plots",
    );
    assert.equal(r.code, 0, r.stderr);
    const nll = Number(/test NLL (-?[\d.]+) nats/.exec(r.stdout)?.[1]);
    assert.ok(
      Math.abs(nll - H) < 0.1,
      `test NLL ${nll} against the conditional entropy ${H.toFixed(4)}`,
    );
  });

  it("stores the context columns and their standardisation with the run", () => {
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    assert.equal(config.model.contextDim, 1);
    assert.deepEqual(config.data.columns, ["y1", "y2"]);
    assert.deepEqual(config.data.contextColumns, ["c"]);
    assert.equal(config.contextPreprocessing.mean.length, 1);
    assert.ok(
      Math.abs(config.contextPreprocessing.std[0] - 4 / Math.sqrt(12)) < 0.1,
      "std of U(-2, 2)",
    );
  });

  it("samples given a context: values, or one row per context of a CSV file", async () => {
    const out = join(tmp, "given-samples.csv");
    const r = await clayflow(
      "sample",
      "--run",
      dir,
      "--context",
      "1.5",
      "-n",
      "4000",
      "--out",
      out,
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = readFileSync(out, "utf8").trim().split("\n");
    assert.equal(lines[0], "c,y1,y2");
    const v = lines.slice(1).map((l) => l.split(",").map(Number));
    assert.equal(v.length, 4000);
    assert.ok(v.every((x) => x[0] === 1.5));
    const mean = (j: number) => v.reduce((a, x) => a + x[j], 0) / v.length;
    const sd = (j: number) => {
      const m = mean(j);
      return Math.sqrt(v.reduce((a, x) => a + (x[j] - m) ** 2, 0) / v.length);
    };
    // Given c = 1.5: y1 ~ N(4.5, 0.5^2), y2 ~ N(-0.5, 0.2^2).
    assert.ok(Math.abs(mean(1) - 4.5) < 0.1, `mean y1 ${mean(1)}`);
    assert.ok(Math.abs(mean(2) + 0.5) < 0.05, `mean y2 ${mean(2)}`);
    assert.ok(Math.abs(sd(1) - 0.5) < 0.1, `sd y1 ${sd(1)}`);
    assert.ok(Math.abs(sd(2) - 0.2) < 0.05, `sd y2 ${sd(2)}`);
    const contexts = join(tmp, "contexts.csv");
    writeFileSync(contexts, "c\n-1\n0\n2\n");
    const perRow = join(tmp, "per-row.csv");
    assert.equal(
      (await clayflow("sample", "--run", dir, "--context", contexts, "--out", perRow)).code,
      0,
    );
    assert.deepEqual(
      readFileSync(perRow, "utf8")
        .trim()
        .split("\n")
        .slice(1)
        .map((l) => Number(l.split(",")[0])),
      [-1, 0, 2],
    );
  });

  it("scores rows given their context columns, found by name among others", async () => {
    const file = join(tmp, "given-new.csv");
    const lines = ["tag,y2,c,y1"];
    for (let i = 0; i < 2000; i++) {
      const r = row();
      lines.push(`${i},${f(r.y2)},${f(r.c)},${f(r.y1)}`);
    }
    writeFileSync(file, lines.join("\n") + "\n");
    const out = join(tmp, "given-scores.csv");
    const r = await clayflow("score", "--run", dir, "--data", file, "--out", out);
    assert.equal(r.code, 0, r.stderr);
    const mean = Number(/mean log-likelihood (-?[\d.]+) nats/.exec(r.stdout)?.[1]);
    assert.ok(
      Math.abs(-mean - H) < 0.1,
      `mean log-likelihood ${mean} against minus the conditional entropy ${(-H).toFixed(4)}`,
    );
    // The same rows with the context of other rows score far worse: the model uses the context.
    const shuffled = join(tmp, "given-shuffled.csv");
    writeFileSync(
      shuffled,
      [
        "tag,y2,c,y1",
        ...lines.slice(1).map((l, i, all) => {
          const [tag, y2, , y1] = l.split(",");
          return `${tag},${y2},${all[(i + 1000) % all.length].split(",")[2]},${y1}`;
        }),
      ].join("\n") + "\n",
    );
    const worse = await clayflow(
      "score",
      "--run",
      dir,
      "--data",
      shuffled,
      "--out",
      join(tmp, "given-shuffled-scores.csv"),
    );
    assert.ok(
      Number(/mean log-likelihood (-?[\d.]+) nats/.exec(worse.stdout)?.[1]) < mean - 5,
      worse.stdout,
    );
  });

  it("doctor checks the run at its test rows' contexts", async () => {
    const r = await clayflow("doctor", "--run", dir, "--samples", "64", "--jacobians", "4");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /verdict: healthy/);
    assert.match(r.stdout, /ok +log-det vs exact Jacobian/);
  });

  it("resumes with its context columns, and names what is missing or wrong", async () => {
    const r = await clayflow("train", "--resume", dir, "--steps", "650");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).training.progress.step,
      650,
    );
    const noContext = join(tmp, "no-context.csv");
    writeFileSync(noContext, "y1,y2\n1,2\n");
    const fail = async (args: string[], pattern: RegExp, code = 1) => {
      const e = await clayflow(...args);
      assert.equal(e.code, code, e.stderr);
      assert.match(e.stderr, pattern);
    };
    await fail(
      ["score", "--run", dir, "--data", noContext, "--out", join(tmp, "nc.csv")],
      /lacks the column c: the model .* scores y1, y2 given c/,
    );
    await fail(
      ["sample", "--run", dir, "--out", join(tmp, "s.csv")],
      /conditional on c: pass --context/,
      2,
    );
    await fail(
      ["sample", "--run", dir, "--context", "1,2", "--out", join(tmp, "s.csv")],
      /--context takes 1 number \(c\)/,
      2,
    );
    const wrongHeader = join(tmp, "wrong-header.csv");
    writeFileSync(wrongHeader, "d\n1\n");
    await fail(
      ["sample", "--run", dir, "--context", wrongHeader, "--out", join(tmp, "s.csv")],
      /wrong-header\.csv has no column c \(the run's context: c\)/,
      2,
    );
    await fail(
      [
        "train",
        "--data",
        join(tmp, "given.csv"),
        "--context-columns",
        "d",
        "--out",
        join(tmp, "g2"),
      ],
      /has no column "d" \(its columns: "c", "y1", "y2"\)/,
      2,
    );
    await fail(
      ["train", "--data", "moons", "--context-columns", "c", "--out", join(tmp, "g3")],
      /toy density without any/,
      2,
    );
    await fail(
      [
        "train",
        "--data",
        join(tmp, "given.csv"),
        "--context-columns",
        "c,y1,y2",
        "--out",
        join(tmp, "g4"),
      ],
      /leave at least one column/,
      2,
    );
    await fail(
      ["sample", "--run", join(tmp, "moons"), "--context", "1", "--out", join(tmp, "s.csv")],
      /--context is for runs trained with --context-columns/,
      2,
    );
  });
});

describe("clayflow errors", () => {
  const expectError = async (args: string[], pattern: RegExp, code = 1) => {
    const r = await clayflow(...args);
    assert.equal(r.code, code, `exit code for ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.ok(!/\n\s+at /.test(r.stderr), "no stack trace without --verbose");
  };

  it("--version prints the package's version", async () => {
    const pkg = JSON.parse(
      readFileSync(join(dirname(CLI), "..", "..", "..", "package.json"), "utf8"),
    );
    const r = await clayflow("--version");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `clayflow ${pkg.version} (Node ${process.versions.node})\n`);
  });

  it("names what was wrong, in one sentence, with a non-zero exit", async () => {
    await expectError(["frobnicate"], /unknown command "frobnicate"/, 2);
    await expectError(
      ["train", "--data", "moons", "--out", join(tmp, "x"), "--model", "glowish"],
      /unknown model "glowish": use one of nice, realnvp, maf, iaf, nsf, nsf-ar, flow-matching \(vectors\) or glow, realnvp, flow-matching \(images\)/,
      2,
    );
    await expectError(
      ["train", "--data", "moons", "--out", join(tmp, "x"), "--model", "glow"],
      /glow is an image model: it needs image data \(--data fashion-mnist or mnist\), not "moons"/,
      2,
    );
    await expectError(
      ["train", "--data", "spirals3", "--out", join(tmp, "x")],
      /unknown dataset "spirals3"/,
      2,
    );
    await expectError(
      ["train", "--data", "moons", "--out", join(tmp, "x"), "--steps", "ten"],
      /--steps must be a number/,
      2,
    );
    await expectError(
      ["sample", "--run", join(tmp, "nowhere"), "--out", join(tmp, "a.csv")],
      /does not exist/,
    );
    const ragged = join(tmp, "ragged.csv");
    writeFileSync(ragged, "a,b\n1,2\n3\n");
    await expectError(
      ["train", "--data", ragged, "--out", join(tmp, "r")],
      /ragged\.csv:3.*expected 2 columns/,
    );
    const nan = join(tmp, "nan.csv");
    writeFileSync(nan, "a,b\n1,2\n3,NaN\n");
    await expectError(["train", "--data", nan, "--out", join(tmp, "n")], /nan\.csv:3.*NaN/);
    const empty = join(tmp, "empty.csv");
    writeFileSync(empty, "");
    await expectError(["train", "--data", empty, "--out", join(tmp, "e")], /empty/);
  });

  it("quotes bad input as one short printable line: binary files as CSV or config, duplicate columns", async () => {
    const oneShortLine = (stderr: string) => {
      const lines = stderr
        .trimEnd()
        .split("\n")
        .filter((l) => !l.startsWith("(run with --verbose"));
      assert.equal(lines.length, 1, `one line: ${JSON.stringify(stderr)}`);
      assert.ok(lines[0].length < 300, `${lines[0].length} characters`);
      assert.doesNotMatch(
        lines[0],
        /[\u0000-\u0008\u000b-\u001f\u007f\ufffd]/,
        "no raw control bytes",
      );
    };
    let seed = 7;
    const bytes = Uint8Array.from(
      { length: 200_000 },
      () => ((seed = (seed * 1103515245 + 12345) % 2147483648) >> 8) & 255,
    );
    const binary = join(tmp, "binary.csv");
    writeFileSync(binary, bytes);
    const r1 = await clayflow("train", "--data", binary, "--out", join(tmp, "bin"));
    assert.notEqual(r1.code, 0);
    oneShortLine(r1.stderr);
    assert.ok(!existsSync(join(tmp, "bin")), "no run directory left behind");

    const run = join(tmp, "garbled-run");
    const t = await clayflow("train", "--data", "moons", "--out", run, "--steps", "20", ...SMALL);
    assert.equal(t.code, 0, t.stderr);
    const weights = readFileSync(join(run, "weights.safetensors"));
    const config = readFileSync(join(run, "config.json"));
    writeFileSync(join(run, "config.json"), bytes.subarray(0, 5000));
    const r2 = await clayflow("sample", "--run", run, "--out", join(tmp, "g.csv"));
    assert.notEqual(r2.code, 0);
    oneShortLine(r2.stderr);
    assert.match(r2.stderr, /config\.json/);
    assert.deepEqual(
      readFileSync(join(run, "weights.safetensors")),
      weights,
      "the weights are untouched",
    );
    writeFileSync(join(run, "config.json"), config);

    const dup = join(tmp, "dup.csv");
    writeFileSync(dup, "a,b,a\n1,2,3\n4,5,6\n");
    await expectError(
      ["score", "--run", run, "--data", dup, "--out", join(tmp, "s.csv")],
      /columns 1 and 3 are both named "a"/,
    );
  });

  it("refuses to overwrite a run or to score data of the wrong width, leaving files intact", async () => {
    const out = join(tmp, "moons");
    const before = readFileSync(join(out, "weights.safetensors"));
    await expectError(
      ["train", "--data", "moons", "--out", out],
      /already holds a run.*--resume/,
      2,
    );
    const wide = join(tmp, "wide.csv");
    writeFileSync(wide, "a,b,c\n1,2,3\n");
    await expectError(
      ["score", "--run", out, "--data", wide, "--out", join(tmp, "w.csv")],
      /3 columns.*trained on 2/,
    );
    assert.deepEqual(readFileSync(join(out, "weights.safetensors")), before);
    writeFileSync(join(tmp, "broken-run"), "");
    await expectError(
      ["sample", "--run", join(tmp, "broken-run"), "--out", join(tmp, "b.csv")],
      /not a directory/,
    );
  });
});

/** Rewrite a run's weights through `edit` (of the decoded tensors) and record their new checksum, as a save would. */
function editWeights(dir: string, edit: (tensors: Map<string, any>) => void): void {
  const { tensors, metadata } = decodeSafetensors(readFileSync(join(dir, "weights.safetensors")));
  edit(tensors);
  const bytes = encodeSafetensors(tensors, metadata);
  writeFileSync(join(dir, "weights.safetensors"), bytes);
  editConfig(dir, (c) => (c.weightsSha256 = createHash("sha256").update(bytes).digest("hex")));
}

function editConfig(dir: string, edit: (config: any) => void): void {
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  edit(config);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
}

describe("clayflow exit codes and damaged runs", () => {
  let good: string;
  const copy = (name: string) => {
    const dir = join(tmp, name);
    cpSync(good, dir, { recursive: true });
    return dir;
  };
  before(async () => {
    good = join(tmp, "exit-good");
    const r = await clayflow(
      "train",
      "--data",
      "moons",
      "--out",
      good,
      "--steps",
      "40",
      "--checkpoint-every",
      "20",
      ...SMALL,
    );
    assert.equal(r.code, 0, r.stderr);
  });

  it("every command's failure reaches the exit code, doctor's broken verdict included", async () => {
    // Weights far too large (yet finite, so the run loads): sampling overflows, doctor says broken.
    const huge = copy("exit-huge");
    editWeights(huge, (t) => {
      for (const [name, v] of t) if (!name.startsWith("optimizer/")) v.data.fill(1e30);
    });
    const d = await clayflow("doctor", "--run", huge, "--samples", "16", "--jacobians", "2");
    assert.equal(d.code, 1, `doctor's broken verdict exits 1: ${d.stdout}${d.stderr}`);
    assert.match(d.stdout, /verdict: broken/);
    const healthy = await clayflow("doctor", "--run", good, "--samples", "16", "--jacobians", "2");
    assert.equal(healthy.code, 0, healthy.stdout + healthy.stderr);

    // Every command, on a run it cannot load: exit 1, one sentence. The list comes from --help,
    // so a command added later without a case here fails this test.
    const nowhere = join(tmp, "exit-nowhere");
    const file = join(tmp, "exit-a-file");
    writeFileSync(file, "x");
    const cases: Record<string, string[]> = {
      train: ["train", "--resume", nowhere],
      sample: ["sample", "--run", nowhere, "--out", join(tmp, "exit.csv")],
      score: [
        "score",
        "--run",
        nowhere,
        "--data",
        join(tmp, "exit.csv"),
        "--out",
        join(tmp, "exit2.csv"),
      ],
      eval: ["eval", "--run", nowhere],
      interpolate: ["interpolate", "--run", nowhere, "--out", join(tmp, "exit.png")],
      ood: ["ood", "--run", nowhere, "--in", "fashion-mnist", "--out", "mnist"],
      doctor: ["doctor", "--run", nowhere],
      export: ["export", "--run", nowhere, "--out", join(tmp, "exit-export")],
      demo: ["demo", "--out", file],
    };
    const help = await clayflow("--help");
    const names = help.stdout
      .split("commands:")[1]
      .trim()
      .split("\n")
      .map((l) => l.trim().split(/\s+/)[0]);
    assert.deepEqual(
      [...names].sort(),
      Object.keys(cases).sort(),
      "a failure case for every command",
    );
    for (const name of names) {
      const r = await clayflow(...cases[name]);
      assert.equal(r.code, 1, `clayflow ${name} failing: ${r.stderr}`);
      assert.match(r.stderr, /^clayflow: .*(does not exist|not a directory)/, name);
    }
  });

  it("a NaN in best/ stops sample, score and doctor; a NaN in params/ stops train --resume, at load, naming the tensor", async () => {
    const best = copy("exit-nan-best");
    editWeights(best, (t) => void (t.get("best/bijector.0.net.layers.0.b").data[2] = NaN));
    const csv = join(tmp, "exit-rows.csv");
    writeFileSync(csv, "x,y\n0.1,0.2\n");
    const corrupt =
      /tensor best\/bijector\.0\.net\.layers\.0\.b holds 1 non-finite value \(NaN at index 2\): the checkpoint is corrupt/;
    for (const args of [
      ["sample", "--run", best, "-n", "10", "--out", join(tmp, "exit-nan.csv")],
      ["score", "--run", best, "--data", csv, "--out", join(tmp, "exit-nan-scores.csv")],
      ["doctor", "--run", best],
    ]) {
      const r = await clayflow(...args);
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, corrupt, args[0]);
    }
    assert.ok(!existsSync(join(tmp, "exit-nan.csv")), "no rows of NaN were written");

    const params = copy("exit-nan-params");
    editWeights(params, (t) => void t.get("params/bijector.2.net.layers.1.w").data.fill(NaN));
    const r = await clayflow("train", "--resume", params, "--steps", "80");
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /tensor params\/bijector\.2\.net\.layers\.1\.w holds \d+ non-finite values \(NaN at index 0\): the checkpoint is corrupt/,
    );
    assert.ok(!/learning rate/.test(r.stderr), "no training advice for a damaged file");
  });

  it("a weights file changed after its save, or training options edited to nonsense, fail at load", async () => {
    const flipped = copy("exit-flipped");
    const bytes = readFileSync(join(flipped, "weights.safetensors"));
    bytes[bytes.length - 4] ^= 1;
    writeFileSync(join(flipped, "weights.safetensors"), bytes);
    const s = await clayflow(
      "sample",
      "--run",
      flipped,
      "-n",
      "10",
      "--out",
      join(tmp, "exit-flipped.csv"),
    );
    assert.equal(s.code, 1, s.stderr);
    assert.match(
      s.stderr,
      /weights\.safetensors: its SHA-256 .* is not the one .*config\.json records .*corrupt/,
    );

    const negative = copy("exit-negative-steps");
    editConfig(negative, (c) => (c.training.options.steps = -5));
    const r = await clayflow("train", "--resume", negative);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /config\.json: training\.options\.steps must be a positive integer, got -5/,
    );
  });

  it("trains for a step count that is not a multiple of 10 (the cosine warm-up is whole steps)", async () => {
    const out = join(tmp, "exit-25-steps");
    const r = await clayflow("train", "--data", "moons", "--out", out, "--steps", "25", ...SMALL);
    assert.equal(r.code, 0, r.stderr);
    const lr = JSON.parse(readFileSync(join(out, "config.json"), "utf8")).training.options.optimizer
      .lr;
    assert.deepEqual([lr.kind, lr.warmupSteps, lr.totalSteps], ["cosine", 2, 25]);
  });

  it("Ctrl-C (SIGINT) exits 130 and kill (SIGTERM) 143, each after saving the checkpoint", async () => {
    for (const [signal, code] of [
      ["SIGINT", 130],
      ["SIGTERM", 143],
    ] as const) {
      const out = join(tmp, `exit-${signal}`);
      const child = spawn(
        process.execPath,
        [
          CLI,
          "train",
          "--data",
          "moons",
          "--out",
          out,
          "--steps",
          "100000",
          "--checkpoint-every",
          "20",
          ...SMALL,
        ],
        { env: CLI_ENV, stdio: ["ignore", "ignore", "pipe"] },
      );
      let stderr = "";
      child.stderr!.on("data", (b) => (stderr += b));
      const exit = await new Promise<number | null>((resolve) => {
        const poll = setInterval(() => {
          if (existsSync(join(out, "config.json"))) {
            clearInterval(poll);
            child.kill(signal);
          }
        }, 20);
        child.on("exit", (c) => {
          clearInterval(poll);
          resolve(c);
        });
      });
      assert.equal(exit, code, `${signal}: ${stderr}`);
      const step = Number(
        /interrupted at step (\d+); the checkpoint in .* is saved/.exec(stderr)?.[1],
      );
      assert.ok(step > 0, stderr);
      assert.equal(
        JSON.parse(readFileSync(join(out, "config.json"), "utf8")).training.progress.step,
        step,
        "the checkpoint is the interrupted step's",
      );
      assert.ok(!/--verbose/.test(stderr), "an interruption is not reported as a failure");
    }
  });
});
