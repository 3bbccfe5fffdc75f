/**
 * Fit a flow to an unnormalised target density by minimising the reverse KL
 * divergence KL(q || p) = E_q[log q(x) - log p~(x)] + log Z, estimated with the
 * flow's own reparameterised samples (normflows' "reverse KL"; Rezende &
 * Mohamed 2015). The flow never sees data: it learns to sample from p~.
 */
import { random, tree, type Array } from "@jax-js/jax";
import type { Flow, FlowParams } from "../distributions/flow.js";
import { flatten } from "./flat-params.js";
import { initOptState, type OptState } from "./optimizer.js";
import { makeTrainStep, type TrainStepConfig } from "./train-step.js";
import { reverseKL } from "./losses.js";
import type { Params } from "../core/types.js";

/** Options of `fitDensity`. */
export interface FitDensityOptions {
  steps?: number;
  /** Samples per step. Default 256. */
  batchSize?: number;
  optimizer?: TrainStepConfig;
  seed?: number;
  /** Called after every step with its reverse-KL loss. */
  onProgress?: (info: { step: number; totalSteps: number; loss: number }) => void;
}

/** What `fitDensity` returns: parameters and the loss per step. */
export interface FitDensityResult<P extends Params, Q extends Params> {
  params: FlowParams<P, Q>;
  /** Reverse-KL loss per step (equals KL(q || p) - log Z, so it is bounded below by -log Z). */
  losses: number[];
  skipped: number;
}

/**
 * Train `flow` so that its samples follow `targetLogDensity` (log p~(x) up to a
 * constant, one value per row, built from jax-js operations). Consumes `params`.
 */
export async function fitDensity<P extends Params, Q extends Params>(
  flow: Flow<any, any>,
  params: FlowParams<P, Q>,
  targetLogDensity: (x: Array) => Array,
  options: FitDensityOptions = {},
): Promise<FitDensityResult<P, Q>> {
  const { steps = 2000, batchSize = 256, seed = 0 } = options;
  if (flow.contextDim > 0)
    throw new Error("fitDensity: conditional flows need a context per sample; not supported");
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`fitDensity: steps must be a positive integer, got ${steps}`);
  const flat = flatten(params as never);
  const step = makeTrainStep(
    (p: FlowParams<any, any>, key: Array) =>
      reverseKL(flow.sampleAndLogProb(p, key, batchSize), targetLogDensity),
    options.optimizer ?? { kind: "adam", lr: 1e-3 },
    flat,
  );
  let vector = flat.vector;
  let state: OptState = initOptState(vector.ref);
  const losses: number[] = [];
  let skipped = 0;
  try {
    for (let i = 0; i < steps; i++) {
      // A fresh key per step, derived only from (seed, step): reproducible.
      const key = random.key(((seed * 1_000_003) ^ i) >>> 0);
      const [next, nextState, loss, gradNorm, finite] = step(vector, state, key);
      vector = next;
      state = nextState;
      gradNorm.dispose();
      const [l, ok] = await Promise.all([loss.data(), finite.data()]);
      if (!ok[0]) skipped++;
      losses.push(Number(l[0]));
      options.onProgress?.({ step: i + 1, totalSteps: steps, loss: Number(l[0]) });
    }
  } finally {
    step.dispose();
    tree.dispose(state);
  }
  return { params: flat.unravel(vector) as FlowParams<P, Q>, losses, skipped };
}
