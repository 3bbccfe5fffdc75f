/**
 * How many rows a jitted chunk evaluates when the caller names no count. A jitted program
 * keeps every intermediate alive until it ends, and wasm has one 4 GiB memory: an image
 * flow's intermediates are many values per pixel (a Glow forward on 64 images peaks near
 * 2 GB; 2,000 images of even a tiny Glow in one chunk exceed the memory), so images go 16 at
 * a time, while vectors go in the thousands, where per-chunk overhead matters more.
 */
import type { Flow } from "../distributions/flow.js";

/** Images per chunk in evaluation and sampling. */
export const IMAGE_CHUNK = 16;

/** The default rows per chunk for `flow`: IMAGE_CHUNK for image flows, `vectorRows` otherwise. */
export function defaultChunkRows(
  flow: Pick<Flow<any, any>, "eventShape">,
  vectorRows: number,
): number {
  return flow.eventShape.length > 1 ? IMAGE_CHUNK : vectorRows;
}
