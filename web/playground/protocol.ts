/** Messages between the playground page and its training worker (plain, structured-clonable). */
import type { VectorFlowConfig } from "../../src/index.js";

export type EngineChoice = "wasm" | "webgpu";

/** An RGB raster drawn by the library's plot functions (io/plot.ts), sent as bytes. */
export interface Picture {
  width: number;
  height: number;
  rgb: Uint8Array;
}

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
  | {
      type: "load";
      device: EngineChoice;
      config: string;
      weights: Uint8Array;
      temperature: number;
    };

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

/** What the Images tab's worker knows about its bundled model (model.json, written by scripts/pack-playground-model.ts). */
export interface ImageModelManifest {
  name: string;
  about: string;
  command: string | null;
  classes: string[];
  shape: number[];
  trainedSteps: number;
  trainingSeconds: number;
  test: { bitsPerDim: number; ci95: number; images: number; given: string };
  marginalTestBitsPerDim: number;
  classifierTestAccuracy: number;
  ood: {
    score: string;
    /** Measured in Node at packing; the page recalibrates on `validation` with its own compressor. */
    threshold: number;
    falseAlarmRate: number;
    calibration: string;
    seed: number;
    fashionTestFlagged: number;
    mnistTestFlagged: number;
    auroc: number;
    testImages: number;
    validation: { file: string; count: number; bitsPerDim: number[] };
  };
  garments: {
    file: string;
    count: number;
    labels: number[];
    bitsPerDim: number[];
    complexity: number[];
  };
}

/** Images in [0, 1], [count, 28, 28] row-major. */
export interface Images {
  pixels: Float32Array;
  count: number;
  cols: number;
}

export interface ImageVerdict {
  bitsPerDim: number;
  complexity: number;
  score: number;
  threshold: number;
  outOfDistribution: boolean;
  /** p(class | image), one per class. */
  posterior: number[];
}

export type ToImages =
  | { type: "open"; device: EngineChoice; base: string }
  | { type: "grid"; temperature: number; seed: number }
  | { type: "interpolate"; a: number; b: number }
  | { type: "restyle"; a: number }
  | { type: "score"; pixels: Uint8Array };

export type FromImages =
  | {
      type: "ready";
      device: string;
      threads: number;
      manifest: ImageModelManifest;
      garments: Uint8Array;
      threshold: number;
    }
  | { type: "grid"; images: Images; temperature: number }
  | { type: "interpolation"; images: Images; a: number; b: number }
  | { type: "restyle"; images: Images; a: number }
  | { type: "score"; verdict: ImageVerdict }
  | { type: "error"; message: string };
