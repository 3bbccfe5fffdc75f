/**
 * A dynamic scope that marks code being traced for differentiation (the training step's
 * loss). Layers may pick a different but equal formulation there: a convolution
 * materialises its input windows for a fast forward-only pass, which inside a gradient
 * trace only adds memory (the backward pass keeps its own copies), enough to push a
 * batch-64 Glow step past jax-js's 4 GiB wasm memory. Tracing is synchronous, so a
 * counter is enough.
 */
let depth = 0;

/** Run `fn` (a function being differentiated, as it is traced) inside the scope. */
export function tracingGradient<T>(fn: () => T): T {
  depth++;
  try {
    return fn();
  } finally {
    depth--;
  }
}

/** True while `tracingGradient` is running. */
export function inGradientTrace(): boolean {
  return depth > 0;
}
