import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { auroc, aupr, fprAtTpr, oodMetrics } from "../src/eval/ood/metrics.js";
import { makeRng } from "../src/core/prng.js";

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test("perfect separation gives auroc 1, aupr 1, fpr 0", () => {
  const inS = [0.1, 0.2, 0.3];
  const outS = [0.7, 0.9];
  assert.equal(auroc(inS, outS), 1);
  // Thresholds 0.9 (R=1/2, P=1) and 0.7 (R=1, P=1): AP = 1/2 + 1/2.
  assert.equal(aupr(inS, outS), 1);
  // Threshold 0.7 already has TPR 1 with no in-score above it.
  assert.equal(fprAtTpr(inS, outS), 0);
});

test("reversed scores give auroc 0 and fpr 1", () => {
  const inS = [5, 6, 7];
  const outS = [1, 2];
  assert.equal(auroc(inS, outS), 0);
  // Descending: 7, 6, 5 add only false positives; 2: TP=1, FP=3, R=1/2, P=1/4; 1: TP=2, FP=3, R=1, P=2/5.
  // AP = 1/2 * 1/4 + 1/2 * 2/5 = 0.125 + 0.2 = 0.325.
  close(aupr(inS, outS), 0.325);
  // TPR reaches 0.95 only at threshold 1, where all 3 in-scores are flagged.
  assert.equal(fprAtTpr(inS, outS), 1);
});

test("all scores tied: auroc 0.5, aupr = positive fraction, fpr 1", () => {
  const inS = [4, 4, 4];
  const outS = [4, 4];
  // Every pair is a tie: 0.5.
  assert.equal(auroc(inS, outS), 0.5);
  // One threshold: R = 1, P = 2 / 5 -> AP = 0.4, whatever the order of the tied inputs.
  close(aupr(inS, outS), 0.4);
  assert.equal(fprAtTpr(inS, outS), 1);
  assert.deepEqual(oodMetrics(inS, outS), {
    auroc: 0.5,
    aupr: 0.4,
    fprAt95Tpr: 1,
    inCount: 3,
    outCount: 2,
  });
});

test("small case with ties, worked by hand", () => {
  const inS = [1, 2, 2, 3];
  const outS = [0, 2, 3, 4];
  // AUROC over the 16 (out, in) pairs, wins + 0.5 ties:
  //   out 0: 0; out 2: beats {1} + ties {2, 2} = 1 + 1 = 2; out 3: beats {1, 2, 2} + tie {3} = 3.5; out 4: 4.
  //   Sum 9.5 / 16 = 0.59375.
  assert.equal(auroc(inS, outS), 0.59375);
  // Distinct thresholds, descending (n_out = 4, so each new positive adds 1/4 recall):
  //   t=4: TP 1 FP 0 P 1    -> 1/4 * 1   = 0.25
  //   t=3: TP 2 FP 1 P 2/3  -> 1/4 * 2/3 = 1/6
  //   t=2: TP 3 FP 3 P 1/2  -> 1/4 * 1/2 = 0.125
  //   t=1: TP 3 FP 4        -> no new positive, adds 0
  //   t=0: TP 4 FP 4 P 1/2  -> 1/4 * 1/2 = 0.125
  //   AP = 0.25 + 1/6 + 0.125 + 0.125 = 2/3.
  close(aupr(inS, outS), 2 / 3);
  // FPR at the highest threshold reaching each TPR: 0.25 at t=4 (FP 0), 0.5 at t=3 (FP 1),
  // 0.75 at t=2 (FP 3), 0.95 and 1 only at t=0 (FP 4).
  assert.equal(fprAtTpr(inS, outS, 0.25), 0);
  assert.equal(fprAtTpr(inS, outS, 0.5), 0.25);
  assert.equal(fprAtTpr(inS, outS, 0.75), 0.75);
  assert.equal(fprAtTpr(inS, outS), 1);
  assert.equal(fprAtTpr(inS, outS, 1), 1);
});

test("infinite scores are valid and tie with each other", () => {
  const inS = [-Infinity, 0, Infinity];
  const outS = [Infinity, Infinity];
  // Each out beats 2 in-scores and ties 1: (2.5 + 2.5) / 6.
  close(auroc(inS, outS), 5 / 6);
  // One step at +Infinity: R = 1, P = 2/3.
  close(aupr(inS, outS), 2 / 3);
  close(fprAtTpr(inS, outS), 1 / 3);
  // -0 and +0 are one threshold.
  assert.equal(auroc([-0], [0]), 0.5);
});

