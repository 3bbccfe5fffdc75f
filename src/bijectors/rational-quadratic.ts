/**
 * The monotonic rational-quadratic spline (Durkan, Bekasov, Murray & Papamakarios 2019,
 * "Neural Spline Flows", arXiv:1906.04032; the spline of Gregory & Delbourgo 1982), the
 * elementwise transformer of the spline flows. On [-B, B] it is a monotone spline of K
 * bins; outside it is the identity (linear tails), continuous with slope 1 at +-B.
 *
 * Each transformed value x reads 3K - 1 raw conditioner outputs, in this order
 * (docs/CHECKPOINTS.md):
 *   [0, K)        bin widths:  w = minW + (1 - K minW) softmax(raw)
 *   [K, 2K)       bin heights: h = minH + (1 - K minH) softmax(raw)
 *   [2K, 3K - 1)  derivatives at the K - 1 inner knots: d = minD + softplus(raw + c),
 *                 c = log(e^(1 - minD) - 1), so raw = 0 gives d = 1;
 * the derivative at the two outer knots is 1 (it matches the identity tails). With all
 * raw outputs 0 the spline is the identity, which is how every spline layer starts.
 *
 * In bin k (knots (x_k, y_k), width w_k, height h_k, slope s_k = h_k / w_k, xi the position
 * in the bin, t = xi (1 - xi)):
 *   y  = y_k + h_k (s_k xi^2 + d_k t) / (s_k + (d_k+1 + d_k - 2 s_k) t)
 *   dy/dx = s_k^2 (d_k+1 xi^2 + 2 s_k t + d_k (1 - xi)^2) / (s_k + (d_k+1 + d_k - 2 s_k) t)^2
 * The inverse solves a xi^2 + b xi + c = 0 by the root 2c / (-b - sqrt(b^2 - 4ac)),
 * which does not cancel (Durkan et al., appendix A).
 *
 * The bin of each value is found by counting the knots at or below it (jax-js has no
 * searchsorted), and bin quantities are picked with that one-hot mask (a multiply and a
 * sum, which differentiates under jit where a gather's scatter does not). Values outside
 * [-B, B] run through the spline clipped to the boundary and are then replaced by the
 * identity, so neither branch of the `where` holds a NaN that a gradient could pick up.
 * Knots are exact at both ends (the last knot is set to 1, not summed to it), so values at
 * +-B map to +-B in both directions.
 */
import { nn, numpy as np, type Array } from "@jax-js/jax";
import { jsonExcerpt } from "../core/excerpt.js";

/** Shape of a rational-quadratic spline: bins, interval half-width and the minimum bin sizes and slope. */
export interface SplineOptions {
  /** Number of bins K; default 8. */
  bins?: number;
  /** Half-width B of the interval [-B, B] the spline covers; default 5. */
  tailBound?: number;
  /** Smallest bin width and height, as a fraction of 2B; default 1e-3. */
  minBinWidth?: number;
  minBinHeight?: number;
  /** Smallest derivative at an inner knot; default 1e-3. */
  minDerivative?: number;
}

/** `SplineOptions` with every default filled in. */
export type ResolvedSplineOptions = Required<SplineOptions>;

const DEFAULTS: ResolvedSplineOptions = {
  bins: 8,
  tailBound: 5,
  minBinWidth: 1e-3,
  minBinHeight: 1e-3,
  minDerivative: 1e-3,
};

/** The options with defaults filled in, checked; throws a sentence that names `where`. */
export function resolveSplineOptions(
  where: string,
  options: SplineOptions = {},
): ResolvedSplineOptions {
  const o = {
    ...DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  } as ResolvedSplineOptions;
  if (!(Number.isInteger(o.bins) && o.bins >= 2 && o.bins <= 256)) {
    throw new Error(
      `${where}: bins must be an integer from 2 to 256, got ${jsonExcerpt(options.bins)}`,
    );
  }
  if (!(typeof o.tailBound === "number" && o.tailBound > 0 && Number.isFinite(o.tailBound))) {
    throw new Error(
      `${where}: tailBound must be a positive finite number, got ${jsonExcerpt(options.tailBound)}`,
    );
  }
  for (const key of ["minBinWidth", "minBinHeight"] as const) {
    const v = o[key];
    if (!(typeof v === "number" && v > 0 && v * o.bins < 1)) {
      throw new Error(
        `${where}: ${key} must be positive and below 1 / bins (${1 / o.bins}), got ${jsonExcerpt(v)}`,
      );
    }
  }
  if (!(typeof o.minDerivative === "number" && o.minDerivative > 0 && o.minDerivative < 1)) {
    throw new Error(
      `${where}: minDerivative must be in (0, 1), got ${jsonExcerpt(o.minDerivative)}`,
    );
  }
  return o;
}

