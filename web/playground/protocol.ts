/** Messages between the playground page and its training worker (plain, structured-clonable). */
import type { VectorFlowConfig } from "../../src/index.js";

export type EngineChoice = "wasm" | "webgpu";

/** An RGB raster drawn by the library's plot functions (io/plot.ts), sent as bytes. */
export interface Picture { width: number; height: number; rgb: Uint8Array }

export interface TrainRequest {
  type: "train";
  device: EngineChoice;
  model: VectorFlowConfig;
  /** Row-major [rows, 2] points in the data's own units. */
  data: Float32Array;
  dataName: string;
  steps: number;
  lr: number;
  batchSize: number;
  temperature: number;
}

export type ToWorker =
  | TrainRequest
  | { type: "stop" }
  | { type: "temperature"; temperature: number }
  | { type: "save" }
  | { type: "load"; device: EngineChoice; config: string; weights: Uint8Array; temperature: number };

export interface Snapshot {
  step: number;
  totalSteps: number;
  losses: { step: number; loss: number }[];
  density: Picture;
  samples: Picture;
  latent: Picture;
  loss: Picture | null;
}

export type FromWorker =
  | { type: "started"; device: string; threads: number }
  | { type: "progress"; step: number; totalSteps: number; loss: number; stepsPerSecond: number }
  | { type: "snapshot"; snapshot: Snapshot }
  | { type: "samples"; samples: Picture }
  | { type: "done"; steps: number; seconds: number; validNll: number | null }
  | { type: "saved"; config: string; weights: Uint8Array }
  | { type: "error"; message: string };
