/**
 * Flows for vector data, built from a plain JSON config: the config alone
 * rebuilds the model (checkpoints store it beside the weights).
 *
 *   buildFlow({ model: "realnvp", dim: 2, layers: 8, hidden: [64, 64] })
 *   buildFlow({ model: "maf", dim: 32, layers: 5, hidden: [256, 256], contextDim: 10 })
 *   buildFlow({ model: "nsf", dim: 6, bins: 8, tailBound: 5 })      (neural spline flow)
 */
import type { Bijector } from "../core/types.js";
import { assertSize } from "../core/checks.js";
import { jsonExcerpt } from "../core/excerpt.js";
import { chain } from "../bijectors/chain.js";
import { affine } from "../bijectors/affine.js";
import { additiveCoupling } from "../bijectors/additive-coupling.js";
import { affineCoupling } from "../bijectors/affine-coupling.js";
import { alternatingMask, halfMask } from "../bijectors/masks.js";
import { maskedAutoregressive } from "../bijectors/masked-autoregressive.js";
import { inverseAutoregressive } from "../bijectors/inverse-autoregressive.js";
import { splineCoupling } from "../bijectors/spline-coupling.js";
import { splineAutoregressive } from "../bijectors/spline-autoregressive.js";
import { resolveSplineOptions } from "../bijectors/rational-quadratic.js";
import { actNorm } from "../bijectors/actnorm.js";
import { batchNorm } from "../bijectors/batch-norm.js";
import { standardNormal } from "../distributions/standard-normal.js";
import { diagNormal } from "../distributions/diag-normal.js";
import { gaussianMixture } from "../distributions/mixture.js";
import type { Distribution } from "../distributions/types.js";
import { Flow } from "../distributions/flow.js";

/** The vector model names. */
export const VECTOR_MODELS = ["nice", "realnvp", "maf", "iaf", "nsf", "nsf-ar"] as const;
/** One of `VECTOR_MODELS`. */
export type VectorModel = (typeof VECTOR_MODELS)[number];

/** The base distribution of a vector flow. */
export type BaseConfig =
  | { kind: "standardNormal" }
  | { kind: "diagNormal" }
  | { kind: "mixture"; components: number };

/** The plain JSON config of a vector flow. */
export interface VectorFlowConfig {
  model: VectorModel;
  /** Event dimension. */
  dim: number;
  /** Number of coupling / autoregressive layers. */
  layers?: number;
  /** Hidden widths of each conditioner. */
  hidden?: number[];
  /** Width of the context vector; 0 (default) for an unconditional flow. */
  contextDim?: number;
  activation?: "relu" | "tanh" | "gelu";
  /** Normalisation between layers: ActNorm (default for RealNVP), batch norm, or none. */
  norm?: "actnorm" | "batchnorm" | "none";
  /** Base distribution; default standard normal. */
  base?: BaseConfig;
  /** Seed for the random parts of the architecture (orders), not the weights. */
  seed?: number;
  /** Spline models (nsf, nsf-ar): bins per spline; default 8. */
  bins?: number;
  /** Spline models: the splines cover [-tailBound, tailBound], the identity outside; default 5. */
  tailBound?: number;
}

/** Fields only the spline models have; a resolved config of another model leaves them out. */
export type SplineFields = "bins" | "tailBound";

/** A config with every default filled in (what a checkpoint stores). */
export type ResolvedVectorFlowConfig = Required<Omit<VectorFlowConfig, SplineFields>> &
  Pick<VectorFlowConfig, SplineFields>;

const isSplineModel = (model: VectorModel) => model === "nsf" || model === "nsf-ar";

const DEFAULTS: Record<
  VectorModel,
  Required<Pick<VectorFlowConfig, "layers" | "hidden" | "norm">>
