/**
 * One jitted training step on the flat parameter vector:
 *
 *   step(flatParams, optState, ...batch) -> [newFlatParams, newOptState, loss, gradNorm, finite]
 *
 * Inside one `jit`: unravel the vector, loss and gradient (`valueAndGradFlat`), mask
 * the gradient of non-trainable leaves (under `state` keys), global gradient
 * norm, the scheduled lr at the state's step, the Adam/AdamW update, and a
 * guard: when the loss or the gradient norm is not finite (NaN, or an overflow
 * to infinity), `np.where` keeps the old parameters and optimizer state (step
 * included) and `finite` is false, so the caller can count skipped steps.
 * `gradNorm` is the norm before clipping (NaN when the loss is not finite).
 *
 * Ownership: the step consumes `flatParams`, `optState` and the batch arrays,
 * like any jax-js function. Call `step.dispose()` when done (frees the compiled
 * function's constants and the trainable mask).
 */
import { jit, numpy as np, tree, vjp, type Array } from "@jax-js/jax";
import type { Params } from "../core/types.js";
import { tracingGradient } from "../core/gradient-scope.js";
import { allTrainable, trainableMask, type Flattened } from "./flat-params.js";
import { adamUpdate, globalNorm, resolveOptimizerConfig, type OptimizerConfig, type OptState } from "./optimizer.js";
import { makeSchedule, type ScheduleConfig } from "./schedules.js";

/**
 * `valueAndGrad` for a scalar function of a flat vector, safe inside `jit`.
 *
 * Why not `valueAndGrad`: in @jax-js/jax 0.1.25, under `jit`, a `pad` or
 * `concatenate` of a broadcast literal ignores the padding, and the transpose
 * of a slice is exactly that whenever a leaf's cotangent is a constant (a leaf
 * that enters the loss linearly, e.g. `sum(logScale)`): jit(grad(v =>
 * v.slice([1, 3]).sum())) returns ones over the WHOLE vector. Seeding the
 * backward pass with a traced 1 (loss * 0 + 1) makes every cotangent depend on
 * a computed value, which the compiler materialises before padding. The price:
 * when the loss is not finite the gradient is NaN (the train step skips such
 * steps anyway). Differentiates with respect to the first argument only;
 * consumes all arguments.
 */
export function valueAndGradFlat(f: (v: Array, ...rest: Array[]) => Array) {
  return (v: Array, ...rest: Array[]): [Array, Array] => {
    const [value, back] = vjp((w: Array) => f(w, ...rest), [v]);
    const seed = value.ref.mul(0).add(1);
    const [g] = back(seed);
    back.dispose();
    return [value, g];
  };
}

/** The loss of unravelled params on a batch: a scalar. Consumes its arguments. */
export type LossFn = (params: any, ...batch: Array[]) => Array;

/** Optimizer config plus the learning rate: a constant, or a JSON schedule. */
export interface TrainStepConfig extends OptimizerConfig {
  lr: number | ScheduleConfig;
}

export type TrainStepResult = [params: Array, state: OptState, loss: Array, gradNorm: Array, finite: Array];

export type TrainStep = ((flatParams: Array, optState: OptState, ...batch: Array[]) => TrainStepResult) & {
  dispose: () => void;
};

/**
 * Build the jitted step for `lossFn` with the layout `flat` (the result of
 * `flatten`, or just its `unravel` and `spec`; its vector is not used).
 */
export function makeTrainStep(
  lossFn: LossFn,
  config: TrainStepConfig,
  flat: Pick<Flattened, "unravel" | "spec">,
): TrainStep {
  const optimizer = resolveOptimizerConfig(config);
  const dtype = flat.spec.dtype;
  const schedule = makeSchedule(typeof config.lr === "number" ? { kind: "constant", lr: config.lr } : config.lr, dtype);
  const { unravel } = flat;
  const loss = (v: Array, ...batch: Array[]) => tracingGradient(() => lossFn(unravel(v) as Params, ...batch));

  const body = (p: Array, state: OptState, mask: Array | null, batch: Array[]): TrainStepResult => {
    const [value, rawGrads] = valueAndGradFlat(loss)(p.ref, ...batch);
    if (value.ndim !== 0) throw new Error(`makeTrainStep: the loss must be a scalar, got shape [${value.shape.join(", ")}]`);
    const grads = mask ? rawGrads.mul(mask.ref) : rawGrads;
    const gradNorm = globalNorm(grads.ref);
    const finite = np.logicalAnd(np.isfinite(value.ref), np.isfinite(gradNorm.ref));
    const lr = schedule(state.step.ref);
    const [next, nextState] = adamUpdate(optimizer, grads, tree.ref(state), p.ref, lr, {
      mask: mask ?? undefined,
      gradNorm: gradNorm.ref,
    });
    // Select, not multiply: NaN * 0 would still be NaN.
    const keep = (a: Array, b: Array) => np.where(finite.ref, a, b);
    return [
      keep(next, p),
      { step: keep(nextState.step, state.step), m: keep(nextState.m, state.m), v: keep(nextState.v, state.v) },
      value,
      gradNorm,
      finite,
    ];
  };

  if (allTrainable(flat.spec)) {
    const inner = jit((p: Array, state: OptState, ...batch: Array[]) => body(p, state, null, batch));
    const step = ((p: Array, state: OptState, ...batch: Array[]) => inner(p, state, ...batch)) as TrainStep;
    step.dispose = () => inner.dispose();
    return step;
  }
  // The mask travels as an argument: a captured array would be baked into the compiled function.
  const mask = trainableMask(flat.spec);
  const inner = jit((p: Array, state: OptState, m: Array, ...batch: Array[]) => body(p, state, m, batch));
  const step = ((p: Array, state: OptState, ...batch: Array[]) => inner(p, state, mask.ref, ...batch)) as TrainStep;
  step.dispose = () => {
    inner.dispose();
    mask.dispose();
  };
  return step;
}
