import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { cholesky, fitMahalanobis, mahalanobisScores } from "../src/eval/ood/mahalanobis.js";

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

// Hand-worked: rows (2,1), (-2,-1), (1,2), (-1,-2) have mean 0 and, with n - 1 = 3,
// S = [[10, 8], [8, 10]] / 3, so S^-1 = [[10, -8], [-8, 10]] / 12 and
// d2(x, y) = (10 x^2 - 16 x y + 10 y^2) / 12: d2(1,1) = 1/3, d2(1,-1) = 3, d2(2,1) = 3/2.
const ROWS = [2, 1, -2, -1, 1, 2, -1, -2];

test("mahalanobis: hand-worked 2-D case (mean, covariance, squared distances)", () => {
  const m = fitMahalanobis(ROWS, 2, { ridge: 0 });
  assert.equal(m.rows, 4);
  assert.deepEqual([...m.mean], [0, 0]);
  // L L^T = S: L = [[sqrt(10/3), 0], [8/3 / sqrt(10/3), sqrt(10/3 - (8/3)^2 / (10/3))]].
  const l00 = Math.sqrt(10 / 3);
  close(m.chol[0], l00);
  close(m.chol[2], 8 / 3 / l00);
  close(m.chol[3], Math.sqrt(10 / 3 - 64 / 9 / (10 / 3)));
  assert.equal(m.chol[1], 0);
  const d2 = mahalanobisScores(m, [1, 1, 1, -1, 2, 1, 0, 0]);
  close(d2[0], 1 / 3);
  close(d2[1], 3);
  close(d2[2], 1.5);
  assert.equal(d2[3], 0);
});

test("mahalanobis: shifting and rescaling columns (other units) gives the same scores, ridge included", () => {
  const moved = ROWS.map((v, i) => (i % 2 === 0 ? 5 + 100 * v : -3 + 0.01 * v));
  const queries = [1, 1, 1, -1, 2, 1];
  const movedQ = queries.map((v, i) => (i % 2 === 0 ? 5 + 100 * v : -3 + 0.01 * v));
  const a = mahalanobisScores(fitMahalanobis(ROWS, 2), queries);
  const b = mahalanobisScores(fitMahalanobis(moved, 2), movedQ);
  for (let i = 0; i < a.length; i++) close(b[i], a[i], 1e-9);
});

test("mahalanobis: the default ridge is tiny on well-conditioned data", () => {
  const d2 = mahalanobisScores(fitMahalanobis(ROWS, 2), [1, -1]);
  close(d2[0], 3, 1e-5);
});

test("mahalanobis: collinear columns (singular covariance) still fit; off-line points score huge", () => {
  const line = [0, 0, 1, 2, 2, 4, 3, 6]; // y = 2x exactly
  assert.throws(() => fitMahalanobis(line, 2, { ridge: 0 }), /not positive definite/);
  const m = fitMahalanobis(line, 2);
  const [on, off] = mahalanobisScores(m, [1.5, 3, 1.5, 3.5]);
  assert.ok(Number.isFinite(on) && on < 2, `on the line: ${on}`);
  assert.ok(off > 1e4, `off the line: ${off}`);
});

test("mahalanobis: a constant column does not break the fit", () => {
  const m = fitMahalanobis([0, 7, 1, 7, 2, 7, 3, 7], 2);
  const [same, other] = mahalanobisScores(m, [1.5, 7, 1.5, 8]);
  assert.ok(same < 1e-6, `${same}`);
  assert.ok(other > 1e5, `${other}`);
});

test("mahalanobis: clear errors for bad shapes and too few rows", () => {
  assert.throws(() => fitMahalanobis([1, 2, 3], 2), /whole number of rows/);
  assert.throws(() => fitMahalanobis([1, 2], 2), /at least 2 rows/);
  assert.throws(() => fitMahalanobis([1, NaN, 2, 3], 2), /non-finite/);
  assert.throws(
    () => mahalanobisScores(fitMahalanobis(ROWS, 2), [1, 2, 3]),
    /whole number of rows/,
  );
  assert.throws(() => cholesky([1, 2, 2, 1], 2), /not positive definite/);
});
