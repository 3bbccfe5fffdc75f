/**
 * Ctrl-C and kill during training: the first SIGINT or SIGTERM stops the run cleanly after the
 * current step (its checkpoint is saved), and the command then exits 128 + the signal's number,
 * the shell's convention (130 for Ctrl-C, 143 for kill), so scripts can tell "stopped" from
 * "failed". A second signal gets Node's default: the process ends at once.
 */
import { constants } from "node:os";

/** A run stopped by a signal; main exits with `exitCode`. */
export class Interrupted extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface InterruptWatch {
  /** Aborted by the first SIGINT or SIGTERM (pass it to `fit`). */
  signal: AbortSignal;
  /** Remove the handlers (call when training ends, however it ends). */
  release(): void;
  /** The error to throw after an aborted run, with the exit code of the signal received. */
  error(message: string): Interrupted;
}

export function watchInterrupts(): InterruptWatch {
  const abort = new AbortController();
  let received: NodeJS.Signals = "SIGINT";
  const on = (sig: NodeJS.Signals) => {
    received = sig;
    abort.abort();
  };
  process.once("SIGINT", on);
  process.once("SIGTERM", on);
  return {
    signal: abort.signal,
    release: () => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
    },
    error: (message) => new Interrupted(message, 128 + constants.signals[received]),
  };
}
