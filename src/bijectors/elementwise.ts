/**
 * Fixed elementwise squashing maps, with numerically stable log-determinants:
 *
 *   sigmoid: y = σ(x) = 1 / (1 + e^-x),    log σ'(x) = -softplus(-x) - softplus(x)
 *   logit:   y = log(x) - log(1 - x),      the inverse of sigmoid, domain (0, 1);
 *            log|dy/dx| = -log(x) - log(1 - x)
 *   tanh:    y = tanh(x),                  log(1 - tanh²x) = 2 (log 2 - x - softplus(-2x))
 *
 * Used to map between R^D and bounded data (the logit transform of Dinh et al.
 * 2016, "Density estimation using Real NVP", §4.1) or to bound a flow's output.
 *
 * Boundary clamping: wherever a log of a value in (0, 1) (or of 1 ± y in
 * (-1, 1)) is taken, the value is first clamped into [1e-37, 1 - ulp] (ulp = the
 * spacing just below 1 in the dtype: 2^-24 for float32, 2^-53 for float64), so
 * the logit forward at exactly 0 or 1 and the sigmoid / tanh inverse at exactly
 * 0, 1 or ±1 give large but finite outputs instead of ±inf. Inside the clamp the
 * maps are exact. The forward sigmoid and tanh need no clamp: their log-dets are
 * written with softplus, finite for any finite input.
 */
import { numpy as np, type Array, type DType } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { softplus, sumEvent } from "../core/util.js";
import { parameterFree } from "./parameter-free.js";

/** No trainable parameters. */
export type ElementwiseParams = Record<string, never>;

/** Smallest argument a log sees: above float32's smallest normal (the wasm backend evaluates float64 logs in float32). */
const TINY = 1e-37;
/** Largest value below 1 in `dtype`, so that 1 - value > 0 exactly. */
const belowOne = (dtype: DType) => (dtype === np.float64 ? 1 - 2 ** -53 : 1 - 2 ** -24);

/**
 * A scalar constant in `dtype`. Plain JS numbers that are not exact in float32
 * must not be passed as operands: under jit they are rounded to float32 even
 * in float64 code (jit and eager then differ by ~1e-9).
 */
const scalar = (value: number, dtype: DType) => np.full([], value, { dtype });

/** A map applied elementwise: each half returns [output, elementwise log|derivative|]. Consumes x. */
type Half = (x: Array) => [Array, Array];

function elementwise(
  kind: string,
  eventShape: number[],
  fwd: Half,
  inv: Half,
): Bijector<ElementwiseParams> {
  const run = (half: Half, x: Array): [Array, Array] => {
    const [y, logDeriv] = half(x);
    return [y, sumEvent(logDeriv)];
  };
  return parameterFree({
    kind,
    eventShape,
    forward: (x) => run(fwd, x),
    inverse: (y) => run(inv, y),
  });
}

/** σ(x) and log σ'(x), stable for any finite x. */
const sigmoidHalf: Half = (x) => {
  const logSig = softplus(x.ref.neg()).neg(); // log σ(x)
  const logDeriv = logSig.ref.sub(softplus(x)); // log σ(1 - σ) = log σ(x) + log σ(-x)
  return [np.exp(logSig), logDeriv];
};

/** logit(u) and its log-derivative -log u - log(1 - u), u clamped into [TINY, 1 - ulp]. */
const logitHalf: Half = (u) => {
  const c = np.clip(u, scalar(TINY, u.dtype), scalar(belowOne(u.dtype), u.dtype));
  const logU = np.log(c.ref);
  const log1mU = np.log1p(c.neg());
  const logDeriv = logU.ref.add(log1mU.ref).neg();
  return [logU.sub(log1mU), logDeriv];
};

/** tanh(x) and log(1 - tanh²x) = 2 (log 2 - x - softplus(-2x)). */
const tanhHalf: Half = (x) => {
  const logDeriv = x.ref
    .add(softplus(x.ref.mul(-2)))
    .sub(scalar(Math.LN2, x.dtype))
    .mul(-2);
  return [np.tanh(x), logDeriv];
};

/** atanh(y) = (log1p(y) - log1p(-y)) / 2 and -log(1 - y²), y clamped into [-(1 - ulp), 1 - ulp]. */
const atanhHalf: Half = (y) => {
  const hi = belowOne(y.dtype);
  const c = np.clip(y, scalar(-hi, y.dtype), scalar(hi, y.dtype));
  const a = np.log1p(c.ref);
  const b = np.log1p(c.neg());
  const logDeriv = a.ref.add(b.ref).neg();
  return [a.sub(b).mul(0.5), logDeriv];
};

/** y = sigmoid(x): R -> (0, 1). The inverse clamps y (see the file comment). */
export function sigmoid(eventShape: number[]): Bijector<ElementwiseParams> {
  return elementwise("sigmoid", eventShape, sigmoidHalf, logitHalf);
}

/** y = logit(x): (0, 1) -> R, the inverse of sigmoid. The forward clamps x (see the file comment). */
export function logit(eventShape: number[]): Bijector<ElementwiseParams> {
  return elementwise("logit", eventShape, logitHalf, sigmoidHalf);
}

/** y = tanh(x): R -> (-1, 1). The inverse clamps y (see the file comment). */
export function tanh(eventShape: number[]): Bijector<ElementwiseParams> {
  return elementwise("tanh", eventShape, tanhHalf, atanhHalf);
}
