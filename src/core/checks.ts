/** Input validation that speaks to the user: what was wrong and what was expected. */
import type { Array } from "@jax-js/jax";
import { jsonExcerpt } from "./excerpt.js";

const fmt = (shape: readonly (number | string)[]) => `[${shape.join(", ")}]`;

/**
 * Check that `x` has shape [batch, ...eventShape] (any batch size) and, when
 * given, that `cond` has shape [batch, contextDim]. Throws an error that names
 * the expected shape. Does not consume the arrays.
 */
export function checkInput(
  where: string,
  eventShape: readonly number[],
  contextDim: number,
  x: Array,
  cond?: Array,
): void {
  const want = ["batch", ...eventShape];
  const ok = x.ndim === want.length && eventShape.every((d, i) => x.shape[i + 1] === d);
  if (!ok) {
    throw new Error(`${where}: expected input of shape ${fmt(want)}, got ${fmt(x.shape)}`);
  }
  if (contextDim > 0) {
    if (cond === undefined) {
      throw new Error(
        `${where}: this layer is conditional: pass a context of shape ${fmt([x.shape[0], contextDim])}`,
      );
    }
    if (cond.ndim !== 2 || cond.shape[0] !== x.shape[0] || cond.shape[1] !== contextDim) {
      throw new Error(
        `${where}: expected context of shape ${fmt([x.shape[0], contextDim])}, got ${fmt(cond.shape)}`,
      );
    }
  }
}

export function assertPositiveInt(
  where: string,
  name: string,
  value: unknown,
): asserts value is number {
  if (!Number.isInteger(value) || (value as number) < 1) {
    throw new Error(`${where}: ${name} must be a positive integer, got ${jsonExcerpt(value)}`);
  }
}

/**
 * A size from a config (layers, widths, dimensions) that must be a positive integer no larger
 * than `max`: a config is plain JSON, and a corrupt or hostile one with `layers: 1e9` would
 * otherwise build objects until the process runs out of memory.
 */
export function assertSize(
  where: string,
  name: string,
  value: unknown,
  max: number,
): asserts value is number {
  assertPositiveInt(where, name, value);
  if ((value as number) > max) {
    throw new Error(
      `${where}: ${name} is ${value}, more than the ${max} a flow here can have (a corrupt config, or a model far too large to build)`,
    );
  }
}
