/**
 * What `fit` minimises. Two objectives:
 *
 * - `maximumLikelihood`: the mean negative log-likelihood -mean(log p(x | c)), for every flow
 *   whose `logProb` compiles (all the discrete flows).
 * - `flowMatchingObjective`: conditional flow matching (Lipman et al., "Flow Matching for Generative
 *   Modeling", ICLR 2023; Liu et al., "Flow Straight and Fast", ICLR 2023) for a continuous
 *   flow: with noise x0 ~ N(0, I), data x1 and t ~ U(0, 1), regress the vector field on the
 *   velocity of a path between them,
 *     loss = mean_rows || v(x_t, t | c) - u_t ||^2   (summed over the dimensions),
 *   whose minimiser is the field that carries the base to the data. Paths:
 *     "ot"  straight lines (optimal-transport displacement / rectified flow):
 *           x_t = (1 - t) x0 + t x1,                u_t = x1 - x0;
 *     "vp"  the variance-preserving trigonometric interpolant (Albergo & Vanden-Eijnden,
 *           "Building Normalizing Flows with Stochastic Interpolants", ICLR 2023):
 *           x_t = cos(pi t / 2) x0 + sin(pi t / 2) x1, u_t = pi / 2 (cos(pi t / 2) x1 - sin(pi t / 2) x0).
 *   Coupling "ot" pairs each batch's noise with its data by the exact minibatch optimal
 *   transport plan for the squared distance (Tong et al., "Improving and generalizing
 *   flow-based generative models with minibatch optimal transport", TMLR 2024), which
 *   straightens the learned paths; "none" pairs them independently.
 *
 * Noise and times are drawn on the host from a generator seeded by (seed, step) only, so a
 * resumed run draws exactly what the uninterrupted run would have.
 */
import { numpy as np, type Array } from "@jax-js/jax";
import type { Flow, FlowParams } from "../distributions/flow.js";
import type { ContinuousFlowBijector } from "../bijectors/continuous-flow.js";
import type { ChainBijector } from "../bijectors/chain.js";
import type { Bijector, Params } from "../core/types.js";
import { makeRng } from "../core/prng.js";
import { solveAssignment } from "../core/assignment.js";
import {
  isFlowMatchingConfig,
  type FlowMatchingCoupling,
  type FlowMatchingPath,
} from "../models/flow-matching.js";
import { nll } from "./losses.js";
import type { FloatVector } from "./fit.js";

/** Host arrays that go with one training batch (row-major, with their shape). */
export interface BatchExtra {
  data: FloatVector;
  shape: number[];
}

/** An objective `fit` minimises; see the module comment. */
export interface TrainObjective {
  /** "nll" or "flow-matching": what the training loss of the progress lines is. */
  readonly name: string;
  /**
   * Host arrays drawn for the batch `x` ([rows, dim] row-major, after `augment`) at global
   * step `step`; a function of (x, step) only. Absent: none.
   */
  draw?(x: FloatVector, rows: number, step: number): BatchExtra[];
  /** The scalar loss of one batch (inside the jitted step). Consumes its arrays. */
  loss(params: FlowParams, x: Array, extras: Array[], cond?: Array): Array;
}

/** Mean negative log-likelihood: the objective of every flow whose logProb compiles. */
export function maximumLikelihood(flow: Flow<any, any>): TrainObjective {
  return {
    name: "nll",
    loss: (params, x, _extras, cond) => nll(flow.logProb(params, x, cond, { training: true })),
  };
}

/** Options of `flowMatchingObjective`. */
export interface FlowMatchingOptions {
  /** Default "ot". */
  path?: FlowMatchingPath;
  /** Default "none". */
  coupling?: FlowMatchingCoupling;
  /** Seed of the noise and times (with the step). Default 0. */
  seed?: number;
}

/** A 32-bit seed that depends only on (seed, step), apart from the batch-order seeds. */
function stepSeed(seed: number, step: number): number {
  let h = Math.imul((Math.trunc(seed) >>> 0) ^ 0x2545f491, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ Math.imul(step + 1, 0x85ebca77), 0xc2b2ae3d);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The rows of `noise` reordered so that row i is paired with data row i by the exact OT plan
 * for the squared distance (both [rows, dim] row-major).
 */
export function otPairNoise(
  x: FloatVector,
  noise: FloatVector,
  rows: number,
  dim: number,
): FloatVector {
  const cost = new Float64Array(rows * rows);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < rows; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) {
        const d = x[i * dim + k] - noise[j * dim + k];
        s += d * d;
      }
      cost[i * rows + j] = s;
    }
  const col = solveAssignment(cost, rows);
  const out = new (noise.constructor as typeof Float64Array)(noise.length);
  for (let i = 0; i < rows; i++) out.set(noise.subarray(col[i] * dim, col[i] * dim + dim), i * dim);
  return out;
}

