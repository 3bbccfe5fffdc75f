/**
 * `invert(b)` swaps a bijector's directions: its forward is b's inverse. This
 * turns a masked autoregressive flow (fast density) into an inverse
 * autoregressive flow (fast sampling), and any layer into its inverse. A
 * shape-changing layer's shapes swap: invert(squeeze) is depth-to-space.
 */
import { outputShapeOf, type Bijector, type Params } from "../core/types.js";

/** Swap a bijector's directions: its forward is `inner`'s inverse (a MAF layer becomes an IAF layer). */
export function invert<P extends Params>(inner: Bijector<P>): Bijector<P> {
  if (inner.updateState) {
    // Its statistics would be those of its own output, which training never sees.
    throw new Error(`invert: cannot invert ${inner.kind}, a layer with running statistics`);
  }
  return {
    kind: `invert(${inner.kind})`,
    eventShape: outputShapeOf(inner),
    ...(inner.outputShape ? { outputShape: inner.eventShape } : {}),
    contextDim: inner.contextDim,
    jittable: inner.jittable,
    init: (key, options) => inner.init(key, options),
    forward: (params, x, cond, options) => inner.inverse(params, x, cond, options),
    inverse: (params, y, cond, options) => inner.forward(params, y, cond, options),
  };
}
