import type { Command } from "../args.js"; export const COMMANDS: Record<string, Command> = {};
