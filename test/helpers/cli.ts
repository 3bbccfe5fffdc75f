/**
 * Running the compiled `clayflow` command from the tests, as a user would: a child process with
 * one engine thread (so that parallel test files share the two cores fairly).
 */
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The compiled CLI entry point in the test build. */
export const CLI = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "src",
  "cli",
  "main.js",
);

/** The environment the CLI runs with: this process's, on one engine thread. */
export const CLI_ENV = { ...process.env, CLAYFLOW_THREADS: "1" };

/** What a finished command gave: its exit code (1 when it was killed) and its output. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `clayflow ...args` to its end (or `timeoutMs`); never rejects. */
export function clayflow(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: CLI_ENV, timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = (err as { code?: unknown } | null)?.code;
        resolve({ code: err ? (typeof code === "number" ? code : 1) : 0, stdout, stderr });
      },
    );
  });
}
