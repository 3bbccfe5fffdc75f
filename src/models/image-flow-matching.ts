/**
 * The flow-matching model for images [H, W, C]: the same logit preprocessing as Glow and
 * RealNVP (dequantised pixels x in [0, 1) -> logit(alpha + (1 - 2 alpha) x), counted in the
 * log-det), then a continuous flow whose vector field is a U-Net with time (and class)
 * embedding (nn/unet-field.ts), trained by conditional flow matching in logit space.
 * `logProb` is the density of x, so bits/dim compare with the discrete image flows'.
 *
 * The divergence of a 784-dimensional field is Hutchinson's estimate by default (`probes`
 * Rademacher probes from `probeSeed`): an unbiased, deterministic estimate of the exact
 * log-density, whose probe noise adds to the spread of a test set's bits/dim (so the usual
 * standard error over images covers it). `divergence: "exact"` costs dim JVPs per evaluation.
 *
 *   buildFlow({ model: "flow-matching", shape: [28, 28, 1], hidden: 32, classes: 10 })
 */
import { assertSize } from "../core/checks.js";
import { jsonExcerpt } from "../core/excerpt.js";
import { chain } from "../bijectors/chain.js";
import { continuousFlow } from "../bijectors/continuous-flow.js";
import { scaledLogit } from "../bijectors/scaled-logit.js";
import { standardNormal } from "../distributions/standard-normal.js";
import { Flow } from "../distributions/flow.js";
import { unetVectorField } from "../nn/unet-field.js";
import type { OdeSolver } from "../ode/solvers.js";
import { DEFAULT_LOGIT_ALPHA } from "../data/dequantize.js";
import {
  checkOdeFields,
  FLOW_MATCHING_MODEL,
  type FlowMatchingCoupling,
  type FlowMatchingPath,
} from "./flow-matching.js";

/** The plain JSON config of an image flow-matching model. */
export interface ImageFlowMatchingConfig {
  model: typeof FLOW_MATCHING_MODEL;
  /** Image shape [H, W, C]; H and W divisible by 2^(levels - 1). */
  shape: number[];
  /** U-Net channels at full resolution (doubled per level). Default 32. */
  hidden?: number;
  /** U-Net resolutions. Default 2. */
  levels?: number;
  /** Residual blocks per level and direction. Default 1. */
  blocks?: number;
  /** Classes of a class-conditional model (context = one-hot label); default 0. */
  classes?: number;
  /** Sinusoidal time frequencies; default 8. */
  timeFeatures?: number;
  /** Logit preprocessing: y = logit(alpha + (1 - 2 alpha) x). Default 0.05. */
  logitAlpha?: number;
  /** ODE solver of logProb and sampling; default "dopri5". */
  solver?: OdeSolver;
  /** Steps of the fixed-step solvers; default 50. */
  odeSteps?: number;
  /** dopri5 tolerances; default 1e-4 each (images: the log-det's error is far below the probe noise). */
  rtol?: number;
  atol?: number;
  /** dopri5: at most this many steps per solve; default 10000. */
  maxSteps?: number;
  /** "hutchinson" (default) or "exact" (dim JVPs per evaluation: small images only). */
  divergence?: "hutchinson" | "exact";
  /** Hutchinson probes per solve; default 1. */
  probes?: number;
  /** Seed of the probes; default 0. */
  probeSeed?: number;
  /** Training path; default "ot". */
  path?: FlowMatchingPath;
  /** Training coupling: "none" (the only one for images in this version). */
  coupling?: FlowMatchingCoupling;
}

/** An image flow-matching config with every default filled in. */
export type ResolvedImageFlowMatchingConfig = Required<ImageFlowMatchingConfig>;

/** Whether a config is an image flow-matching config (model "flow-matching" with a `shape`). */
export function isImageFlowMatchingConfig(c: unknown): c is ImageFlowMatchingConfig {
  return (
    !!c &&
    typeof c === "object" &&
    (c as { model?: unknown }).model === FLOW_MATCHING_MODEL &&
    globalThis.Array.isArray((c as { shape?: unknown }).shape)
  );
}

const KNOWN = [
  "model",
  "shape",
  "hidden",
  "levels",
  "blocks",
  "classes",
  "timeFeatures",
  "logitAlpha",
  "solver",
  "odeSteps",
  "rtol",
  "atol",
  "maxSteps",
  "divergence",
  "probes",
  "probeSeed",
  "path",
  "coupling",
];

