/**
 * `jit(f)` when `compile` is true, else `f` itself with a no-op `dispose`: the chunked
 * evaluators compile a flow's logProb / sample only when the flow is `jittable` (a continuous
 * flow with an adaptive ODE solver reads values back and must run eagerly).
 */
import { blockUntilReady, jit } from "@jax-js/jax";

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

/**
 * Before an eager call (`compile` false): wait until `trees` are computed. An adaptive or
 * settled ODE solve reads values back synchronously, which jax-js refuses while asynchronous
 * work is pending (large kernels run on worker threads), and unsettled it queues every
 * evaluation at once. Compiled calls need no wait.
 */
export async function readyForEager(compile: boolean, ...trees: unknown[]): Promise<void> {
  if (!compile) await blockUntilReady(trees as any);
}
