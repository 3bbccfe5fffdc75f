/** The command line's parts: the option parser, the progress display and the image training defaults. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseArgs, helpText, wasGiven, UsageError, type CommandSpec } from "../src/cli/args.js";
import { Progress, formatProgress } from "../src/cli/progress.js";
import { imageSettingsFrom, train } from "../src/cli/commands/train.js";
import { IMAGE_TRAIN_DEFAULTS } from "../src/cli/commands/train-image.js";
import { createRunDir } from "../src/cli/run-dir.js";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const spec: CommandSpec = {
  name: "t",
  summary: "test command",
  usage: "t [options]",
  options: {
    steps: { type: "int", help: "steps", default: 10 },
    lr: { type: "number", help: "rate" },
    out: { type: "string", help: "dir", required: true, value: "DIR" },
    quiet: { type: "boolean", help: "hush" },
    n: { type: "int", short: "n", help: "count" },
  },
};

describe("parseArgs", () => {
  it("parses typed values, defaults, short flags and --name=value", () => {
    const o = parseArgs(spec, ["--out", "d", "--lr=0.5", "-n", "3", "--quiet"])!;
    assert.deepEqual({ ...o }, { out: "d", lr: 0.5, n: 3, quiet: true, steps: 10 });
    assert.equal(wasGiven(o, "steps"), false);
    assert.equal(wasGiven(o, "lr"), true);
  });
  it("takes a negative number as a value and --flag=false (util.parseArgs refuses both)", () => {
    const o = parseArgs(spec, ["--out", "d", "--lr", "-0.5", "--quiet=false"])!;
    assert.equal(o.lr, -0.5);
    assert.equal(o.quiet, false);
  });
  it("rejects what it does not know, with the option named", () => {
    const bad = (args: string[], re: RegExp) =>
      assert.throws(
        () => parseArgs(spec, args),
        (e: Error) => e instanceof UsageError && re.test(e.message),
      );
    bad(["--out", "d", "--bogus"], /unknown option --bogus/);
    bad(["--out", "d", "--steps", "1.5"], /--steps must be an integer/);
    bad(["--out", "d", "--lr", "fast"], /--lr must be a number/);
    bad(["--out"], /--out needs a value/);
    bad([], /--out is required/);
    bad(["--out", "d", "stray"], /unexpected argument "stray"/);
  });
  it("returns null for --help, and the help lists every option", () => {
    assert.equal(parseArgs(spec, ["--help"]), null);
    const text = helpText(spec);
    for (const name of ["--steps", "--lr", "--out DIR", "-n, --n", "--quiet", "--help"])
      assert.ok(text.includes(name), name);
  });
});

describe("Progress", () => {
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    return {
      chunks,
      stream: {
        isTTY,
        columns: 120,
        write: (s: string) => (chunks.push(s), true),
      } as unknown as NodeJS.WriteStream,
    };
  };
  it("formats step, loss, speed and ETA", () => {
    assert.equal(
      formatProgress({ step: 5, total: 10, loss: 1.23456, stepsPerSecond: 2, etaSeconds: 125 }),
      "step 5/10  loss 1.2346  2.0 steps/s  ETA 2m05s",
    );
    // The first step (it compiles) has no speed yet: no guessed ETA.
    assert.equal(
      formatProgress({ step: 1, total: 10, stepsPerSecond: Number.NaN, etaSeconds: Number.NaN }),
      "step 1/10  ? steps/s  ETA ?",
    );
  });
  it("draws a bar in place on a terminal and plain lines elsewhere", () => {
    const tty = sink(true);
    const p = new Progress("train", tty.stream);
    p.update({ step: 1, total: 4, loss: 1 });
    p.update({ step: 4, total: 4, loss: 0.5 });
    p.done();
    assert.ok(tty.chunks[0].startsWith("\rtrain [") && tty.chunks.at(-1) === "\n");
    const log = sink(false);
    const q = new Progress("train", log.stream, 3600);
    q.update({ step: 1, total: 4 });
    q.update({ step: 2, total: 4 }); // within the log interval: not written
    q.update({ step: 4, total: 4 }); // the last step is always written
    assert.deepEqual(log.chunks, ["train: step 1/4\n", "train: step 4/4\n"]);
  });
});

describe("clayflow train on image data", () => {
  const settings = (...args: string[]) =>
    imageSettingsFrom(
      parseArgs(train.spec, ["--model", "glow", "--data", "fashion-mnist", "--out", "d", ...args])!,
    );

  it("uses the measured default recipe where an option is not given", () => {
    const s = settings();
    assert.deepEqual(
      {
        steps: s.steps,
        batchSize: s.batchSize,
        lr: s.lr,
        hidden: s.hidden,
        flowSteps: s.flowSteps,
        dequantization: s.dequantization,
        evalEvery: s.evalEvery,
        schedule: s.schedule,
      },
      { ...IMAGE_TRAIN_DEFAULTS, schedule: "cosine" },
    );
  });

  it("lets every default be overridden, and checks the values", () => {
    const s = settings(
      "--steps",
      "7",
      "--batch-size",
      "8",
      "--lr",
      "0.01",
      "--hidden",
      "16",
      "--flow-steps",
      "2",
      "--dequantization",
      "uniform",
      "--eval-every",
      "3",
    );
    assert.deepEqual(
      {
        steps: s.steps,
        batchSize: s.batchSize,
        lr: s.lr,
        hidden: s.hidden,
        flowSteps: s.flowSteps,
        dequantization: s.dequantization,
        evalEvery: s.evalEvery,
      },
      {
        steps: 7,
        batchSize: 8,
        lr: 0.01,
        hidden: 16,
        flowSteps: 2,
        dequantization: "uniform",
        evalEvery: 3,
      },
    );
    assert.throws(() => settings("--steps", "0"), /--steps must be at least 1/);
    assert.throws(() => settings("--lr", "-1"), /--lr must be positive/);
    assert.throws(
      () => settings("--hidden", "64,64"),
      /--hidden for image models is one channel count/,
    );
    assert.throws(
      () => settings("--dequantization", "gaussian"),
      /--dequantization must be uniform or variational/,
    );
    // --samples sizes toy data only; image runs do not look at it.
    assert.doesNotThrow(() => settings("--samples", "0"));
  });
});

describe("createRunDir", () => {
  it("creates a run's directories, and removes them again only while they are empty", () => {
    const root = mkdtempSync(join(tmpdir(), "clayflow-rundir-"));
    try {
      // A failed run with nothing saved: the directories it created go.
      const dir = join(root, "runs", "a");
      createRunDir(dir).discardIfEmpty();
      assert.ok(!existsSync(join(root, "runs")));
      // Something landed inside: it stays.
      const kept = createRunDir(dir);
      writeFileSync(join(dir, "config.json"), "{}");
      kept.discardIfEmpty();
      assert.ok(existsSync(join(dir, "config.json")));
      // A directory that existed before (here the user's empty one) is not this run's to remove.
      const mine = join(root, "mine");
      mkdirSync(mine);
      createRunDir(mine).discardIfEmpty();
      assert.ok(existsSync(mine));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
