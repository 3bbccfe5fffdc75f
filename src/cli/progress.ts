/**
 * Progress for long work: a one-line bar with step, loss, speed and ETA on a
 * terminal; plain log lines (every few seconds) when the output is a file or pipe.
 * Hand-written because it is this small: a bar package (cli-progress, progress) would add a
 * dependency for the same line and still need the pipe mode and our fields (tested in
 * test/cli-parts.test.ts).
 */
import type { WriteStream } from "node:tty";

export interface ProgressUpdate {
  step: number;
  total: number;
  loss?: number;
  validLoss?: number;
  stepsPerSecond?: number;
  etaSeconds?: number;
  skipped?: number;
}

const fmtTime = (s: number) => {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${Math.round(s)}s`;
};

export function formatProgress(u: ProgressUpdate): string {
  const parts = [`step ${u.step}/${u.total}`];
  if (u.loss !== undefined) parts.push(`loss ${u.loss.toFixed(4)}`);
  if (u.validLoss !== undefined) parts.push(`valid ${u.validLoss.toFixed(4)}`);
  // Unknown on the first step (it compiles the training step): say so instead of guessing.
  if (u.stepsPerSecond !== undefined)
    parts.push(
      Number.isFinite(u.stepsPerSecond) ? `${u.stepsPerSecond.toFixed(1)} steps/s` : "? steps/s",
    );
  if (u.etaSeconds !== undefined) parts.push(`ETA ${fmtTime(u.etaSeconds)}`);
  if (u.skipped) parts.push(`skipped ${u.skipped}`);
  return parts.join("  ");
}

export class Progress {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #label: string;
  readonly #logEveryMs: number;
  #lastLog = 0;
  #lastLine = "";

  constructor(label: string, out: NodeJS.WriteStream = process.stderr, logEverySeconds = 5) {
    this.#out = out;
    this.#tty = !!out.isTTY;
    this.#label = label;
    this.#logEveryMs = logEverySeconds * 1000;
  }

  update(u: ProgressUpdate): void {
    const text = formatProgress(u);
    if (this.#tty) {
      const width = Math.max(
        10,
        ((this.#out as WriteStream).columns ?? 100) - text.length - this.#label.length - 6,
      );
      const filled = Math.round(
        (Math.min(u.step, u.total) / Math.max(u.total, 1)) * Math.min(width, 30),
      );
      const bar = `[${"#".repeat(filled)}${".".repeat(Math.max(0, Math.min(width, 30) - filled))}]`;
      this.#out.write(`\r${this.#label} ${bar} ${text}\x1b[K`);
      this.#lastLine = text;
    } else {
      const now = Date.now();
      if (now - this.#lastLog >= this.#logEveryMs || u.step === u.total) {
        this.#out.write(`${this.#label}: ${text}\n`);
        this.#lastLog = now;
      }
    }
  }

  /** A line of its own before the progress lines (what their numbers mean). */
  note(message: string): void {
    this.#out.write(`${message}\n`);
  }

  /** End the bar line (terminal) so later output starts on a fresh line. */
  done(message?: string): void {
    if (this.#tty && this.#lastLine) this.#out.write("\n");
    if (message) this.#out.write(`${message}\n`);
  }
}
