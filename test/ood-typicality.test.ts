import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { fitTypicality, flagBatches, typicalityStatistics } from "../src/eval/ood/typicality.js";
import { auroc } from "../src/eval/ood/metrics.js";
import { makeRng } from "../src/core/prng.js";

// Synthetic per-input NLLs ~ N(MU, SIGMA^2); a batch mean of M of them has standard error SIGMA / sqrt(M).
const MU = 3.2;
const SIGMA = 0.5;
const M = 25;
const SE = SIGMA / Math.sqrt(M);

const gaussian = (seed: number, count: number, shift = 0) => {
  const rng = makeRng(seed);
  return Float64Array.from({ length: count }, () => MU + shift + SIGMA * rng.normal());
};
const rate = (flags: boolean[]) => flags.filter(Boolean).length / flags.length;

test("in-distribution batches are flagged at about rate alpha", () => {
  const alpha = 0.05;
  const bootstraps = 4000;
  const fit = fitTypicality(gaussian(1, 5000), { batchSize: M, alpha, bootstraps, seed: 9 });
  // epsilon estimates the two-sided (1 - alpha) point of |N(0, SE^2)|: z_{0.975} SE = 1.96 SE
  // (over 50 seeds it ranged 1.88..2.02 SE). Over the same 50 seeds the rate check below never failed.
  assert.ok(Math.abs(fit.epsilon / SE - 1.96) < 0.15, `epsilon ${fit.epsilon / SE} SE`);
  const batches = 4000;
  const observed = rate(flagBatches(gaussian(2, batches * M), fit));
  // Binomial error of the observed rate plus the bootstrap quantile's own error (its exceedance
  // probability has about the same binomial spread over K draws); allow 4 standard errors.
  const tol = 4 * Math.sqrt(alpha * (1 - alpha) * (1 / batches + 1 / bootstraps));
  assert.ok(Math.abs(observed - alpha) < tol, `rate ${observed}, alpha ${alpha} +/- ${tol}`);
});

test("defaults (alpha 0.01, 1000 bootstraps) put epsilon near 2.576 standard errors", () => {
  const fit = fitTypicality(gaussian(3, 5000), { batchSize: M });
  assert.equal(fit.alpha, 0.01);
  assert.equal(fit.batchSize, M);
  assert.ok(Math.abs(fit.entropy - MU) < (4 * SIGMA) / Math.sqrt(5000), `entropy ${fit.entropy}`);
  // The 99% point of 1000 draws is noisy: over 50 seeds it ranged 2.36..2.85 SE (sd about 0.12).
  assert.ok(Math.abs(fit.epsilon / SE - 2.576) < 0.4, `epsilon ${fit.epsilon / SE} SE`);
});

test("batches shifted by 6 standard errors are flagged, including the too-likely ones", () => {
  const fit = fitTypicality(gaussian(4, 5000), { batchSize: M });
  const inNll = gaussian(5, 1000 * M);
  const high = gaussian(6, 1000 * M, 6 * SE);
  const low = gaussian(7, 1000 * M, -6 * SE);
  // P(flag) = P(|Z + 6| > 2.58) ~ 0.9997 in both directions.
  assert.ok(rate(flagBatches(high, fit)) > 0.99);
  assert.ok(rate(flagBatches(low, fit)) > 0.99);
  // Raw likelihood is fooled by the low-NLL set: scored by NLL, it looks MORE in-distribution
  // (AUROC = Phi(-1.2 / sqrt 2) ~ 0.2 per input), while the typicality statistic separates it.
  assert.ok(auroc(inNll, low) < 0.3);
  const inStats = typicalityStatistics(inNll, fit);
  assert.ok(auroc(inStats, typicalityStatistics(low, fit)) > 0.99);
});

test("consecutive batches, remainder dropped, explicit entropy, infinite NLL flagged", () => {
  // Batches [1, 2, 3] (mean 2) and [4, 5, 6] (mean 5); 7 is dropped. |2 - 2| = 0, |5 - 2| = 3.
  assert.deepEqual(
    [...typicalityStatistics([1, 2, 3, 4, 5, 6, 7], { entropy: 2, batchSize: 3 })],
    [0, 3],
  );
  const fit = fitTypicality([1, 2, 3, 4, 5], { batchSize: 2, entropy: 3.5 });
  assert.equal(fit.entropy, 3.5);
  assert.deepEqual(flagBatches([3.5, 3.5, Infinity, 1], { ...fit, epsilon: 0.1 }), [false, true]);
  // Constant held-out NLLs: every bootstrap statistic is 0, so epsilon is 0 and equal batches pass.
  const flat = fitTypicality([2, 2, 2], { batchSize: 2 });
  assert.equal(flat.epsilon, 0);
  assert.deepEqual(flagBatches([2, 2, 2, 2.5], flat), [false, true]);
});

test("seeded and deterministic", () => {
  const held = gaussian(8, 500);
  const a = fitTypicality(held, { batchSize: 10, seed: 3 });
  assert.deepEqual(fitTypicality(held, { batchSize: 10, seed: 3 }), a);
  assert.notEqual(fitTypicality(held, { batchSize: 10, seed: 4 }).epsilon, a.epsilon);
});

test("clear errors", () => {
  const held = [1, 2, 3];
  assert.throws(() => fitTypicality([], { batchSize: 2 }), /heldOutNll is empty/);
  assert.throws(
    () => fitTypicality([1, Infinity, NaN], { batchSize: 2 }),
    /heldOutNll has 2 non-finite value\(s\)/,
  );
  assert.throws(
    () => fitTypicality(held, { batchSize: 0 }),
    /batchSize must be a positive integer, got 0/,
  );
  assert.throws(
    () => fitTypicality(held, { batchSize: 2.5 }),
    /batchSize must be a positive integer, got 2.5/,
  );
  assert.throws(
    () => fitTypicality(held, { batchSize: 2, alpha: 1 }),
    /alpha must be in \(0, 1\), got 1/,
  );
  assert.throws(
    () => fitTypicality(held, { batchSize: 2, bootstraps: 0 }),
    /bootstraps must be a positive integer/,
  );
  assert.throws(
    () => fitTypicality(held, { batchSize: 2, entropy: NaN }),
    /entropy must be a finite number/,
  );
  assert.throws(
    () => typicalityStatistics([1], { entropy: 0, batchSize: 2 }),
    /got 1 NLL\(s\), fewer than one batch of 2/,
  );
  assert.throws(
    () => typicalityStatistics([1, NaN, 3, 4], { entropy: 0, batchSize: 2 }),
    /1 batch\(es\) have a NaN mean NLL/,
  );
});
