/**
 * MADE: a masked dense network whose outputs are autoregressive in its inputs
 * (Germain, Gregor, Murray, Larochelle 2015, "MADE: Masked Autoencoder for
 * Distribution Estimation", https://arxiv.org/abs/1502.03509).
 *
 * Each input coordinate c gets a degree r(c) in 1..D, its rank in the ordering
 * (1 = first). Each hidden unit gets a degree m in 1..D-1 (0..D-1 with a
 * context: degree-0 units see only the context). Connections kept:
 *   input c -> first hidden unit   iff  m >= r(c)
 *   hidden  -> next hidden unit    iff  m_next >= m_prev
 *   hidden  -> output of coord i   iff  r(i) > m
 * so output i depends only on the inputs c with r(c) < r(i). The context, when
 * there is one, is concatenated to the input with degree 0: every hidden unit
 * sees it, and through the degree-0 units so does every output.
 *
 * The masks are constants derived from the JSON config alone (a seeded
 * random ordering uses the small PRNG below), rebuilt as arrays in every
 * `apply`: they are not parameters, so an optimizer never touches them.
 */
import { numpy as np, nn, random, type Array, type DType } from "@jax-js/jax";
import { splitKey } from "../core/keys.js";
import { assertPositiveInt } from "../core/checks.js";
import { mulberry32 } from "../core/prng.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** "natural": 0, 1, ..., D-1; "reversed": D-1, ..., 0; "random": a seeded permutation; or the permutation itself. */
export type MadeOrder = "natural" | "reversed" | "random" | number[];

/** Options of `made`. */
export interface MadeOptions {
  /** Number of autoregressive input coordinates D. */
  dim: number;
  /** Widths of the hidden layers (may be empty: a single masked linear map). */
  hidden: number[];
  /** Width of the context, fully connected to the first layer; default 0. */
  contextDim?: number;
  /** Outputs per coordinate (e.g. 2 for a shift and a log-scale). */
  outputsPerDim: number;
  /** Default "natural". */
  order?: MadeOrder;
  /** Seed of the "random" ordering; default 0. */
  seed?: number;
  /** Default "relu". */
  activation?: "relu" | "tanh";
}

/** One masked layer of `made`: weight and bias. */
export type MadeLayerParams = { w: Array; b: Array };
/** Parameters of `made`: one masked weight and bias per layer. */
export type MadeParams = { layers: MadeLayerParams[] };

/** A MADE network: its order, degrees, `init` and `apply`. */
export interface Made {
  /** The coordinates in autoregressive order: `order[0]` depends on no input, `order[D-1]` on all others. */
  readonly order: number[];
  /** Degree (1-based rank in `order`) of each input coordinate. */
  readonly degrees: number[];
  /** Output width per coordinate. */
  readonly outputsPerDim: number;
  /** Fresh parameters, output layer at zero. */
  init(key: Array, dtype?: DType): MadeParams;
  /**
   * x: [batch, dim], cond: [batch, contextDim] -> [batch, dim, outputsPerDim];
   * out[:, i, :] depends only on x[:, c] with degrees[c] < degrees[i] (and on cond).
   * Consumes params, x and cond.
   */
  apply(params: MadeParams, x: Array, cond?: Array): Array;
  /**
   * Inverts an autoregressive map in one sweep, for `batch` rows: for each rank k in order,
   * `fix(k, out)` gets the network's outputs [batch, outputsPerDim] for the coordinate
   * `order[k]`, computed from the coordinates already fixed (and the context), and returns
   * that coordinate's value [batch]. Returns the fixed inputs [batch, dim] in coordinate
   * order. The same outputs as calling `apply` once per coordinate, at a fraction of the
   * arithmetic (see `sweep` below). Traceable and differentiable. Consumes params and cond.
   */
  sweep(
    params: MadeParams,
    batch: number,
    fix: (rank: number, out: Array) => Array,
    cond?: Array,
  ): Array;
}

/** The ordering (a permutation of 0..dim-1) that `made` uses for these options. */
export function madeOrder(dim: number, order: MadeOrder = "natural", seed = 0): number[] {
  const where = "made";
  if (globalThis.Array.isArray(order)) {
    const ok = order.length === dim && [...order].sort((a, b) => a - b).every((v, i) => v === i);
    if (!ok)
      throw new Error(
        `${where}: order must be a permutation of 0..${dim - 1}, got ${jsonExcerpt(order)}`,
      );
    return [...order];
  }
  const natural = globalThis.Array.from({ length: dim }, (_, i) => i);
  if (order === "natural") return natural;
  if (order === "reversed") return natural.reverse();
  if (order === "random") {
    const rand = mulberry32(seed);
    // Fisher-Yates.
    for (let i = dim - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [natural[i], natural[j]] = [natural[j], natural[i]];
    }
    return natural;
  }
  throw new Error(
    `${where}: order must be "natural", "reversed", "random" or a permutation, got ${jsonExcerpt(order)}`,
  );
}

/** A mask as flat row-major data of shape [rows, cols]. */
type Mask = { data: number[]; shape: [number, number] };