> = {
  nice: { layers: 4, hidden: [64, 64], norm: "none" },
  realnvp: { layers: 8, hidden: [64, 64], norm: "actnorm" },
  maf: { layers: 5, hidden: [64, 64], norm: "none" },
  iaf: { layers: 5, hidden: [64, 64], norm: "none" },
  nsf: { layers: 6, hidden: [64, 64], norm: "none" },
  "nsf-ar": { layers: 5, hidden: [64, 64], norm: "none" },
};

/** The config with every default filled in (what a checkpoint stores). */
export function resolveVectorConfig(config: VectorFlowConfig): ResolvedVectorFlowConfig {
  const where = "flow config";
  if (!config || typeof config !== "object") throw new Error(`${where}: expected an object`);
  if (!VECTOR_MODELS.includes(config.model)) {
    throw new Error(
      `${where}: unknown model ${jsonExcerpt(config.model)}; expected one of ${VECTOR_MODELS.join(", ")}`,
    );
  }
  const d = DEFAULTS[config.model];
  const full: ResolvedVectorFlowConfig = {
    model: config.model,
    dim: config.dim,
    layers: config.layers ?? d.layers,
    hidden: config.hidden ?? d.hidden,
    contextDim: config.contextDim ?? 0,
    activation: config.activation ?? "relu",
    norm: config.norm ?? d.norm,
    base: config.base ?? { kind: "standardNormal" },
    seed: config.seed ?? 0,
  };
  if (isSplineModel(full.model)) {
    const spline = resolveSplineOptions(where, { bins: config.bins, tailBound: config.tailBound });
    full.bins = spline.bins;
    full.tailBound = spline.tailBound;
  } else if (config.bins !== undefined || config.tailBound !== undefined) {
    throw new Error(
      `${where}: bins and tailBound are options of the spline models (nsf, nsf-ar), not of ${full.model}`,
    );
  }
  assertSize(where, "dim", full.dim, MAX_SIZE.dim);
  assertSize(where, "layers", full.layers, MAX_SIZE.layers);
  if (
    !Array.isArray(full.hidden) ||
    full.hidden.length === 0 ||
    full.hidden.length > MAX_SIZE.hiddenLayers
  ) {
    throw new Error(
      `${where}: hidden must be a non-empty list of at most ${MAX_SIZE.hiddenLayers} widths`,
    );
  }
  full.hidden.forEach((h) => assertSize(where, "each hidden width", h, MAX_SIZE.width));
  if (!Number.isInteger(full.contextDim) || full.contextDim < 0 || full.contextDim > MAX_SIZE.dim) {
    throw new Error(`${where}: contextDim must be a non-negative integer up to ${MAX_SIZE.dim}`);
  }
  checkBase(where, full.base);
  if ((full.model === "nice" || full.model === "realnvp" || full.model === "nsf") && full.dim < 2) {
    throw new Error(
      `${where}: coupling flows need dim >= 2 (got ${full.dim}); use maf or nsf-ar for 1-D data`,
    );
  }
  return full;
}

/**
 * Bounds on a vector flow's sizes, far above any model trained here, so that a config cannot
 * make buildFlow allocate without end (a run's config is plain JSON from disk).
 */
export const MAX_SIZE = {
  dim: 100_000,
  layers: 1_000,
  hiddenLayers: 100,
  width: 100_000,
  components: 10_000,
};

function checkBase(where: string, base: unknown): void {
  const b = base as { kind?: unknown; components?: unknown } | null;
  if (
    b === null ||
    typeof b !== "object" ||
    Array.isArray(b) ||
    !["standardNormal", "diagNormal", "mixture"].includes(b.kind as string)
  ) {
    throw new Error(
      `${where}: base must be { kind: "standardNormal" }, { kind: "diagNormal" } or { kind: "mixture", components }, got ${jsonExcerpt(base)}`,
    );
  }
  if (b.kind === "mixture") assertSize(where, "base.components", b.components, MAX_SIZE.components);
}

function normLayer(kind: "actnorm" | "batchnorm" | "none", dim: number): Bijector[] {
  if (kind === "actnorm") return [actNorm([dim])];
  if (kind === "batchnorm") return [batchNorm(dim)];
  return [];
}

