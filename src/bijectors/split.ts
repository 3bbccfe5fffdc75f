/**
 * Multi-scale architecture with factor-out (Dinh, Sohl-Dickstein & Bengio 2016,
 * "Density estimation using Real NVP", arXiv:1605.08803, §3.6; Kingma &
 * Dhariwal 2018, "Glow", §3 and the `split2d` of its reference code).
 *
 * `multiScale({ levels })` with levels f_1 .. f_L on images [H, W, C] maps
 * forward (data -> latent), with h_1 = x:
 *   for l < L:  u = squeeze(f_l(h_l))              (squeeze: see squeeze.ts; off with squeeze: false)
 *               [h_{l+1}, z_l] = u's channels split in halves (the first half is kept, as in Glow)
 *               e_l = z_l, or with a learned prior of level l:
 *               [mu, raw] = prior_l(h_{l+1}),  logsig = B tanh(raw / B),
 *               e_l = (z_l - mu) * exp(-logsig)
 *   e_L = f_L(h_L);
 *   output: concat(flatten(e_1), ..., flatten(e_L)), shape [D], D = H * W * C.
 * The output order is fixed: e_1 (the finest factored-out channels) first,
 * the last level's output last; each piece is flattened row-major over its
 * [h, w, c] shape. The inverse runs the same steps backwards exactly.
 *
 * log|det J| = sum_l log|det f_l| - sum_l sum(logsig_l): an honest Jacobian
 * log-determinant (the whitening of z_l given h_{l+1} is a conditional affine
 * map, block-triangular). The learned prior: with the flow's base a standard
 * normal over the concatenated latents, the terms of e_l add up to
 *   log N(e_l; 0, I) - sum(logsig_l) = log N(z_l; mu, diag(sig^2)),
 * which is Glow's conditional prior p(z_l | h_{l+1}). Written as Glow's
 * density ratio: log p(x) = log N(z; 0, I) + sum_l log|det f_l|
 *   + sum_l [log N(z_l; mu, sig^2) - log N(z_l; 0, I)],
 * the bracket is what this layer folds into the log-det (with e_l for z_l in the
 * base term). Whitening rather than only adding the bracket keeps sampling right:
 * decoding e_l ~ N(0, I) gives z_l = mu + sig e_l ~ p(z_l | h_{l+1}) (and a
 * temperature scales sig, as in Glow), where adding the bracket alone would
 * decode z_l ~ N(0, I) and sample a different distribution from the density.
 *
 * A prior network maps the kept half [B, h, w, k] -> [B, h, w, 2k] (mean in
 * channels [0, k), raw log-std in [k, 2k)); its output layer must start at
 * zero, so it starts as the plain factor-out (mu = 0, sig = 1).
 */
import { numpy as np, tree, type Array } from "@jax-js/jax";
import {
  outputShapeOf,
  type Bijector,
  type CallOptions,
  type InitOptions,
  type Params,
} from "../core/types.js";
import { checkInput } from "../core/checks.js";
import { splitKey } from "../core/keys.js";
import { sumEvent } from "../core/util.js";
import { depthToSpace, spaceToDepth, squeezedShape } from "./squeeze.js";
import type { ImageConditioner } from "./image-coupling.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** One level of `multiScale`: its flow and, optionally (never on the last level), the learned prior of the channels it factors out. */
export interface MultiScaleLevel {
  /** The flow of this level, on the level's input shape (see `multiScaleShapes`). */
  bijector: Bijector<any>;
  /** Learned conditional prior of the channels factored out after this level (not on the last level). */
  prior?: ImageConditioner<any>;
}

/** Options of `multiScale`. */
export interface MultiScaleOptions {
  /** Level flows, finest first; a bare bijector is a level without a learned prior. */
  levels: (Bijector<any> | MultiScaleLevel)[];
  /**
   * Squeeze before each factor-out (default true, as Glow). With false, a level
   * brings its own squeeze (RealNVP: checkerboard couplings, squeeze, channel
   * couplings) and its output's channels are split as they are.
   */
  squeeze?: boolean;
  /** Bound B on |log-std| of the learned priors; default 3. */
  priorScaleBound?: number;
}

/** Parameters of `multiScale`: each level's flow and, where it has one, its prior. */
export type MultiScaleParams = { bijector: Params; prior?: Params }[];

const fmt = (shape: readonly number[]) => `[${shape.join(", ")}]`;
const same = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
const size = (shape: number[]) => shape.reduce((a, d) => a * d, 1);

/**
 * The input shape of each of `levels` levels of a squeezing multiScale on
 * `shape` whose levels keep their shape: [H, W, C], [H/2, W/2, 2C], [H/4, W/4, 4C], ...
 */
