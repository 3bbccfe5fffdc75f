/**
 * Tabular anomaly flagging end to end: `clayflow train` on a CSV stores the training
 * log-likelihood quantiles beside the run, and `clayflow score --flag-quantile Q` /
 * `--threshold NATS` flags the rows below the threshold in a CSV out.
 */
import "./helpers/setup.js";
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeAnomalyTable } from "../src/data/anomaly-table.js";
import { parseCsv } from "../src/data/csv.js";
import { LOGLIK_FILE, LOGLIK_LEVELS } from "../src/eval/loglik-quantiles.js";
import { clayflow as runClayflow } from "./helpers/cli.js";

const clayflow = (...args: string[]) => runClayflow(args, 60_000);

let tmp: string;
let run: string;
let trainCsv: string;
let testCsv: string;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "clayflow-anomaly-cli-"));
  ({ train: trainCsv, test: testCsv } = await writeAnomalyTable(join(tmp, "data"), 0, {
    trainRows: 1500,
    testRows: 400,
  }));
  run = join(tmp, "run");
  const r = await clayflow(
    "train",
    "--data",
    trainCsv,
    "--out",
    run,
    "--steps",
    "60",
    "--layers",
    "2",
    "--hidden",
    "16",
    "--eval-every",
    "30",
    "--no-plots",
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /training log-likelihood quantiles in train-loglik\.json: 1% -?\d+\.\d+ nats/,
  );
});

/** The rows of a scored CSV as objects keyed by column name. */
function readScored(path: string): { columns: string[]; rows: Record<string, number>[] } {
  const t = parseCsv(readFileSync(path, "utf8"));
  const rows = Array.from({ length: t.rows }, (_, r) =>
    Object.fromEntries(t.columns.map((c, j) => [c, t.data[r * t.cols + j]])),
  );
  return { columns: t.columns, rows };
}

const thresholdOf = (stdout: string) => Number(/below (-?\d+\.\d+) nats/.exec(stdout)![1]);

describe("clayflow train stores the training log-likelihood quantiles", () => {
  it("writes train-loglik.json for the training split at the run's step", () => {
    const s = JSON.parse(readFileSync(join(run, LOGLIK_FILE), "utf8"));
    assert.equal(s.format, "clayflow-loglik-quantiles");
    assert.equal(s.rows, 1200); // the CSV's training split (80% of 1500 rows)
    assert.equal(s.step, 60);
    assert.equal(s.quantiles.length, LOGLIK_LEVELS + 1);
    assert.ok(
      s.quantiles.every(
        (v: number, k: number) => Number.isFinite(v) && (k === 0 || v >= s.quantiles[k - 1]),
      ),
    );
  });
});