/** Raw conditioner outputs each transformed value reads: K widths, K heights, K - 1 derivatives. */
export function splineParamCount(bins: number): number {
  return 3 * bins - 1;
}

/** A constant matrix [rows, cols] with ones where `keep(i, j)`. */
function indicator(
  rows: number,
  cols: number,
  keep: (i: number, j: number) => boolean,
  like: Array,
): Array {
  const data: number[] = [];
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data.push(keep(i, j) ? 1 : 0);
  return np.array(data, { dtype: like.dtype, device: like.device }).reshape([rows, cols]);
}

/**
 * 1 / y for y > 0, as exp(-log y): in jax-js 0.1.25 the gradient of a division (and of
 * `reciprocal`) by a traced value leaks one buffer per call. Consumes `y`.
 */
function reciprocal(y: Array): Array {
  return np.exp(np.log(y).neg());
}

/** `x[..., start:end]`. Consumes `x`. */
function lastAxis(x: Array, start: number, end: number): Array {
  const ranges: [number, number][] = x.shape.slice(0, -1).map((d) => [0, d]);
  return x.slice(...ranges, [start, end]);
}

/**
 * Apply the spline elementwise. `raw`: [..., 3K - 1] conditioner outputs for each value of
 * `x`: [...] (the same leading shape). Returns [y, log|dy/dx|], both shaped like `x`;
 * `inverse` applies the inverse map and returns its log-derivative. Consumes raw and x.
 */
