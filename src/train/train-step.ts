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
import { allTrainable, ravel, trainableMask, type Flattened } from "./flat-params.js";
import {
  adamUpdate,
  globalNorm,
  resolveOptimizerConfig,
  type OptimizerConfig,
  type OptState,
} from "./optimizer.js";
import { makeSchedule, type ScheduleConfig } from "./schedules.js";

/**
 * `valueAndGrad` for a scalar function of the parameter tree, taken at the flat
 * vector `v` with the layout `flat`: returns the value and the gradient as a
 * vector of the same layout. Safe inside `jit`.
 *
 * It differentiates with respect to the tree (`unravel(v)`) and ravels the
 * gradient tree, rather than differentiating through `unravel`: the transpose of
 * every slice is a padding of the whole vector, and jax-js fuses their sum into
 * one kernel that pays for every leaf at every element (see `concatVectors`).
 *
 * Why not `valueAndGrad`: in @jax-js/jax 0.1.25, under `jit`, a `pad` or
 * `concatenate` of a broadcast literal ignores the padding, and a leaf's
 * cotangent is exactly such a literal whenever the leaf enters the loss
 * linearly (e.g. `sum(logScale)`): jit(grad(v => v.slice([1, 3]).sum()))
 * returns ones over the WHOLE vector. Seeding the backward pass with a traced 1
 * (loss * 0 + 1) makes every cotangent depend on a computed value, which the
 * compiler materialises before joining. The price: when the loss is not finite
 * the gradient is NaN (the train step skips such steps anyway). Differentiates
 * with respect to the parameters only; consumes all arguments.
 */
export function valueAndGradFlat(
  f: (params: Params, ...rest: Array[]) => Array,
  flat: Pick<Flattened, "unravel" | "spec">,
) {
  return (v: Array, ...rest: Array[]): [Array, Array] => {
    const [value, back] = vjp((params: Params) => f(params, ...rest), [flat.unravel(v)]);
    const seed = value.ref.mul(0).add(1);
    const [g] = back(seed);
    back.dispose();
    return [value, ravel(g as Params, flat.spec)];
  };
}

/** The loss of unravelled params on a batch: a scalar. Consumes its arguments. */
export type LossFn = (params: any, ...batch: Array[]) => Array;

/** Optimizer config plus the learning rate: a constant, or a JSON schedule. */
export interface TrainStepConfig extends OptimizerConfig {
  lr: number | ScheduleConfig;
}

/** What one training step returns: new parameters and optimizer state, the loss, the gradient norm and whether the step was finite. */
export type TrainStepResult = [
  params: Array,
  state: OptState,
  loss: Array,
  gradNorm: Array,
  finite: Array,
];

/** One jitted training step on the flat parameter vector; call `dispose` when done. */
export type TrainStep = ((
  flatParams: Array,
  optState: OptState,
  ...batch: Array[]
) => TrainStepResult) & {
  /** Release the compiled step. */
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
  const schedule = makeSchedule(
    typeof config.lr === "number" ? { kind: "constant", lr: config.lr } : config.lr,
    dtype,
  );
  const loss = (params: Params, ...batch: Array[]) =>
    tracingGradient(() => lossFn(params, ...batch));

  const body = (p: Array, state: OptState, mask: Array | null, batch: Array[]): TrainStepResult => {
    const [value, rawGrads] = valueAndGradFlat(loss, flat)(p.ref, ...batch);
    if (value.ndim !== 0)
      throw new Error(
        `makeTrainStep: the loss must be a scalar, got shape [${value.shape.join(", ")}]`,
      );
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
      {
        step: keep(nextState.step, state.step),
        m: keep(nextState.m, state.m),
        v: keep(nextState.v, state.v),
      },
      value,
      gradNorm,
      finite,
    ];
  };

  if (allTrainable(flat.spec)) {
    const inner = jit((p: Array, state: OptState, ...batch: Array[]) =>
      body(p, state, null, batch),
    );
    const step = ((p: Array, state: OptState, ...batch: Array[]) =>
      inner(p, state, ...batch)) as TrainStep;
    step.dispose = () => inner.dispose();
    return step;
  }
  // The mask travels as an argument: a captured array would be baked into the compiled function.
  const mask = trainableMask(flat.spec);
  const inner = jit((p: Array, state: OptState, m: Array, ...batch: Array[]) =>
    body(p, state, m, batch),
  );
  const step = ((p: Array, state: OptState, ...batch: Array[]) =>
    inner(p, state, mask.ref, ...batch)) as TrainStep;
  step.dispose = () => {
    inner.dispose();
    mask.dispose();
  };
  return step;
}
