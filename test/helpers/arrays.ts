import { numpy as np, random, tree, type Array, type DType } from "@jax-js/jax";
import type { Params } from "../../src/core/types.js";
import { splitKey } from "../../src/core/keys.js";

/** Read an array as a flat list of numbers (consumes it). */
export async function values(x: Array): Promise<number[]> {
  return globalThis.Array.from((await x.data()) as ArrayLike<number>);
}

/** max |a - b| / (atol + rtol |b|) <= 1, elementwise; reports the worst entry. */
export function assertClose(
  a: number[],
  b: number[],
  atol: number,
  rtol: number,
  what: string,
): void {
  if (a.length !== b.length) throw new Error(`${what}: lengths ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const tol = atol + rtol * Math.abs(b[i]);
    if (!(Math.abs(a[i] - b[i]) <= tol)) {
      throw new Error(
        `${what}: entry ${i}: ${a[i]} vs ${b[i]} (tolerance ${tol.toExponential(2)})`,
      );
    }
  }
}

/** Sample inputs of shape `shape` from the entry's domain (consumes key). */
export function sampleInputs(
  key: Array,
  shape: number[],
  dtype: DType,
  domain?: [number, number],
): Array {
  if (domain)
    return random.uniform(key, shape, { minval: domain[0], maxval: domain[1] }).astype(dtype);
  return random.normal(key, shape).astype(dtype);
}

/** Add `scale` * N(0, 1) to every leaf of `params` (consumes both). */
export function perturbParams(params: Params, key: Array, scale = 0.3): Params {
  const leaves = tree.leaves(params) as Array[];
  const keys = splitKey(key, Math.max(leaves.length, 1));
  let i = 0;
  const out = tree.map((leaf: Array) => {
    const k = keys[i++];
    return leaf.ref.add(random.normal(k, leaf.shape).astype(leaf.dtype).mul(scale));
  }, params) as Params;
  tree.dispose(params);
  for (let j = i; j < keys.length; j++) keys[j].dispose();
  return out;
}

export const f32 = np.float32;
export const f64 = np.float64;
