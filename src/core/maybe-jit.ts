/**
 * `jit(f)` when `compile` is true, else `f` itself with a no-op `dispose`: the chunked
 * evaluators compile a flow's logProb / sample only when the flow is `jittable` (a continuous
 * flow with an adaptive ODE solver reads values back and must run eagerly).
 */
import { jit } from "@jax-js/jax";

/** `f` compiled, or as it is, with a `dispose` either way. */
export function maybeJit<F extends (...args: any[]) => any>(
  f: F,
  compile: boolean,
): F & { dispose(): void } {
  if (compile) return jit(f) as unknown as F & { dispose(): void };
  return Object.assign((...args: Parameters<F>) => f(...args), { dispose() {} }) as unknown as F & {
    dispose(): void;
  };
}
