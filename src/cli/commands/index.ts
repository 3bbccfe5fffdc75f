import type { Command } from "../args.js";
import { train } from "./train.js";
import { sample } from "./sample.js";
import { score } from "./score.js";
import { demo } from "./demo.js";
import { doctor } from "./doctor.js";

export const COMMANDS: Record<string, Command> = { train, sample, score, doctor, demo };
