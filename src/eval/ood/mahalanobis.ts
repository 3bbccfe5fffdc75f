/**
 * The Mahalanobis-distance anomaly baseline: one Gaussian fitted to the training rows.
 *
 *   mean  m = (1/n) sum_i x_i
 *   cov   S = S_0 + ridge * diag(S_0),   S_0 = (1/(n-1)) sum_i (x_i - m)(x_i - m)^T
 *   score d2(x) = (x - m)^T S^{-1} (x - m)          (higher = more anomalous)
 *
 * The score is the squared Mahalanobis distance (Mahalanobis 1936), i.e. -2 log N(x; m, S) up to
 * a constant, so it ranks rows exactly as the fitted Gaussian's log-density does. S^{-1} is never
 * formed: S = L L^T (Cholesky) and d2 = |L^{-1}(x - m)|^2 by forward substitution.
 *
 * The ridge keeps S positive definite when columns are collinear (S_0 singular). It is relative
 * to each column's own variance (a ridge on the correlation matrix), so changing a column's units
 * changes no score; a constant column gets the average variance of the others (or 1) instead.
 * The default 1e-6 moves the scores of a well-conditioned fit by about 1e-6 relative.
 * Everything runs on the host in float64 (d is a table's column count: tens, not thousands).
 */

export interface MahalanobisModel {
  dim: number;
  /** Rows the fit used. */
  rows: number;
  mean: Float64Array;
  /** Lower Cholesky factor L of the regularised covariance, row-major [dim, dim]. */
  chol: Float64Array;
  /** What was added to each diagonal entry of the covariance (the ridge, in each column's units). */
  lambda: Float64Array;
}

/** Options of `fitMahalanobis`. */
export interface MahalanobisOptions {
  /** Ridge relative to the average variance (see the module comment). Default 1e-6. */
  ridge?: number;
}

/** Fit the mean and regularised covariance of `x` ([rows, dim] row-major). */
export function fitMahalanobis(
  x: ArrayLike<number>,
  dim: number,
  options: MahalanobisOptions = {},
): MahalanobisModel {
  const ridge = options.ridge ?? 1e-6;
  if (!Number.isInteger(dim) || dim < 1)
    throw new Error(`fitMahalanobis: dim must be a positive integer, got ${dim}`);
  if (x.length % dim !== 0)
    throw new Error(
      `fitMahalanobis: ${x.length} values is not a whole number of rows of width ${dim}`,
    );
  if (!(ridge >= 0)) throw new Error(`fitMahalanobis: ridge must be >= 0, got ${ridge}`);
  const rows = x.length / dim;
  if (rows < 2)
    throw new Error(`fitMahalanobis: need at least 2 rows to estimate a covariance, got ${rows}`);

  const mean = new Float64Array(dim);
  for (let r = 0; r < rows; r++) for (let j = 0; j < dim; j++) mean[j] += x[r * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= rows;
  for (let j = 0; j < dim; j++)
    if (!Number.isFinite(mean[j]))
      throw new Error(`fitMahalanobis: column ${j + 1} has non-finite values`);

  // Centred sums of products (centring first avoids the cancellation of E[xx] - m m^T).
  const cov = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dim; j++) centred[j] = x[r * dim + j] - mean[j];
    for (let a = 0; a < dim; a++) {
      const ca = centred[a];
      for (let b = 0; b <= a; b++) cov[a * dim + b] += ca * centred[b];
    }
  }
  let varSum = 0;
  let varCount = 0;
  for (let a = 0; a < dim; a++) {
    for (let b = 0; b <= a; b++) {
      cov[a * dim + b] /= rows - 1;
      cov[b * dim + a] = cov[a * dim + b];
    }
    if (cov[a * dim + a] > 0) [varSum, varCount] = [varSum + cov[a * dim + a], varCount + 1];
  }
  // A constant column has no variance to be relative to: it borrows the others' average (or 1).
  const fallback = varCount > 0 ? varSum / varCount : 1;
  const lambda = new Float64Array(dim);
  for (let a = 0; a < dim; a++) {
    lambda[a] = ridge * (cov[a * dim + a] > 0 ? cov[a * dim + a] : fallback);
    cov[a * dim + a] += lambda[a];
  }
  return { dim, rows, mean, chol: cholesky(cov, dim), lambda };
}

/** Lower Cholesky factor of a symmetric positive-definite matrix (row-major). */
export function cholesky(a: ArrayLike<number>, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (!(s > 0)) {
          throw new Error(
            `cholesky: the matrix is not positive definite (pivot ${i + 1} is ${s}); increase the ridge`,
          );
        }
        l[i * n + i] = Math.sqrt(s);
      } else {
        l[i * n + j] = s / l[j * n + j];
      }
    }
  }
  return l;
}

/** Squared Mahalanobis distance of every row of `x` ([rows, dim] row-major) to the fit. */
export function mahalanobisScores(model: MahalanobisModel, x: ArrayLike<number>): Float64Array {
  const { dim, mean, chol } = model;
  if (x.length % dim !== 0)
    throw new Error(
      `mahalanobisScores: ${x.length} values is not a whole number of rows of width ${dim}`,
    );
  const rows = x.length / dim;
  const out = new Float64Array(rows);
  const y = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    // Solve L y = x - m by forward substitution; d2 = |y|^2.
    let d2 = 0;
    for (let i = 0; i < dim; i++) {
      let s = x[r * dim + i] - mean[i];
      for (let k = 0; k < i; k++) s -= chol[i * dim + k] * y[k];
      y[i] = s / chol[i * dim + i];
      d2 += y[i] * y[i];
    }
    out[r] = d2;
  }
  return out;
}
