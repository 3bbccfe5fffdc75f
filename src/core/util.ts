/** Small numeric helpers shared by bijectors and distributions. */
import { numpy as np, type Array, type DType } from "@jax-js/jax";
import type { InitOptions } from "./types.js";

/** Sum over every axis but the first (batch): per-sample totals. Consumes `x`. */
export function sumEvent(x: Array): Array {
  if (x.ndim === 1) return x;
  return x.sum(globalThis.Array.from({ length: x.ndim - 1 }, (_, i) => i + 1));
}

/** softplus(x) = log(1 + e^x), without overflow in float32. Consumes `x`. */
export function softplus(x: Array): Array {
  return np.logaddexp(x, 0);
}

/** dtype of a float array, or float32 for anything else. */
export function floatDtype(x: Array): DType {
  return x.dtype === np.float64 ? np.float64 : np.float32;
}

/** Release what `init` received but does not need (layers without data-dependent init). */
export function discardInitInputs(key: Array, options: InitOptions = {}): void {
  key.dispose();
  options.x?.dispose();
  options.cond?.dispose();
}
