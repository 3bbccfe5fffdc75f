/**
 * Kept checkpoints: copies of a run's checkpoint at chosen steps, each a complete run
 * directory of its own (config.json + weights.safetensors, loadable by `loadRun`):
 *
 *   <dir>/checkpoints/step-0000300/config.json
 *   <dir>/checkpoints/step-0000300/weights.safetensors
 *
 * The run's own checkpoint is overwritten as training goes on; these stay, so that a
 * learning curve can be measured afterwards on data the training never looked at.
 * A copy is made in a temporary folder and renamed into place, so a kept checkpoint is
 * either complete or absent.
 */
import { node } from "../core/node-builtins.js";
import { CONFIG_FILE, WEIGHTS_FILE } from "./checkpoint.js";

export const KEPT_DIR = "checkpoints";
const NAME = /^step-(\d+)$/;

/** Copy the run's current checkpoint (saved at `step`) to <dir>/checkpoints/step-NNNNNNN. */
export async function keepCheckpoint(dir: string, step: number): Promise<string> {
  const { copyFile, mkdir, rename, rm } = node.fsp("keepCheckpoint");
  const { join } = node.path();
  const parent = join(dir, KEPT_DIR);
  const target = join(parent, `step-${String(step).padStart(7, "0")}`);
  const temp = `${target}.partial`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  for (const f of [WEIGHTS_FILE, CONFIG_FILE]) await copyFile(join(dir, f), join(temp, f));
  await rm(target, { recursive: true, force: true });
  await rename(temp, target);
  return target;
}

/** The kept checkpoints of a run, by step (none: an empty list). */
export async function listKeptCheckpoints(dir: string): Promise<{ step: number; dir: string }[]> {
  const { readdir } = node.fsp("listKeptCheckpoints");
  const { join } = node.path();
  let names: string[];
  try {
    names = await readdir(join(dir, KEPT_DIR));
  } catch {
    return [];
  }
  return names
    .map((n) => [n, NAME.exec(n)] as const)
    .filter(([, m]) => m !== null)
    .map(([n, m]) => ({ step: Number(m![1]), dir: join(dir, KEPT_DIR, n) }))
    .sort((a, b) => a.step - b.step);
}
