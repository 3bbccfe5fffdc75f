/**
 * The flow-matching model for vector data: a continuous normalizing flow (an ODE between a
 * standard-normal base at t = 0 and the data at t = 1) whose vector field is an MLP on
 * [x, sinusoidal time embedding, context], trained by conditional flow matching
 * (train/flow-matching.ts) and evaluated with the exact divergence (bijectors/continuous-flow.ts).
 *
 *   buildFlow({ model: "flow-matching", dim: 2, hidden: [128, 128, 128], solver: "dopri5" })
 *
 * `solver`, `odeSteps`, `rtol`, `atol` and `maxSteps` choose how logProb and sampling solve the
 * ODE; `path` and `coupling` choose the training objective (they do not change the density of
 * given weights, but a run resumes with them, so they live in the config).
 */
import { assertSize } from "../core/checks.js";
import { jsonExcerpt } from "../core/excerpt.js";
import { continuousFlow } from "../bijectors/continuous-flow.js";
import { standardNormal } from "../distributions/standard-normal.js";
import { Flow } from "../distributions/flow.js";
import { mlpVectorField } from "../nn/vector-field.js";
import { ODE_SOLVERS, type OdeSolver } from "../ode/solvers.js";
import { MAX_SIZE } from "./vector.js";

/** The model name of flow-matching configs. */
export const FLOW_MATCHING_MODEL = "flow-matching";

/** Probability paths of the flow-matching objective: straight (OT / rectified flow) or variance-preserving. */
export const FM_PATHS = ["ot", "vp"] as const;
/** One of `FM_PATHS`. */
export type FlowMatchingPath = (typeof FM_PATHS)[number];
/** Couplings of noise and data within a batch: independent, or exact minibatch optimal transport. */
export const FM_COUPLINGS = ["none", "ot"] as const;
/** One of `FM_COUPLINGS`. */
export type FlowMatchingCoupling = (typeof FM_COUPLINGS)[number];

/** The plain JSON config of a flow-matching model. */
export interface FlowMatchingConfig {
  model: typeof FLOW_MATCHING_MODEL;
  /** Event dimension. */
  dim: number;
  /** Hidden widths of the vector field's MLP; default [128, 128, 128]. */
  hidden?: number[];
  /** Width of the context vector (e.g. a one-hot class); default 0. */
  contextDim?: number;
  /** Default "gelu". */
  activation?: "relu" | "tanh" | "gelu";
  /** Sinusoidal time frequencies; default 4. */
  timeFeatures?: number;
  /** ODE solver of logProb and sampling; default "dopri5". */
  solver?: OdeSolver;
  /** Steps of the fixed-step solvers; default 100. */
  odeSteps?: number;
  /** dopri5 tolerances; default 1e-5 each. */
  rtol?: number;
  atol?: number;
  /** dopri5: at most this many steps per solve; default 10000. */
  maxSteps?: number;
  /** Training path; default "ot". */
  path?: FlowMatchingPath;
  /** Training coupling; default "none". */
  coupling?: FlowMatchingCoupling;
}

/** A flow-matching config with every default filled in (what a checkpoint stores). */
export type ResolvedFlowMatchingConfig = Required<FlowMatchingConfig>;

/** Whether a config is a flow-matching config (by its model name). */
export function isFlowMatchingConfig(c: unknown): c is FlowMatchingConfig {
  return !!c && typeof c === "object" && (c as { model?: unknown }).model === FLOW_MATCHING_MODEL;
}