export function rationalQuadraticSpline(
  raw: Array,
  x: Array,
  o: ResolvedSplineOptions,
  inverse = false,
): [Array, Array] {
  const K = o.bins;
  const dtype = x.dtype;
  // Constants as arrays of x's dtype: under jit, jax-js rounds JS scalar operands to float32.
  const c = (v: number) => np.array(v, { dtype, device: x.device });
  const B = o.tailBound;

  // Knot positions in [0, 1]. left = cumulative sum before each bin (a strictly upper
  // triangular matmul, exactly 0 for the first bin); right = the next left, 1 for the last.
  // softmax as exp(r - logsumexp(r)): jax-js 0.1.25's nn.softmax leaks a buffer in its gradient.
  const normalise = (r: Array, min: number) =>
    np
      .exp(r.ref.sub(nn.logsumexp(r, -1, { keepdims: true })))
      .mul(c(1 - K * min))
      .add(c(min));
  const widths = normalise(lastAxis(raw.ref, 0, K), o.minBinWidth);
  const heights = normalise(lastAxis(raw.ref, K, 2 * K), o.minBinHeight);
  const strictUpper = indicator(K, K, (i, j) => i < j, x);
  const nextLeft = indicator(K, K, (i, j) => i < j + 1 && j < K - 1, x); // sums through bin j; 0 in the last column
  const lastColumn = indicator(1, K, (_, j) => j === K - 1, x).reshape([K]);
  const knots = (size: Array): [Array, Array] => [
    np.matmul(size.ref, strictUpper.ref),
    np.matmul(size, nextLeft.ref).add(lastColumn.ref),
  ];
  const [leftX, rightX] = knots(widths);
  const [leftY, rightY] = knots(heights);
  strictUpper.dispose();
  nextLeft.dispose();
  lastColumn.dispose();

  // Derivatives at each bin's left and right knot: the inner ones, with 1 at both ends.
  const shift = Math.log(Math.expm1(1 - o.minDerivative));
  const inner = np
    .logaddexp(lastAxis(raw, 2 * K, 3 * K - 1).add(c(shift)), c(0))
    .add(c(o.minDerivative)); // [..., K-1]
  const toLeft = indicator(K - 1, K, (i, j) => j === i + 1, x);
  const toRight = indicator(K - 1, K, (i, j) => j === i, x);
  const first = indicator(1, K, (_, j) => j === 0, x).reshape([K]);
  const last = indicator(1, K, (_, j) => j === K - 1, x).reshape([K]);
  const dLeft = np.matmul(inner.ref, toLeft).add(first);
  const dRight = np.matmul(inner, toRight).add(last);

  // Position in [0, 1]; values outside run clipped and are replaced by the identity below.
  const u = x.ref.add(c(B)).div(c(2 * B));
  const inside = np.logicalAnd(np.greaterEqual(u.ref, c(0)), np.lessEqual(u.ref, c(1)));
  const uc = np.clip(u, 0, 1);
  // The bin: how many left knots (the first is 0, so at least one) lie at or below uc.
  const binW = rightX.sub(leftX.ref);
  const binH = rightY.sub(leftY.ref);
  const searched = inverse ? leftY.ref : leftX.ref;
  const count = np
    .greaterEqual(uc.ref.reshape([...uc.shape, 1]), searched)
    .astype(dtype)
    .sum(-1);
  const onehot = np
    .equal(count.sub(c(1)).reshape([...uc.shape, 1]), np.arange(K).astype(dtype))
    .astype(dtype);
  const pick = (a: Array) => onehot.ref.mul(a).sum(-1);
  const xk = pick(leftX),
    wk = pick(binW),
    yk = pick(leftY),
    hk = pick(binH),
    dk = pick(dLeft),
    dk1 = pick(dRight);
  onehot.dispose();
  const sk = hk.ref.mul(reciprocal(wk.ref));
  const curvature = dk1.ref.add(dk.ref).sub(sk.ref.mul(c(2))); // d_k+1 + d_k - 2 s_k

  let xi: Array;
  if (inverse) {
    const dv = uc.sub(yk);
    const a = hk.ref.mul(sk.ref.sub(dk.ref)).add(dv.ref.mul(curvature.ref));
    const b = hk.ref.mul(dk.ref).sub(dv.ref.mul(curvature.ref));
    const cc = sk.ref.mul(dv).neg();
    const disc = np.maximum(b.ref.mul(b.ref).sub(a.mul(cc.ref).mul(c(4))), c(0));
    // 2c / (-b - sqrt(disc)) = -2c / (b + sqrt(disc)); both terms are >= 0 here.
    xi = np.clip(cc.mul(c(-2)).mul(reciprocal(b.add(np.sqrt(disc)))), 0, 1);
    hk.dispose();
  } else {
    xi = np.clip(uc.sub(xk.ref).mul(reciprocal(wk.ref)), 0, 1);
  }
  const t = xi.ref.mul(c(1).sub(xi.ref));
  const denom = sk.ref.add(curvature.mul(t.ref));
  const oneMinus = c(1).sub(xi.ref);
  const slope = sk.ref
    .mul(sk.ref)
    .mul(
      dk1
        .mul(xi.ref.mul(xi.ref))
        .add(sk.ref.mul(t.ref).mul(c(2)))
        .add(dk.ref.mul(oneMinus.ref.mul(oneMinus))),
    )
    .mul(reciprocal(denom.ref.mul(denom.ref)));
  const logSlope = np.log(slope);
  let out: Array;
  if (inverse) {
    sk.dispose();
    dk.dispose();
    t.dispose();
    denom.dispose();
    out = xk.add(xi.mul(wk));
  } else {
    out = yk.add(hk.mul(sk.mul(xi.ref.mul(xi)).add(dk.mul(t))).mul(reciprocal(denom)));
    xk.dispose();
    wk.dispose();
  }
  // Back to [-B, B]; the identity outside.
  const y = np.where(inside.ref, out.mul(c(2 * B)).sub(c(B)), x);
  const logDet = np.where(inside, inverse ? logSlope.neg() : logSlope, c(0));
  return [y, logDet];
}
