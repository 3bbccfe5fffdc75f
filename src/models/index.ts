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
import {
  buildImageFlowMatchingFlow,
  isImageFlowMatchingConfig,
  resolveImageFlowMatchingConfig,
  type ImageFlowMatchingConfig,
  type ResolvedImageFlowMatchingConfig,
} from "./image-flow-matching.js";
import {
  buildFlowMatchingFlow,
  isFlowMatchingConfig,
  resolveFlowMatchingConfig,
  type FlowMatchingConfig,
  type ResolvedFlowMatchingConfig,
} from "./flow-matching.js";

/** The plain JSON config of any flow `buildFlow` builds. */
export type FlowConfig =
  | VectorFlowConfig
  | ImageFlowConfig
  | FlowMatchingConfig
  | ImageFlowMatchingConfig;
/** A `FlowConfig` with every default filled in. */
export type ResolvedFlowConfig =
  | ResolvedVectorFlowConfig
  | ResolvedImageFlowConfig
  | ResolvedFlowMatchingConfig
  | ResolvedImageFlowMatchingConfig;

/** A config with every default filled in (vector or image), checked. */
export function resolveFlowConfig(config: FlowConfig): ResolvedFlowConfig {
  if (isImageFlowMatchingConfig(config)) return resolveImageFlowMatchingConfig(config);
  if (isFlowMatchingConfig(config)) return resolveFlowMatchingConfig(config);
  return isImageConfig(config)
    ? resolveImageConfig(config)
    : resolveVectorConfig(config as VectorFlowConfig);
}

/** Any flow, vector, image or flow-matching, from its plain JSON config. */
export function buildFlow(config: FlowConfig): Flow<any, any> {
  if (isImageFlowMatchingConfig(config)) return buildImageFlowMatchingFlow(config);
  if (isFlowMatchingConfig(config)) return buildFlowMatchingFlow(config);
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
  if (isImageFlowMatchingConfig(config)) return config.classes;
  return isImageConfig(config)
    ? imageContextDim(config)
    : (config as ResolvedVectorFlowConfig).contextDim;
}