/** The config with every default filled in, checked. */
export function resolveFlowMatchingConfig(config: FlowMatchingConfig): ResolvedFlowMatchingConfig {
  const where = "flow config (flow-matching)";
  if (!isFlowMatchingConfig(config)) throw new Error(`${where}: expected model "flow-matching"`);
  const known = [
    "model",
    "dim",
    "hidden",
    "contextDim",
    "activation",
    "timeFeatures",
    "solver",
    "odeSteps",
    "rtol",
    "atol",
    "maxSteps",
    "path",
    "coupling",
  ];
  const extra = Object.keys(config).filter((k) => !known.includes(k));
  if (extra.length)
    throw new Error(`${where}: unknown field ${jsonExcerpt(extra[0])}; known: ${known.join(", ")}`);
  const full: ResolvedFlowMatchingConfig = {
    model: FLOW_MATCHING_MODEL,
    dim: config.dim,
    hidden: config.hidden ?? [128, 128, 128],
    contextDim: config.contextDim ?? 0,
    activation: config.activation ?? "gelu",
    timeFeatures: config.timeFeatures ?? 4,
    solver: config.solver ?? "dopri5",
    odeSteps: config.odeSteps ?? 100,
    rtol: config.rtol ?? 1e-5,
    atol: config.atol ?? 1e-5,
    maxSteps: config.maxSteps ?? 10000,
    path: config.path ?? "ot",
    coupling: config.coupling ?? "none",
  };
  assertSize(where, "dim", full.dim, MAX_SIZE.dim);
  if (
    !Array.isArray(full.hidden) ||
    full.hidden.length === 0 ||
    full.hidden.length > MAX_SIZE.hiddenLayers
  )
    throw new Error(
      `${where}: hidden must be a non-empty list of at most ${MAX_SIZE.hiddenLayers} widths`,
    );
  full.hidden.forEach((h) => assertSize(where, "each hidden width", h, MAX_SIZE.width));
  if (!Number.isInteger(full.contextDim) || full.contextDim < 0 || full.contextDim > MAX_SIZE.dim)
    throw new Error(`${where}: contextDim must be a non-negative integer up to ${MAX_SIZE.dim}`);
  if (!["relu", "tanh", "gelu"].includes(full.activation))
    throw new Error(
      `${where}: activation must be relu, tanh or gelu, got ${jsonExcerpt(full.activation)}`,
    );
  assertSize(where, "timeFeatures", full.timeFeatures, 1000);
  checkOdeFields(where, full);
  return full;
}

/** The ODE and objective fields that vector and image flow-matching configs share. */
export type OdeFields = Pick<
  ResolvedFlowMatchingConfig,
  "solver" | "odeSteps" | "rtol" | "atol" | "maxSteps" | "path" | "coupling"
>;

/** Checks the shared ODE and objective fields of a resolved config; errors name the field. */
export function checkOdeFields(where: string, full: OdeFields): void {
  if (!ODE_SOLVERS.includes(full.solver))
    throw new Error(
      `${where}: solver must be one of ${ODE_SOLVERS.join(", ")}, got ${jsonExcerpt(full.solver)}`,
    );
  assertSize(where, "odeSteps", full.odeSteps, 1_000_000);
  assertSize(where, "maxSteps", full.maxSteps, 10_000_000);
  for (const k of ["rtol", "atol"] as const)
    if (!(typeof full[k] === "number" && full[k] > 0 && full[k] < 1))
      throw new Error(`${where}: ${k} must be a number in (0, 1), got ${jsonExcerpt(full[k])}`);
  if (!FM_PATHS.includes(full.path))
    throw new Error(`${where}: path must be ot or vp, got ${jsonExcerpt(full.path)}`);
  if (!FM_COUPLINGS.includes(full.coupling))
    throw new Error(`${where}: coupling must be none or ot, got ${jsonExcerpt(full.coupling)}`);
}

/** Build a flow-matching flow (a continuous flow of an MLP vector field, standard-normal base). */
export function buildFlowMatchingFlow(config: FlowMatchingConfig): Flow<any> {
  const c = resolveFlowMatchingConfig(config);
  const field = mlpVectorField({
    dim: c.dim,
    hidden: c.hidden,
    contextDim: c.contextDim,
    activation: c.activation,
    timeFeatures: c.timeFeatures,
  });
  const bijector = continuousFlow(field, {
    solver: c.solver,
    steps: c.odeSteps,
    rtol: c.rtol,
    atol: c.atol,
    maxSteps: c.maxSteps,
  });
  return new Flow({ bijector, base: standardNormal([c.dim]), config: c });
}

/** A flow-matching flow from a config without `model`. */
export const flowMatching = (c: Omit<FlowMatchingConfig, "model">) =>
  buildFlowMatchingFlow({ ...c, model: FLOW_MATCHING_MODEL });
