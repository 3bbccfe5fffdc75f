/**
 * Log-density of many rows held in host memory, evaluated in fixed-size chunks
 * (one compiled shape; the last chunk is padded and the padding dropped).
 */
import { numpy as np, tree, type Array } from "@jax-js/jax";
import { maybeJit, readyForEager } from "../core/maybe-jit.js";
import type { Flow, FlowParams } from "../distributions/flow.js";
import { defaultChunkRows } from "./chunk-rows.js";

/** Options of `logProbRows`. */
export interface RowsOptions {
  /** Context rows aligned with x, [rows, contextDim] row-major. */
  cond?: Float32Array;
  /** Rows per chunk. Default 2048 rows of a vector flow, 16 images of an image flow (chunk-rows.ts). */
  batch?: number;
}

/** Copy rows [start, start + batch) of `data` (rows of `shape`), zero-padding past the end. */
function chunk(data: Float32Array, shape: number[], start: number, batch: number): Array {
  const width = shape.reduce((a, d) => a * d, 1);
  const out = new Float32Array(batch * width);
  out.set(data.subarray(start * width, Math.min(data.length, (start + batch) * width)));
  return np.array(out).reshape([batch, ...shape]);
}

/** log p(x) for every row of `x` ([rows, dim] row-major). Does not consume `params`. */
export async function logProbRows(
  flow: Flow<any, any>,
  params: FlowParams<any, any>,
  x: Float32Array,
  options: RowsOptions = {},
): Promise<Float64Array> {
  const dim = flow.eventShape.reduce((a, d) => a * d, 1);
  if (x.length % dim !== 0)
    throw new Error(
      `logProbRows: ${x.length} values is not a whole number of rows of width ${dim}`,
    );
  const rows = x.length / dim;
  const { cond } = options;
  if (flow.contextDim > 0 && (!cond || cond.length !== rows * flow.contextDim)) {
    throw new Error(`logProbRows: this flow needs a context of ${flow.contextDim} values per row`);
  }
  const batch = Math.max(1, Math.min(options.batch ?? defaultChunkRows(flow, 2048), rows));
  const logProb = maybeJit(
    (p: FlowParams<any, any>, xb: Array, cb?: Array) => flow.logProb(p, xb, cb),
    flow.jittable,
  );
  const out = new Float64Array(rows);
  try {
    for (let start = 0; start < rows; start += batch) {
      const xb = chunk(x, flow.eventShape, start, batch);
      const cb = cond ? chunk(cond, [flow.contextDim], start, batch) : undefined;
      await readyForEager(flow.jittable, params, xb, cb);
      const lp = cb ? logProb(tree.ref(params), xb, cb) : logProb(tree.ref(params), xb);
      const values = (await lp.data()) as Float32Array;
      out.set(values.subarray(0, Math.min(batch, rows - start)), start);
    }
  } finally {
    logProb.dispose();
  }
  return out;
}