/** The config with every default filled in, checked; errors name the field. */
export function resolveImageFlowMatchingConfig(
  config: ImageFlowMatchingConfig,
): ResolvedImageFlowMatchingConfig {
  const where = "image flow config (flow-matching)";
  const extra = Object.keys(config).filter((k) => !KNOWN.includes(k));
  if (extra.length)
    throw new Error(`${where}: unknown field ${jsonExcerpt(extra[0])}; known: ${KNOWN.join(", ")}`);
  const full: ResolvedImageFlowMatchingConfig = {
    model: FLOW_MATCHING_MODEL,
    shape: config.shape,
    hidden: config.hidden ?? 32,
    levels: config.levels ?? 2,
    blocks: config.blocks ?? 1,
    classes: config.classes ?? 0,
    timeFeatures: config.timeFeatures ?? 8,
    logitAlpha: config.logitAlpha ?? DEFAULT_LOGIT_ALPHA,
    solver: config.solver ?? "dopri5",
    odeSteps: config.odeSteps ?? 50,
    rtol: config.rtol ?? 1e-4,
    atol: config.atol ?? 1e-4,
    maxSteps: config.maxSteps ?? 10000,
    divergence: config.divergence ?? "hutchinson",
    probes: config.probes ?? 1,
    probeSeed: config.probeSeed ?? 0,
    path: config.path ?? "ot",
    coupling: config.coupling ?? "none",
  };
  if (full.shape.length !== 3)
    throw new Error(`${where}: shape must be [H, W, C], got ${jsonExcerpt(full.shape)}`);
  full.shape.forEach((d) => assertSize(where, "each shape entry", d, 4096));
  assertSize(where, "hidden", full.hidden, 100_000);
  assertSize(where, "levels", full.levels, 12);
  assertSize(where, "blocks", full.blocks, 1000);
  assertSize(where, "timeFeatures", full.timeFeatures, 1000);
  assertSize(where, "probes", full.probes, 10_000);
  if (!Number.isInteger(full.classes) || full.classes < 0 || full.classes > 100_000)
    throw new Error(`${where}: classes must be a non-negative integer up to 100000`);
  if (!Number.isInteger(full.probeSeed))
    throw new Error(`${where}: probeSeed must be an integer, got ${jsonExcerpt(full.probeSeed)}`);
  const f = 2 ** (full.levels - 1);
  if (full.shape[0] % f !== 0 || full.shape[1] % f !== 0)
    throw new Error(
      `${where}: ${full.levels} levels halve the image ${full.levels - 1} times, so H and W must be divisible by ${f}; got [${full.shape.join(", ")}]`,
    );
  if (!(typeof full.logitAlpha === "number" && full.logitAlpha >= 0 && full.logitAlpha < 0.5))
    throw new Error(
      `${where}: logitAlpha must be in [0, 0.5), got ${jsonExcerpt(full.logitAlpha)}`,
    );
  checkOdeFields(where, full);
  if (full.divergence !== "hutchinson" && full.divergence !== "exact")
    throw new Error(
      `${where}: divergence must be hutchinson or exact, got ${jsonExcerpt(full.divergence)}`,
    );
  if (full.coupling === "ot")
    throw new Error(
      `${where}: coupling ot (minibatch optimal transport) is for vector data in this version; use none`,
    );
  return full;
}

/** An image flow-matching flow: logit preprocessing, then a continuous flow of a U-Net field. */
export function buildImageFlowMatchingFlow(config: ImageFlowMatchingConfig): Flow<any, any> {
  const c = resolveImageFlowMatchingConfig(config);
  const field = unetVectorField({
    shape: c.shape,
    hidden: c.hidden,
    levels: c.levels,
    blocks: c.blocks,
    contextDim: c.classes,
    timeFeatures: c.timeFeatures,
  });
  const cnf = continuousFlow(
    field,
    { solver: c.solver, steps: c.odeSteps, rtol: c.rtol, atol: c.atol, maxSteps: c.maxSteps },
    c.divergence === "exact"
      ? { kind: "exact" }
      : { kind: "hutchinson", probes: c.probes, seed: c.probeSeed },
  );
  const bijector = chain([scaledLogit(c.shape, c.logitAlpha), cnf]);
  return new Flow({ bijector, base: standardNormal(c.shape), config: c });
}
