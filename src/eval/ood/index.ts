/** Out-of-distribution detection: threshold-free metrics, input complexity (Serra et al. 2020), typicality test (Nalisnick et al. 2019), the Mahalanobis baseline. */
export { auroc, aupr, fprAtTpr, oodMetrics, type OodMetrics } from "./metrics.js";
export {
  complexityBitsPerDim,
  complexityBitsPerDimAsync,
  complexityOfImages,
  complexityCorrectedScores,
} from "./complexity.js";
export {
  fitTypicality,
  typicalityStatistics,
  flagBatches,
  type TypicalityTest,
  type TypicalityOptions,
} from "./typicality.js";
export {
  fitMahalanobis,
  mahalanobisScores,
  type MahalanobisModel,
  type MahalanobisOptions,
} from "./mahalanobis.js";
export { thresholdAtFalseAlarmRate } from "./threshold.js";
