/**
 * clayflow: normalizing flows for TypeScript, in Node and in the browser.
 *
 * The engine preload comes first: jax-js sizes its kernel pool when it is
 * first imported, so the Node worker shim must be in place by then.
 */
import "./engine/preload.js";

export { startEngine, engineInfo, type EngineOptions, type EngineInfo } from "./engine/index.js";
// The engine's namespaces, re-exported so that importing clayflow first is natural.
export { numpy, random, tree, jit, grad, valueAndGrad, type Array } from "@jax-js/jax";

// Core abstractions
export type { Bijector, Params, InitOptions, CallOptions } from "./core/types.js";
export { splitKey } from "./core/keys.js";
export { mulberry32, makeRng, type Rng } from "./core/prng.js";

// Bijectors
export { chain, type ChainBijector } from "./bijectors/chain.js";
export { invert } from "./bijectors/invert.js";
export { affine, type AffineParams } from "./bijectors/affine.js";
export { sigmoid, logit, tanh, type ElementwiseParams } from "./bijectors/elementwise.js";
export {
  permute,
  reversePermutation,
  randomPermutation,
  type PermuteParams,
  type PermuteOptions,
} from "./bijectors/permute.js";
export { actNorm, type ActNormParams, type ActNormOptions } from "./bijectors/actnorm.js";
export { luLinear, type LuLinearParams, type LuLinearOptions } from "./bijectors/lu-linear.js";
export { batchNorm, type BatchNormParams, type BatchNormOptions } from "./bijectors/batch-norm.js";
export {
  halfMask,
  alternatingMask,
  checkerboardMask,
  channelMask,
  type Mask,
} from "./bijectors/masks.js";
export type { CouplingOptions, CouplingParams } from "./bijectors/vector-coupling.js";
export {
  additiveCoupling,
  type AdditiveCouplingOptions,
  type AdditiveCouplingParams,
} from "./bijectors/additive-coupling.js";
export {
  affineCoupling,
  type AffineCouplingOptions,
  type AffineCouplingParams,
} from "./bijectors/affine-coupling.js";
export {
  maskedAutoregressive,
  type MaskedAutoregressiveOptions,
  type MaskedAutoregressiveParams,
} from "./bijectors/masked-autoregressive.js";
export {
  inverseAutoregressive,
  type InverseAutoregressiveOptions,
} from "./bijectors/inverse-autoregressive.js";
export {
  rationalQuadraticSpline,
  resolveSplineOptions,
  splineParamCount,
  type SplineOptions,
  type ResolvedSplineOptions,
} from "./bijectors/rational-quadratic.js";
export {
  splineCoupling,
  type SplineCouplingOptions,
  type SplineCouplingParams,
} from "./bijectors/spline-coupling.js";
export {
  splineAutoregressive,
  type SplineAutoregressiveOptions,
  type SplineAutoregressiveParams,
} from "./bijectors/spline-autoregressive.js";
export { squeeze } from "./bijectors/squeeze.js";
export { scaledLogit } from "./bijectors/scaled-logit.js";
export {
  variationalDequantization,
  type VariationalDequantizationOptions,
  type VariationalDequantizationParams,
} from "./bijectors/variational-dequantization.js";
export {
  imageAffineCoupling,
  imageCouplingChannels,
  type ImageConditioner,
  type ImageAffineCouplingOptions,
} from "./bijectors/image-coupling.js";
export type { ImageCouplingMask, ImageCouplingParams } from "./bijectors/image-coupling.js";
export { multiScale, type MultiScaleLevel, type MultiScaleOptions } from "./bijectors/split.js";
export {
  continuousFlow,
  velocityAndDivergence,
  velocityAndHutchinson,
  type ContinuousFlowBijector,
  type ContinuousFlowParams,
  type DivergenceOptions,
  type OdeStats,
} from "./bijectors/continuous-flow.js";
export type { MultiScaleParams } from "./bijectors/split.js";

