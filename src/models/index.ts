/**
 * Any flow from its JSON config: vector models (`dim`) or image models (`shape`).
 * A checkpoint's config.json holds the resolved config, and this rebuilds it.
 */
import type { Flow } from "../distributions/flow.js";
import {
  buildVectorFlow,
  resolveVectorConfig,
  type ResolvedVectorFlowConfig,
  type VectorFlowConfig,
} from "./vector.js";
import {
  buildImageFlow,
  imageContextDim,
  isImageConfig,
  resolveImageConfig,
  type ImageFlowConfig,
  type ResolvedImageFlowConfig,
} from "./image.js";

/** The plain JSON config of any flow `buildFlow` builds. */
export type FlowConfig = VectorFlowConfig | ImageFlowConfig;
/** A `FlowConfig` with every default filled in. */
export type ResolvedFlowConfig = ResolvedVectorFlowConfig | ResolvedImageFlowConfig;

/** A config with every default filled in (vector or image), checked. */
export function resolveFlowConfig(config: FlowConfig): ResolvedFlowConfig {
  return isImageConfig(config)
    ? resolveImageConfig(config)
    : resolveVectorConfig(config as VectorFlowConfig);
}

/** Any flow, vector or image, from its plain JSON config. */
export function buildFlow(config: FlowConfig): Flow<any, any> {
  return isImageConfig(config)
    ? buildImageFlow(config)
    : buildVectorFlow(config as VectorFlowConfig);
}

/** Number of values in one event (the data's dimension). */
export function configDim(config: ResolvedFlowConfig): number {
  return isImageConfig(config)
    ? config.shape.reduce((a, d) => a * d, 1)
    : (config as ResolvedVectorFlowConfig).dim;
}

/** Context width: a vector model's contextDim; an image model's classes or context image size. */
export function configContextDim(config: ResolvedFlowConfig): number {
  return isImageConfig(config)
    ? imageContextDim(config)
    : (config as ResolvedVectorFlowConfig).contextDim;
}