describe("clayflow score --flag-quantile / --threshold", () => {
  it("flags test rows below the training quantile; the file's own label column is kept", async () => {
    const out = join(tmp, "flagged.csv");
    const r = await clayflow(
      "score",
      "--run",
      run,
      "--data",
      testCsv,
      "--out",
      out,
      "--flag-quantile",
      "0.05",
    );
    assert.equal(r.code, 0, r.stderr);
    const { columns, rows } = readScored(out);
    assert.deepEqual(columns, [
      "x1",
      "x2",
      "x3",
      "x4",
      "x5",
      "x6",
      "x7",
      "x8",
      "anomaly",
      "log_likelihood",
      "anomaly_flag",
    ]);
    assert.equal(rows.length, 400);
    const t = thresholdOf(r.stdout);
    const flagged = rows.filter((row) => row.anomaly_flag === 1).length;
    assert.match(
      r.stdout,
      new RegExp(
        `flagged ${flagged} of 400 rows .* the 0\\.05-quantile of the training log-likelihood`,
      ),
    );
    // The printed threshold is rounded to 4 decimals: compare away from it.
    for (const row of rows) {
      if (Math.abs(row.log_likelihood - t) > 1e-3)
        assert.equal(row.anomaly_flag, row.log_likelihood < t ? 1 : 0);
    }
    assert.ok(rows.every((row) => row.anomaly === 0 || row.anomaly === 1));
  });

  it("--train-data recomputes the quantile: on the training file itself exactly Q of its rows are flagged", async () => {
    const out = join(tmp, "train-flagged.csv");
    const r = await clayflow(
      "score",
      "--run",
      run,
      "--data",
      trainCsv,
      "--out",
      out,
      "--flag-quantile",
      "0.05",
      "--train-data",
      trainCsv,
    );
    assert.equal(r.code, 0, r.stderr);
    // Type-7 quantile at 0.05 of 1500 values: h = 74.95, so rows 0..74 of the sorted order lie below.
    assert.match(r.stdout, /flagged 75 of 1500 rows \(5\.00%\) as anomalies \(column anomaly\)/);
    const { columns, rows } = readScored(out);
    assert.deepEqual(columns.slice(-2), ["log_likelihood", "anomaly"]);
    assert.equal(rows.filter((row) => row.anomaly === 1).length, 75);
  });

  it("--threshold NATS flags exactly the rows below it", async () => {
    const out = join(tmp, "threshold.csv");
    const r = await clayflow(
      "score",
      "--run",
      run,
      "--data",
      testCsv,
      "--out",
      out,
      "--threshold",
      "-24.5",
    );
    assert.equal(r.code, 0, r.stderr);
    const { rows } = readScored(out);
    const below = rows.filter((row) => row.log_likelihood < -24.5).length;
    assert.equal(rows.filter((row) => row.anomaly_flag === 1).length, below);
    assert.match(
      r.stdout,
      new RegExp(`flagged ${below} of 400 rows .* below -24\\.5000 nats, given by --threshold`),
    );
  });

  it("refuses bad or conflicting options with one sentence", async () => {
    const out = join(tmp, "never.csv");
    const base = ["score", "--run", run, "--data", testCsv, "--out", out];
    for (const q of ["0", "1", "1.5", "-0.1"]) {
      const r = await clayflow(...base, "--flag-quantile", q);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--flag-quantile must be a fraction in \(0, 1\)/);
    }
    const both = await clayflow(...base, "--flag-quantile", "0.01", "--threshold", "-20");
    assert.match(both.stderr, /either --flag-quantile or --threshold, not both/);
    const lone = await clayflow(...base, "--train-data", trainCsv);
    assert.match(lone.stderr, /--train-data only serves --flag-quantile/);
    assert.ok(!existsSync(out));
  });

  it("an old run without the quantiles, or with stale ones, says to pass --threshold or --train-data", async () => {
    const old = join(tmp, "old-run");
    cpSync(run, old, { recursive: true });
    rmSync(join(old, LOGLIK_FILE));
    const out = join(tmp, "old.csv");
    const r = await clayflow(
      "score",
      "--run",
      old,
      "--data",
      testCsv,
      "--out",
      out,
      "--flag-quantile",
      "0.01",
    );
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /has no train-loglik\.json .* pass --threshold NATS, or --train-data FILE\.csv/,
    );
    // Scoring without flagging still works on it, and --train-data recomputes.
    assert.equal((await clayflow("score", "--run", old, "--data", testCsv, "--out", out)).code, 0);
    assert.equal(
      (
        await clayflow(
          "score",
          "--run",
          old,
          "--data",
          testCsv,
          "--out",
          out,
          "--flag-quantile",
          "0.01",
          "--train-data",
          trainCsv,
        )
      ).code,
      0,
    );

    const summary = JSON.parse(readFileSync(join(run, LOGLIK_FILE), "utf8"));
    writeFileSync(join(old, LOGLIK_FILE), JSON.stringify({ ...summary, step: 30, paramsStep: 30 }));
    const stale = await clayflow(
      "score",
      "--run",
      old,
      "--data",
      testCsv,
      "--out",
      out,
      "--flag-quantile",
      "0.01",
    );
    assert.equal(stale.code, 2);
    assert.match(stale.stderr, /describes the parameters of step 30 .* pass --threshold NATS/);
  });
});
