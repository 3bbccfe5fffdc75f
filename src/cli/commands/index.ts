import type { Command } from "../args.js";
import { train } from "./train.js";
import { sample } from "./sample.js";
import { score } from "./score.js";
import { demo } from "./demo.js";
import { doctor } from "./doctor.js";
import { evaluate } from "./eval.js";
import { interpolate } from "./interpolate.js";
import { ood } from "./ood.js";
import { exportRun } from "./export.js";

export const COMMANDS: Record<string, Command> = {
  train,
  sample,
  score,
  eval: evaluate,
  interpolate,
  ood,
  doctor,
  export: exportRun,
  demo,
};