// Conditioner networks
export { mlp, type Mlp, type MlpOptions, type MlpParams, type Activation } from "./nn/mlp.js";
export type { DenseParams } from "./nn/mlp.js";
export {
  made,
  madeOrder,
  type Made,
  type MadeOptions,
  type MadeOrder,
  type MadeParams,
} from "./nn/made.js";
export type { MadeLayerParams } from "./nn/made.js";
export { conv2d, type Conv2d, type Conv2dOptions, type ConvParams } from "./nn/conv.js";
export type { ConvKernel } from "./nn/conv.js";
export { resnet, type Resnet, type ResnetOptions, type ResnetParams } from "./nn/resnet.js";
export type { ResBlockParams } from "./nn/resnet.js";
export {
  mlpVectorField,
  linearVectorField,
  timeEmbedding,
  type VectorField,
  type MlpVectorFieldOptions,
  type LinearFieldParams,
} from "./nn/vector-field.js";
export {
  unetVectorField,
  type UnetFieldOptions,
  type UnetFieldParams,
  type UnetBlockParams,
  type UnetLevelParams,
} from "./nn/unet-field.js";

// ODE solvers
export {
  odeint,
  ODE_SOLVERS,
  type OdeSolver,
  type OdeOptions,
  type OdeResult,
  type OdeFunction,
} from "./ode/solvers.js";

// Distributions and flows
export type {
  Distribution,
  SampleOptions,
  DistributionInitOptions,
} from "./distributions/types.js";
export { standardNormal, type StandardNormalParams } from "./distributions/standard-normal.js";
export { diagNormal, type DiagNormalParams } from "./distributions/diag-normal.js";
export { gaussianMixture, type GaussianMixtureParams } from "./distributions/mixture.js";
export { Flow, type FlowParams, type FlowSampleOptions } from "./distributions/flow.js";
export {
  buildFlow,
  resolveFlowConfig,
  type FlowConfig,
  type ResolvedFlowConfig,
} from "./models/index.js";
export {
  buildImageFlow,
  resolveImageConfig,
  imageContextDim,
  IMAGE_MODELS,
  type ImageFlowConfig,
  type ResolvedImageFlowConfig,
  type ImageModel,
} from "./models/image.js";
export {
  imageContext,
  contextSize,
  contextName,
  parseContextName,
  IMAGE_CONTEXT_KINDS,
  type ImageContextSpec,
} from "./data/image-context.js";
export {
  contextAgreement,
  sampleGivenContexts,
  contextGrid,
  type ContextAgreement,
} from "./eval/context-samples.js";
export {
  trainClassJudge,
  classAgreement,
  judgeClassSamples,
  type ClassJudge,
  type ClassAgreement,
  type JudgedSamples,
  type JudgeOptions,
  type LabelledImages,
} from "./eval/class-judge.js";
export {
  buildVectorFlow,
  resolveVectorConfig,
  nice,
  realNVP,
  maf,
  iaf,
  nsf,
  nsfAR,
  VECTOR_MODELS,
  type VectorFlowConfig,
  type ResolvedVectorFlowConfig,
  type VectorModel,
  type BaseConfig,
} from "./models/vector.js";
export type { SplineFields } from "./models/vector.js";
export {
  buildFlowMatchingFlow,
  resolveFlowMatchingConfig,
  isFlowMatchingConfig,
  flowMatching,
  FLOW_MATCHING_MODEL,
  FM_PATHS,
  FM_COUPLINGS,
  type FlowMatchingConfig,
  type ResolvedFlowMatchingConfig,
  type FlowMatchingPath,
  type FlowMatchingCoupling,
} from "./models/flow-matching.js";
export {
  buildImageFlowMatchingFlow,
  resolveImageFlowMatchingConfig,
  isImageFlowMatchingConfig,
  type ImageFlowMatchingConfig,
  type ResolvedImageFlowMatchingConfig,
} from "./models/image-flow-matching.js";

