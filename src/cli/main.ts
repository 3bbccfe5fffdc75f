#!/usr/bin/env node
/**
 * The `clayflow` command. Each sub-command lives in commands/; this file only
 * dispatches and turns failures into one clear sentence and a non-zero exit
 * (with the stack trace under --verbose).
 */
import "../engine/preload.js";
import { UsageError, helpText, parseArgs } from "./args.js";
import { COMMANDS } from "./commands/index.js";
import { oneLine } from "../core/excerpt.js";
import { DatasetNotFoundError } from "../data/image-datasets.js";
import { explainEngineError } from "./engine-errors.js";
import { Interrupted } from "./interrupt.js";
import { clayflowVersion } from "./version.js";

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  return [
    "clayflow: normalizing flows: train, sample, score and check models",
    "",
    "usage: clayflow <command> [options]     (clayflow <command> --help for its options)",
    "       clayflow --version",
    "",
    "commands:",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.spec.summary}`),
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "-h" || name === "--help" || name === "help") {
    process.stdout.write(mainHelp() + "\n");
    return name ? 0 : 2;
  }
  if (name === "--version" || name === "-V") {
    process.stdout.write(`clayflow ${clayflowVersion()} (Node ${process.versions.node})\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command)
    throw new UsageError(
      `unknown command "${name}"; commands: ${Object.keys(COMMANDS).join(", ")}`,
    );
  const options = parseArgs(command.spec, rest);
  if (options === null) {
    process.stdout.write(helpText(command.spec) + "\n");
    return 0;
  }
  return (await command.run(options)) ?? 0;
}

const verbose = process.argv.includes("--verbose");
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err));
    const message = explainEngineError(e.message) ?? e.message;
    // One short line, whatever the input quoted in it; the missing-dataset advice is a list on purpose.
    process.stderr.write(
      `clayflow: ${e instanceof DatasetNotFoundError ? message : oneLine(message, 290)}\n`,
    );
    if (verbose) process.stderr.write(`${e.stack}\n`);
    else if (!(e instanceof UsageError) && !(e instanceof Interrupted))
      process.stderr.write("(run with --verbose for details)\n");
    // 2: the command line was wrong; 128 + signal: stopped by Ctrl-C or kill (130 for SIGINT); 1: anything else.
    process.exitCode = e instanceof UsageError ? 2 : e instanceof Interrupted ? e.exitCode : 1;
  },
);