/** O(n^2) definitions straight from the formulas, for comparison. */
function bruteForce(inS: number[], outS: number[], tpr: number) {
  let twiceU = 0;
  for (const o of outS) for (const i of inS) twiceU += o > i ? 2 : o === i ? 1 : 0;
  const thresholds = [...new Set([...inS, ...outS])].sort((a, b) => b - a);
  let ap = 0;
  let prevR = 0;
  let fpr = Infinity;
  for (const t of thresholds) {
    const tp = outS.filter((s) => s >= t).length;
    const fp = inS.filter((s) => s >= t).length;
    const r = tp / outS.length;
    ap += (r - prevR) * (tp / (tp + fp));
    prevR = r;
    if (r >= tpr) fpr = Math.min(fpr, fp / inS.length);
  }
  return { auroc: twiceU / (2 * inS.length * outS.length), aupr: ap, fpr };
}

test("matches a brute-force O(n^2) reference on random data with many ties", () => {
  const rng = makeRng(7);
  for (const [nIn, nOut, levels] of [
    [1, 1, 3],
    [1, 9, 4],
    [13, 1, 4],
    [200, 150, 20],
    [97, 311, 6],
    [250, 250, 1000],
  ]) {
    // Integer scores on a few levels make ties common; the out set is shifted up a little.
    const inS = Array.from({ length: nIn }, () => rng.int(levels));
    const outS = Array.from({ length: nOut }, () => rng.int(levels) + Math.floor(levels / 5));
    for (const tpr of [0.95, 0.5, 1]) {
      const ref = bruteForce(inS, outS, tpr);
      close(fprAtTpr(inS, outS, tpr), ref.fpr);
      if (tpr === 0.95) {
        close(auroc(inS, outS), ref.auroc);
        close(aupr(inS, outS), ref.aupr, 1e-10);
        const m = oodMetrics(inS, outS);
        close(m.auroc, ref.auroc);
        close(m.aupr, ref.aupr, 1e-10);
        close(m.fprAt95Tpr, ref.fpr);
        assert.equal(m.inCount, nIn);
        assert.equal(m.outCount, nOut);
      }
    }
  }
});

test("invariant to the order of the inputs", () => {
  const rng = makeRng(11);
  const inS = Array.from({ length: 300 }, () => rng.int(8));
  const outS = Array.from({ length: 200 }, () => rng.int(8) + 1);
  const before = oodMetrics(inS, outS);
  for (let k = 0; k < 3; k++) {
    assert.deepEqual(oodMetrics(rng.shuffle(inS.slice()), rng.shuffle(outS.slice())), before);
  }
  // Typed arrays are accepted too.
  assert.deepEqual(oodMetrics(Float32Array.from(inS), Float64Array.from(outS)), before);
});

test("runs on 10,000 x 10,000 scores (N(0,1) vs N(1,1): AUROC = Phi(1/sqrt 2) = 0.7602)", () => {
  const rng = makeRng(3);
  const inS = Float64Array.from({ length: 10000 }, () => rng.normal());
  const outS = Float64Array.from({ length: 10000 }, () => rng.normal() + 1);
  const m = oodMetrics(inS, outS);
  // Standard error of the AUROC here is about 0.003.
  assert.ok(Math.abs(m.auroc - 0.7602) < 0.015, `auroc ${m.auroc}`);
  // FPR at 95% TPR: the threshold is 1 - 1.645 = -0.645 and P(N(0,1) >= -0.645) = 0.7405.
  assert.ok(Math.abs(m.fprAt95Tpr - 0.7405) < 0.02, `fpr ${m.fprAt95Tpr}`);
  assert.ok(m.aupr > 0.7 && m.aupr < 0.8, `aupr ${m.aupr}`);
});

test("clear errors for empty sets, NaN scores and a bad tpr", () => {
  assert.throws(() => auroc([], [1]), /auroc: inScores is empty/);
  assert.throws(() => aupr([1], []), /aupr: outScores is empty/);
  assert.throws(
    () => oodMetrics([1, NaN, 2, NaN], [1]),
    /oodMetrics: inScores has 2 NaN score\(s\) \(first at index 1\)/,
  );
  assert.throws(() => fprAtTpr([1], [NaN]), /fprAtTpr: outScores has 1 NaN/);
  assert.throws(() => fprAtTpr([1], [2], 0), /tpr must be in \(0, 1\], got 0/);
  assert.throws(() => fprAtTpr([1], [2], 1.5), /tpr must be in \(0, 1\], got 1.5/);
  assert.throws(() => fprAtTpr([1], [2], NaN), /tpr must be in \(0, 1\], got NaN/);
});

test("aupr: a perfect ranking of many scores is exactly 1 (no rounding above it)", () => {
  const inS = Array.from({ length: 1000 }, (_, i) => i / 1000);
  const outS = Array.from({ length: 1000 }, (_, i) => 2 + i / 3);
  assert.equal(aupr(inS, outS), 1);
});