/**
 * The continuous flow a flow-matching objective trains: the flow's bijector, or the last layer
 * of its chain, after parameter-free preprocessing layers (the image model's logit map).
 */
function continuousPart(flow: Flow<any, any>): {
  cnf: ContinuousFlowBijector;
  pre: Bijector[];
} {
  const b = flow.bijector;
  if (b.kind === "continuousFlow") return { cnf: b as ContinuousFlowBijector, pre: [] };
  const layers = (b as Partial<ChainBijector>).layers;
  const last = layers?.[layers.length - 1];
  if (b.kind === "chain" && last?.kind === "continuousFlow")
    return { cnf: last as ContinuousFlowBijector, pre: layers!.slice(0, -1) };
  throw new Error(
    `flowMatchingObjective: the flow's bijector is ${b.kind}, not a continuousFlow (or a chain that ends in one); train it by maximum likelihood`,
  );
}

/**
 * Conditional flow matching for a flow whose bijector is a `continuousFlow`, or a chain of
 * preprocessing layers ending in one (the field then regresses in the preprocessed space).
 */
export function flowMatchingObjective(
  flow: Flow<any, any>,
  options: FlowMatchingOptions = {},
): TrainObjective {
  const { cnf, pre } = continuousPart(flow);
  const path = options.path ?? "ot";
  const coupling = options.coupling ?? "none";
  const seed = options.seed ?? 0;
  const shape = cnf.eventShape;
  const dim = shape.reduce((a, d) => a * d, 1);
  // The plan pairs the data as given to the noise: only right without preprocessing.
  if (coupling === "ot" && pre.length > 0)
    throw new Error(
      "flowMatchingObjective: minibatch OT coupling pairs raw data with noise, so it needs a flow without preprocessing layers (vector flow matching); use coupling none",
    );
  return {
    name: "flow-matching",
    draw(x, rows, step) {
      const rng = makeRng(stepSeed(seed, step));
      const Vec = x.constructor as typeof Float64Array;
      let noise: FloatVector = new Vec(rows * dim);
      for (let k = 0; k < noise.length; k++) noise[k] = rng.normal();
      const t = new Vec(rows);
      for (let k = 0; k < rows; k++) t[k] = rng.uniform();
      if (coupling === "ot") noise = otPairNoise(x, noise, rows, dim);
      return [
        { data: noise, shape: [rows, dim] },
        { data: t, shape: [rows, 1] },
      ];
    },
    loss(params, x, [x0Flat, t], cond) {
      const rows = x.shape[0];
      const layerParams = pre.length ? (params.bijector as Params[]) : [params.bijector as Params];
      let x1 = x.reshape([rows, ...(pre[0]?.eventShape ?? shape)]);
      pre.forEach((layer, i) => {
        const [y, logDet] = layer.forward(layerParams[i], x1, cond?.ref);
        logDet.dispose();
        x1 = y;
      });
      const cnfParams = layerParams[pre.length] as { field: Params };
      const x0 = x0Flat.reshape([rows, ...shape]);
      // t broadcast over the event: [rows, 1, ..., 1].
      const tb = t.ref.reshape([rows, ...shape.map(() => 1)]);
      let xt: Array;
      let target: Array;
      if (path === "ot") {
        xt = x0.ref.mul(tb.ref.neg().add(1)).add(x1.ref.mul(tb));
        target = x1.sub(x0);
      } else {
        const angle = tb.mul(Math.PI / 2);
        const c = np.cos(angle.ref);
        const s = np.sin(angle);
        xt = x0.ref.mul(c.ref).add(x1.ref.mul(s.ref));
        target = x1
          .mul(c)
          .sub(x0.mul(s))
          .mul(Math.PI / 2);
      }
      const v = cnf.field.apply(cnfParams.field, xt, t, cond);
      const r = v.sub(target).reshape([rows, dim]);
      return r.ref.mul(r).sum(1).mean();
    },
  };
}

/**
 * The objective a flow trains with by default: flow matching (with its config's path and
 * coupling) for a flow-matching model, maximum likelihood for every other flow.
 */
export function defaultObjective(flow: Flow<any, any>, seed = 0): TrainObjective {
  if (isFlowMatchingConfig(flow.config))
    return flowMatchingObjective(flow, {
      path: flow.config.path,
      coupling: flow.config.coupling,
      seed,
    });
  if (!flow.jittable)
    throw new Error(
      `fit: this flow's logProb cannot be compiled (a ${flow.bijector.kind}), so it cannot be trained by maximum likelihood here; pass an objective (e.g. flowMatchingObjective(flow))`,
    );
  return maximumLikelihood(flow);
}
