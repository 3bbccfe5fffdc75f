/**
 * Composition of bijectors: `chain([a, b, c])` applies a, then b, then c in the
 * forward (data -> latent) direction; the inverse runs them in reverse. The
 * log-determinants add up. Parameters are the list of each layer's parameters.
 *
 * Layers may change the event shape (a squeeze maps [H, W, C] to
 * [H/2, W/2, 4C]): each layer's output shape must be the next layer's event
 * shape, and the chain's output shape is the last layer's.
 */
import { tree, type Array } from "@jax-js/jax";
import {
  outputShapeOf,
  type Bijector,
  type CallOptions,
  type InitOptions,
  type Params,
} from "../core/types.js";
import { splitKey } from "../core/keys.js";

/** A chain of bijectors; `layers` are its layers in forward order. */
export interface ChainBijector extends Bijector<Params[]> {
  readonly layers: readonly Bijector[];
}

/** Compose bijectors: `chain([a, b, c])` applies a, b, c forward (data -> latent) and the reverse on inverse; log-dets add up. */
export function chain(layers: Bijector[]): ChainBijector {
  if (layers.length === 0) throw new Error("chain: needs at least one layer");
  const eventShape = layers[0].eventShape;
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  for (let i = 0; i + 1 < layers.length; i++) {
    const out = outputShapeOf(layers[i]);
    const next = layers[i + 1].eventShape;
    if (!same(out, next)) {
      throw new Error(
        `chain: layer ${i} (${layers[i].kind}) outputs events of shape [${out.join(", ")}] but layer ${i + 1} ` +
          `(${layers[i + 1].kind}) expects [${next.join(", ")}]`,
      );
    }
  }
  const last = outputShapeOf(layers[layers.length - 1]);
  // Only set when it differs, so chains of same-shape layers look as before.
  const outputShape = same(last, eventShape) ? undefined : last;
  const contextDim = Math.max(...layers.map((l) => l.contextDim));
  return {
    kind: "chain",
    layers: [...layers],
    eventShape,
    ...(outputShape ? { outputShape } : {}),
    contextDim,
    jittable: layers.every((l) => l.jittable !== false),
    init(key: Array, options: InitOptions = {}): Params[] {
      const keys = splitKey(key, layers.length);
      let { x, cond } = options;
      const params: Params[] = [];
      layers.forEach((layer, i) => {
        const p = layer.init(keys[i], { dtype: options.dtype, x: x?.ref, cond: cond?.ref });
        if (x !== undefined && i < layers.length - 1) {
          // Feed the batch on so the next layer's data-dependent init sees its own input
          // (not past the last layer: nothing needs it, and a continuous flow would solve an ODE).
          const [y, logDet] = layer.forward(tree.ref(p), x, cond?.ref);
          logDet.dispose();
          x = y;
        }
        params.push(p);
      });
      x?.dispose();
      cond?.dispose();
      return params;
    },
    forward(params, x, cond, options?: CallOptions) {
      let logDet: Array | null = null;
      layers.forEach((layer, i) => {
        const [y, ld] = layer.forward(params[i], x, cond?.ref, options);
        x = y;
        logDet = logDet === null ? ld : logDet.add(ld);
      });
      cond?.dispose();
      return [x, logDet!];
    },
    inverse(params, y, cond, options?: CallOptions) {
      let logDet: Array | null = null;
      for (let i = layers.length - 1; i >= 0; i--) {
        const [x, ld] = layers[i].inverse(params[i], y, cond?.ref, options);
        y = x;
        logDet = logDet === null ? ld : logDet.add(ld);
      }
      cond?.dispose();
      return [y, logDet!];
    },
    updateState: !layers.some((l) => l.updateState)
      ? undefined
      : (params, x, cond) => {
          const out: Params[] = [];
          layers.forEach((layer, i) => {
            const p = params[i];
            const last = i === layers.length - 1;
            // Each layer's statistics come from its own input: push the batch through.
            let next: Array | null = null;
            if (!last) {
              const [y, logDet] = layer.forward(tree.ref(p), x.ref, cond?.ref, { training: true });
              logDet.dispose();
              next = y;
            }
            out.push(layer.updateState ? layer.updateState(p, x, cond?.ref) : (x.dispose(), p));
            if (next) x = next;
          });
          cond?.dispose();
          return out;
        },
  };
}