// Training
export {
  flatten,
  leafPaths,
  trainableMask,
  STATE_KEY,
  type FlatSpec,
} from "./train/flat-params.js";
export type { Flattened } from "./train/flat-params.js";
export {
  adam,
  adamw,
  makeOptimizer,
  type OptimizerConfig,
  type OptState,
} from "./train/optimizer.js";
export type { Optimizer, ResolvedOptimizerConfig, UpdateOptions } from "./train/optimizer.js";
export { makeSchedule, scheduleValue, type ScheduleConfig } from "./train/schedules.js";
export type { Schedule } from "./train/schedules.js";
export { makeTrainStep, type TrainStepConfig, type TrainStep } from "./train/train-step.js";
export type { LossFn, TrainStepResult } from "./train/train-step.js";
export { nll, bitsPerDim, dequantOffset, reverseKL } from "./train/losses.js";
export type { BitsPerDimOptions } from "./train/losses.js";
export {
  fit,
  evaluateNLL,
  type FitOptions,
  type FitResult,
  type VectorData,
  type ProgressInfo,
  type HistoryEntry,
  type TrainState,
} from "./train/fit.js";
export type { FloatVector } from "./train/fit.js";
export {
  maximumLikelihood,
  flowMatchingObjective,
  defaultObjective,
  otPairNoise,
  type TrainObjective,
  type FlowMatchingOptions,
  type BatchExtra,
} from "./train/objective.js";
export { solveAssignment } from "./core/assignment.js";
export { fitDensity, type FitDensityOptions, type FitDensityResult } from "./train/fit-density.js";
export { logProbRows } from "./eval/log-prob-rows.js";
export type { RowsOptions } from "./eval/log-prob-rows.js";
export { sampleRows, type SampleRowsOptions } from "./eval/sample-rows.js";
export { diagnose, formatReport, type DoctorReport, type DoctorOptions } from "./eval/doctor.js";
export type { DoctorCheck, Verdict } from "./eval/doctor.js";
export { imageBitsPerDim } from "./eval/image-bits.js";
export { classScores, type ClassScores } from "./eval/class-scores.js";
export * from "./eval/ood/index.js";
export { summarizeLogLik, summaryQuantile, readLogLikSummary } from "./eval/loglik-quantiles.js";
export type { LogLikSummary } from "./eval/loglik-quantiles.js";

// Data
export { sampleToy2d, TOY_DATASETS, type ToyDataset } from "./data/toy2d.js";
export { ENTROPY_8GAUSSIANS, ENTROPY_CHECKERBOARD } from "./data/toy2d-density.js";
export { parseCsv, readCsvFile, type CsvTable, type CsvOptions } from "./data/csv.js";
export type { CsvDelimiter } from "./data/csv.js";
export {
  fitStandardizer,
  standardizeTransform,
  standardizeInverse,
  standardizerLogDet,
  type Standardizer,
} from "./data/standardize.js";
export type { FloatData } from "./data/standardize.js";
export { splitRows, takeRows, type RowSplit } from "./data/split.js";
export type { SplitOptions } from "./data/split.js";
export { parseIdx, parseIdxAsync, readIdxFile, type IdxArray } from "./data/idx.js";
export type { IdxOptions } from "./data/idx.js";
export {
  loadImageDataset,
  locateImageDataset,
  IMAGE_DATASET_NAMES,
  DatasetNotFoundError,
  type ImageDataset,
  type ImageDatasetName,
  type ImageDatasetOptions,
} from "./data/image-datasets.js";
export type { ImageSplit, LocatedSplit } from "./data/image-datasets.js";
export {
  dequantize,
  logitTransform,
  logitInverse,
  bitsPerDimFromLogProb,
} from "./data/dequantize.js";
export {
  makeAnomalyTable,
  writeAnomalyTable,
  anomalyTableLogDensity,
  type AnomalyTable,
} from "./data/anomaly-table.js";
export type { AnomalyTableOptions } from "./data/anomaly-table.js";

// Files and pictures
export { encodeSafetensors, decodeSafetensors, type DecodedSafetensors } from "./io/safetensors.js";
export {
  SAFETENSORS_DTYPES,
  type SafetensorsTensor,
  type SafetensorsDType,
  type TensorData,
} from "./io/safetensors.js";
export { writeFileAtomic } from "./io/atomic-write.js";
export type { AtomicWriteOptions } from "./io/atomic-write.js";
export {
  saveRun,
  loadRun,
  encodeRun,
  decodeRun,
  type RunConfig,
  type LoadedRun,
  type RunFiles,
} from "./io/checkpoint.js";
export type { DataDescription, DataSource, SaveRunInput, SaveRunOptions } from "./io/checkpoint.js";
export { densityFigure, samplesFigure, lossFigure } from "./io/flow-plots.js";
export type { LossPoint } from "./io/flow-plots.js";
export { encodePng, encodePngAsync } from "./io/png.js";
export type { Image8, PngOptions } from "./io/png.js";
export {
  linePlot,
  scatterPlot,
  heatMap,
  histogramPlot,
  imageGrid,
  composePanels,
  savePng,
} from "./io/plot.js";
export type {
  HeatMapOptions,
  HistogramGroup,
  HistogramOptions,
  ImageGridOptions,
  LineSeries,
  PlotOptions,
  ScatterOptions,
} from "./io/plot.js";
export { Canvas, type RGB } from "./io/canvas.js";
export type { FetchLike, FetchResponseLike } from "./data/download.js";
export type { TrainingOptionsJSON, TrainingProgress } from "./io/training-options.js";