function buildMask(
  inDeg: number[],
  outDeg: number[],
  keep: (mIn: number, mOut: number) => boolean,
): Mask {
  const data: number[] = [];
  for (const a of inDeg) for (const b of outDeg) data.push(keep(a, b) ? 1 : 0);
  return { data, shape: [inDeg.length, outDeg.length] };
}

/** MADE (Germain et al. 2015): an autoregressive MLP whose output i depends only on the inputs before i in the order. */
export function made(options: MadeOptions): Made {
  const where = "made";
  const { dim, hidden, outputsPerDim } = options;
  const contextDim = options.contextDim ?? 0;
  const activation = options.activation ?? "relu";
  const seed = options.seed ?? 0;
  assertPositiveInt(where, "dim", dim);
  assertPositiveInt(where, "outputsPerDim", outputsPerDim);
  if (!globalThis.Array.isArray(hidden))
    throw new Error(`${where}: hidden must be a list of widths, got ${jsonExcerpt(hidden)}`);
  hidden.forEach((h, i) => assertPositiveInt(where, `hidden[${i}]`, h));
  if (!Number.isInteger(contextDim) || contextDim < 0) {
    throw new Error(
      `${where}: contextDim must be a non-negative integer, got ${jsonExcerpt(contextDim)}`,
    );
  }
  if (!Number.isInteger(seed))
    throw new Error(`${where}: seed must be an integer, got ${jsonExcerpt(seed)}`);
  if (activation !== "relu" && activation !== "tanh") {
    throw new Error(
      `${where}: activation must be "relu" or "tanh", got ${jsonExcerpt(activation)}`,
    );
  }

  const order = madeOrder(dim, options.order, seed);
  const degrees = new globalThis.Array<number>(dim);
  order.forEach((c, rank) => (degrees[c] = rank + 1));

  // Hidden degrees cycle through minDeg..D-1, so every allowed dependence is
  // realised once each layer has that many units. (Germain et al. also draw
  // hidden degrees at random, which matters when masks are resampled during
  // training; for one fixed mask it can only drop dependences.) With a context,
  // degree-0 units see the context and no input, so that even the first
  // coordinate's outputs depend on the context; without one they would be
  // constants, so degrees start at 1.
  const minDeg = contextDim > 0 ? 0 : 1;
  const span = Math.max(dim - minDeg, 1);
  const hiddenDegrees = hidden.map((width) =>
    globalThis.Array.from({ length: width }, (_, k) =>
      dim - 1 < minDeg ? 0 : minDeg + (k % span),
    ),
  );

  // Context inputs get degree 0: every hidden unit (degree >= 0) sees them.
  const inputDegrees = [...degrees, ...new globalThis.Array<number>(contextDim).fill(0)];
  const outputDegrees = degrees.flatMap((d) => new globalThis.Array<number>(outputsPerDim).fill(d));
  const masks: Mask[] = [];
  let prev = inputDegrees;
  for (const degs of hiddenDegrees) {
    masks.push(buildMask(prev, degs, (a, b) => b >= a));
    prev = degs;
  }
  // Strict inequality at the output: coordinate i never sees itself.
  masks.push(buildMask(prev, outputDegrees, (a, b) => b > a));

  return {
    order,
    degrees,
    outputsPerDim,
    init(key, dtype = np.float32) {
      const keys = splitKey(key, masks.length);
      const layers = masks.map(({ shape: [fanIn, fanOut] }, l) => {
        const last = l === masks.length - 1;
        // The output layer starts at zero so a flow built on it starts as the identity.
        if (last) {
          keys[l].dispose();
          return { w: np.zeros([fanIn, fanOut], { dtype }), b: np.zeros([fanOut], { dtype }) };
        }
        const [kw, kb] = splitKey(keys[l], 2);
        const w = random
          .normal(kw, [fanIn, fanOut])
          .mul(1 / Math.sqrt(fanIn))
          .astype(dtype);
        // Random biases, as in nn/mlp.ts: zero ones make a ReLU network positively homogeneous.
        const bLimit = 1 / Math.sqrt(fanIn);
        return {
          w,
          b: random.uniform(kb, [fanOut], { minval: -bLimit, maxval: bLimit }).astype(dtype),
        };
      });
      return { layers };
    },
    apply(params, x, cond) {
      if (x.ndim !== 2 || x.shape[1] !== dim) {
        throw new Error(
          `${where}: expected input of shape [batch, ${dim}], got [${x.shape.join(", ")}]`,
        );
      }
      const batch = x.shape[0];
      let h = x;
      if (contextDim > 0) {
        if (cond === undefined)
          throw new Error(`${where}: this network is conditional: pass a context`);
        h = np.concatenate([h, cond.astype(x.dtype)], 1);
      } else {
        cond?.dispose();
      }
      const dtype = x.dtype;
      params.layers.forEach(({ w, b }, l) => {
        const mask = np.array(masks[l].data, { shape: masks[l].shape, dtype });
        h = np.matmul(h, w.mul(mask)).add(b);
        if (l < masks.length - 1) h = activation === "relu" ? nn.relu(h) : np.tanh(h);
      });
      return h.reshape([batch, dim, outputsPerDim]);
    },
    sweep(params, batch, fix, cond) {
      return sweepMade(
        { dim, contextDim, outputsPerDim, order, degrees, masks, hiddenDegrees, activation },
        params,
        batch,
        fix,
        contextDim > 0 ? cond : (cond?.dispose(), undefined),
      );
    },
  };
}