export function multiScaleShapes(shape: number[], levels: number): number[][] {
  const shapes = [shape];
  for (let l = 1; l < levels; l++) {
    const [h, w, c] = squeezedShape("multiScaleShapes", shapes[l - 1]);
    shapes.push([h, w, c / 2]);
  }
  return shapes;
}

/** Multi-scale architecture with factor-out (RealNVP, Glow): after each level half the channels leave, under a learned prior. */
export function multiScale(options: MultiScaleOptions): Bijector<MultiScaleParams> {
  const where = "multiScale";
  if (!globalThis.Array.isArray(options.levels) || options.levels.length === 0) {
    throw new Error(
      `${where}: levels must be a non-empty list of bijectors or { bijector, prior } objects`,
    );
  }
  const levels: MultiScaleLevel[] = options.levels.map((l) =>
    "bijector" in l ? l : { bijector: l },
  );
  const squeezeOn = options.squeeze ?? true;
  const bound = options.priorScaleBound ?? 3;
  if (!(typeof bound === "number" && bound > 0 && Number.isFinite(bound))) {
    throw new Error(
      `${where}: priorScaleBound must be a positive finite number, got ${jsonExcerpt(bound)}`,
    );
  }
  const L = levels.length;
  const eventShape = [...levels[0].bijector.eventShape];
  if (eventShape.length !== 3)
    throw new Error(`${where}: the first level must take images [H, W, C], got ${fmt(eventShape)}`);

  // Shapes: level inputs, the kept/factored halves ([h, w, k] each) and the last level's output.
  const halfShapes: number[][] = [];
  let current = eventShape;
  levels.forEach(({ bijector, prior }, i) => {
    if (!same(bijector.eventShape, current)) {
      throw new Error(
        `${where}: level ${i} (${bijector.kind}) takes ${fmt(bijector.eventShape)} but receives ${fmt(current)}`,
      );
    }
    const out = outputShapeOf(bijector);
    if (i === L - 1) {
      if (prior)
        throw new Error(`${where}: the last level factors nothing out, so it cannot have a prior`);
      return;
    }
    if (out.length !== 3)
      throw new Error(`${where}: level ${i} must output images [h, w, c], got ${fmt(out)}`);
    const split = squeezeOn ? squeezedShape(`${where}: level ${i}`, out) : out;
    if (split[2] % 2 !== 0) {
      throw new Error(
        `${where}: level ${i}: cannot split ${split[2]} channels in halves (shape ${fmt(split)})`,
      );
    }
    current = [split[0], split[1], split[2] / 2];
    halfShapes.push(current);
  });
  const lastShape = outputShapeOf(levels[L - 1].bijector);
  const pieceSizes = [...halfShapes.map(size), size(lastShape)];
  const D = pieceSizes.reduce((a, b) => a + b, 0);
  if (D !== size(eventShape))
    throw new Error(
      `${where}: the levels do not preserve the number of entries (${D} vs ${size(eventShape)})`,
    );
  const outputShape = [D];
  const contexts = [
    ...levels.map((l) => l.bijector.contextDim),
    ...levels.map((l) => l.prior?.contextDim ?? 0),
  ].filter((c) => c > 0);
  if (contexts.some((c) => c !== contexts[0]))
    throw new Error(`${where}: conditional parts disagree on contextDim: ${contexts.join(", ")}`);
  const contextDim = contexts[0] ?? 0;

  /** [mu, logsig] of level i's prior from the kept half; consumes `params`, `keep`, `cond`. */
  const priorStats = (i: number, params: Params, keep: Array, cond?: Array): [Array, Array] => {
    const prior = levels[i].prior!;
    const [batch, h, w, k] = keep.shape;
    const out =
      (prior.contextDim ?? 0) > 0
        ? prior.apply(params, keep, cond)
        : (cond?.dispose(), prior.apply(params, keep));
    const want = [batch, h, w, 2 * k];
    if (out.ndim !== 4 || out.shape.some((d, j) => d !== want[j])) {
      const got = out.shape;
      out.dispose();
      throw new Error(
        `${where}: level ${i}'s prior returned shape ${fmt(got)}, expected ${fmt(want)}`,
      );
    }
    const b = np.array(bound, { dtype: out.dtype, device: out.device }); // typed: jit rounds JS scalars to float32
    const mu = out.ref.slice([], [], [], [0, k]);
    const raw = out.slice([], [], [], [k, 2 * k]);
    return [mu, np.tanh(raw.div(b.ref)).mul(b)];
  };

  /** Level i's output, squeezed, split into [kept, factored] halves. Consumes `y`. */
  const factor = (i: number, y: Array): [Array, Array] => {
    const u = squeezeOn ? spaceToDepth(y) : y;
    const k = halfShapes[i][2];
    return [u.ref.slice([], [], [], [0, k]), u.slice([], [], [], [k, 2 * k])];
  };

  return {
    kind: "multiScale",
    eventShape,
    outputShape,
    contextDim,
    init(key: Array, initOptions: InitOptions = {}): MultiScaleParams {
      const keys = splitKey(key, 2 * L);
      const dtype = initOptions.dtype;
      let { x, cond } = initOptions;
      const params: MultiScaleParams = levels.map(({ bijector, prior }, i) => {
        const p = bijector.init(keys[2 * i], { dtype, x: x?.ref, cond: cond?.ref });
        if (x !== undefined && i < L - 1) {
          // The next level's data-dependent init sees its own input.
          const [y, logDet] = bijector.forward(tree.ref(p), x, cond?.ref);
          logDet.dispose();
          const [kept, factored] = factor(i, y);
          factored.dispose();
          x = kept;
        }
        if (!prior) {
          keys[2 * i + 1].dispose();
          return { bijector: p };
        }
        return { bijector: p, prior: prior.init(keys[2 * i + 1], dtype ?? np.float32) };
      });
      x?.dispose();
      cond?.dispose();
      return params;
    },
    forward(params, x, cond, callOptions?: CallOptions) {
      checkInput(where, eventShape, contextDim, x, cond);
      const batch = x.shape[0];
      let logDet: Array | null = null;
      const add = (ld: Array) => (logDet = logDet === null ? ld : logDet.add(ld));
      const latents: Array[] = [];
      let h = x;
      levels.forEach(({ bijector, prior }, i) => {
        const [y, ld] = bijector.forward(params[i].bijector, h, cond?.ref, callOptions);
        add(ld);
        if (i === L - 1) {
          latents.push(y.reshape([batch, -1]));
          return;
        }
        const [kept, factored] = factor(i, y);
        let e = factored;
        if (prior) {
          const [mu, logSig] = priorStats(i, params[i].prior!, kept.ref, cond?.ref);
          e = e.sub(mu).mul(np.exp(logSig.ref.neg()));
          add(sumEvent(logSig).neg());
        }
        latents.push(e.reshape([batch, -1]));
        h = kept;
      });
      cond?.dispose();
      return [latents.length === 1 ? latents[0] : np.concatenate(latents, 1), logDet!];
    },
    inverse(params, y, cond, callOptions?: CallOptions) {
      checkInput(`${where}.inverse`, outputShape, contextDim, y, cond);
      const batch = y.shape[0];
      let logDet: Array | null = null;
      const add = (ld: Array) => (logDet = logDet === null ? ld : logDet.add(ld));
      const pieces: Array[] = [];
      let start = 0;
      for (const n of pieceSizes) {
        pieces.push(y.ref.slice([], [start, start + n]));
        start += n;
      }
      y.dispose();
      let h = pieces[L - 1].reshape([batch, ...lastShape]);
      for (let i = L - 1; i >= 0; i--) {
        if (i < L - 1) {
          let z = pieces[i].reshape([batch, ...halfShapes[i]]);
          if (levels[i].prior) {
            const [mu, logSig] = priorStats(i, params[i].prior!, h.ref, cond?.ref);
            z = z.mul(np.exp(logSig.ref)).add(mu);
            add(sumEvent(logSig));
          }
          const u = np.concatenate([h, z], 3);
          h = squeezeOn ? depthToSpace(u) : u;
        }
        const [x, ld] = levels[i].bijector.inverse(params[i].bijector, h, cond?.ref, callOptions);
        add(ld);
        h = x;
      }
      cond?.dispose();
      return [h, logDet!];
    },
    updateState: !levels.some((l) => l.bijector.updateState)
      ? undefined
      : (params, x, cond) => {
          const out: MultiScaleParams = params.map((p, i) => {
            const { bijector } = levels[i];
            // Each level's statistics come from its own input: push the batch through.
            let next: Array | null = null;
            if (i < L - 1) {
              const [y, logDet] = bijector.forward(tree.ref(p.bijector), x.ref, cond?.ref, {
                training: true,
              });
              logDet.dispose();
              const [kept, factored] = factor(i, y);
              factored.dispose();
              next = kept;
            }
            const updated = bijector.updateState
              ? bijector.updateState(p.bijector, x, cond?.ref)
              : (x.dispose(), p.bijector);
            if (next) x = next;
            return { ...p, bijector: updated };
          });
          cond?.dispose();
          return out;
        },
  };
}