function buildBase(base: BaseConfig, dim: number): Distribution<any> {
  switch (base.kind) {
    case "standardNormal":
      return standardNormal([dim]);
    case "diagNormal":
      return diagNormal([dim]);
    case "mixture":
      assertSize("flow config", "base.components", base.components, MAX_SIZE.components);
      return gaussianMixture(dim, base.components);
    default:
      throw new Error(`flow config: unknown base "${(base as { kind: string }).kind}"`);
  }
}

function buildBijector(c: ResolvedVectorFlowConfig): Bijector<any> {
  const { dim, hidden, contextDim, activation } = c;
  const layers: Bijector[] = [];
  for (let i = 0; i < c.layers; i++) {
    switch (c.model) {
      case "nice":
      case "realnvp":
      case "nsf": {
        // Alternate which half is transformed; for odd dims interleave parities too.
        const mask =
          dim === 2 || i % 4 < 2
            ? halfMask(dim, i % 2 === 1)
            : alternatingMask(dim, (i % 2) as 0 | 1);
        const opts = { dim, mask, hidden, contextDim, activation };
        if (c.model === "nsf")
          layers.push(splineCoupling({ ...opts, bins: c.bins, tailBound: c.tailBound }));
        else layers.push(c.model === "nice" ? additiveCoupling(opts) : affineCoupling(opts));
        break;
      }
      case "maf":
      case "iaf":
      case "nsf-ar": {
        // Alternate natural and reversed orders so every coordinate conditions on every other.
        const order = i % 2 === 0 ? "natural" : "reversed";
        const opts = {
          dim,
          hidden,
          contextDim,
          activation: activation === "gelu" ? "relu" : activation,
          order,
        } as const;
        if (c.model === "nsf-ar")
          layers.push(splineAutoregressive({ ...opts, bins: c.bins, tailBound: c.tailBound }));
        else
          layers.push(c.model === "maf" ? maskedAutoregressive(opts) : inverseAutoregressive(opts));
        break;
      }
    }
    if (i < c.layers - 1) layers.push(...normLayer(c.norm, dim));
  }
  // NICE ends with a learned diagonal scaling (Dinh et al. 2014, section 3.3).
  if (c.model === "nice") layers.push(affine([dim]));
  return chain(layers);
}

/** Build a vector flow from its JSON config. */
export function buildVectorFlow(config: VectorFlowConfig): Flow<any> {
  const full = resolveVectorConfig(config);
  return new Flow({
    bijector: buildBijector(full),
    base: buildBase(full.base, full.dim),
    config: full,
  });
}

/** A NICE flow (additive couplings) from a vector config without `model`. */
export const nice = (c: Omit<VectorFlowConfig, "model">) =>
  buildVectorFlow({ ...c, model: "nice" });
/** A RealNVP flow (affine couplings) from a vector config without `model`. */
export const realNVP = (c: Omit<VectorFlowConfig, "model">) =>
  buildVectorFlow({ ...c, model: "realnvp" });
/** A masked autoregressive flow from a vector config without `model`. */
export const maf = (c: Omit<VectorFlowConfig, "model">) => buildVectorFlow({ ...c, model: "maf" });
/** An inverse autoregressive flow from a vector config without `model`. */
export const iaf = (c: Omit<VectorFlowConfig, "model">) => buildVectorFlow({ ...c, model: "iaf" });
/** Neural spline flow, coupling form (NSF-C): rational-quadratic spline couplings. */
export const nsf = (c: Omit<VectorFlowConfig, "model">) => buildVectorFlow({ ...c, model: "nsf" });
/** Neural spline flow, autoregressive form (NSF-AR): a MAF with spline transformers. */
export const nsfAR = (c: Omit<VectorFlowConfig, "model">) =>
  buildVectorFlow({ ...c, model: "nsf-ar" });