interface MadeLayout {
  dim: number;
  contextDim: number;
  outputsPerDim: number;
  order: number[];
  /** 1-based rank of each coordinate in `order`. */
  degrees: number[];
  masks: Mask[];
  hiddenDegrees: number[][];
  activation: "relu" | "tanh";
}

/** One-hot [from, to.length] with column j selecting index to[j]: (A @ Q)[:, j] = A[:, to[j]]. */
function selector(from: number, to: number[], dtype: DType): Array {
  const data = new globalThis.Array<number>(from * to.length).fill(0);
  to.forEach((i, j) => (data[i * to.length + j] = 1));
  return np.array(data, { shape: [from, to.length], dtype });
}

/**
 * The sweep behind `Made.sweep`. Calling the network once per coordinate costs D full passes;
 * but a hidden unit of degree m reads only inputs of rank < m (and units of degree <= m), so
 * it is final as soon as the coordinates of rank < m are, and the outputs of the coordinate
 * of rank k read only units of degree <= k. So: keep each layer's pre-activations as running
 * sums; at rank k add the contribution of the coordinate fixed last (an outer product) and,
 * layer by layer, of the units of degree k (their activations times their rows of the next
 * weight matrix), then read the outputs of rank k. Every weight enters once, as in one pass.
 * Units and output columns are put in degree / rank order first (one-hot matmuls, exact and
 * differentiable), so that each degree's units are a contiguous slice.
 */
function sweepMade(
  layout: MadeLayout,
  params: MadeParams,
  batch: number,
  fix: (rank: number, out: Array) => Array,
  cond: Array | undefined,
): Array {
  const {
    dim,
    contextDim,
    outputsPerDim: per,
    order,
    degrees,
    masks,
    hiddenDegrees,
    activation,
  } = layout;
  const layers = params.layers;
  const dtype = layers[0].w.dtype;
  const depth = hiddenDegrees.length;
  // Column order of each layer's outputs: hidden units by degree (stable), outputs by rank.
  const columns = hiddenDegrees.map((degs) =>
    degs.map((_, i) => i).sort((a, b) => degs[a] - degs[b] || a - b),
  );
  columns.push(order.flatMap((c) => globalThis.Array.from({ length: per }, (_, o) => c * per + o)));
  // groups[l][m]: the slice of hidden layer l's sorted units that have degree m.
  const groups = hiddenDegrees.map((degs, l) => {
    const sorted = columns[l].map((i) => degs[i]);
    return globalThis.Array.from(
      { length: dim },
      (_, m) => [sorted.indexOf(m), sorted.lastIndexOf(m) + 1] as const,
    );
  });
  // Masked weights with rows in the previous layer's column order and columns in this one's.
  const weights = layers.map(({ w, b }, l) => {
    const [fanIn, fanOut] = masks[l].shape;
    const cols = selector(fanOut, columns[l], dtype);
    let wm = np.matmul(w.mul(np.array(masks[l].data, { shape: masks[l].shape, dtype })), cols.ref);
    if (l > 0) wm = np.matmul(selector(fanIn, columns[l - 1], dtype).transpose(), wm);
    return { w: wm, b: np.matmul(b.reshape([1, fanOut]), cols).reshape([fanOut]) };
  });
  // sums[l]: pre-activations of layer l's outputs so far, [batch, fanOut].
  const sums = weights.map(({ b }, l) => np.broadcastTo(b, [batch, masks[l].shape[1]]));
  if (cond !== undefined)
    sums[0] = sums[0].add(
      np.matmul(cond.astype(dtype), weights[0].w.ref.slice([dim, dim + contextDim])),
    );
  const act = (h: Array) => (activation === "relu" ? nn.relu(h) : np.tanh(h));
  const fixed: Array[] = [];
  for (let k = 0; k < dim; k++) {
    if (k > 0) {
      const c = order[k - 1];
      sums[0] = sums[0].add(
        fixed[k - 1].ref.reshape([batch, 1]).mul(weights[0].w.ref.slice([c, c + 1])),
      );
    }
    for (let l = 0; l < depth; l++) {
      const [start, end] = groups[l][k];
      if (start < 0) continue;
      const h = act(sums[l].ref.slice([], [start, end]));
      sums[l + 1] = sums[l + 1].add(np.matmul(h, weights[l + 1].w.ref.slice([start, end])));
    }
    fixed.push(fix(k, sums[depth].ref.slice([], [k * per, (k + 1) * per])));
  }
  sums.forEach((a) => a.dispose());
  weights.forEach(({ w }) => w.dispose());
  // Column k holds the coordinate of rank k; back to coordinate order.
  const ranked = np.stack(fixed, 1);
  return np.matmul(
    ranked,
    selector(
      dim,
      degrees.map((d) => d - 1),
      dtype,
    ),
  );
}
