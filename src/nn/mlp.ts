/**
 * A dense multilayer perceptron, the conditioner of coupling layers:
 *   h_0 = [x, cond],  h_{k+1} = act(h_k W_k + b_k),  out = h_L W_L + b_L.
 * Hidden layers use Glorot-uniform (tanh) or He-uniform (relu, gelu)
 * initialisation; the OUTPUT layer starts at zero (weights and bias), so a
 * layer that adds or scales by the conditioner's output starts as the identity.
 */
import { nn, numpy as np, random, tree, type Array, type DType } from "@jax-js/jax";
import { assertPositiveInt } from "../core/checks.js";
import { splitKey } from "../core/keys.js";
import { jsonExcerpt } from "../core/excerpt.js";

/** Hidden-layer activation of the conditioner networks. */
export type Activation = "relu" | "tanh" | "gelu";

/** Options of `mlp`: input, output and hidden widths, context width and activation. */
export type MlpOptions = {
  inDim: number;
  outDim: number;
  hidden: number[];
  /** Width of the context concatenated to the input; 0 (default) for none. */
  contextDim?: number;
  /** Hidden-layer nonlinearity; default "relu". */
  activation?: Activation;
};

/** One dense layer: weight [in, out] and bias [out]. */
export type DenseParams = { w: Array; b: Array };
/** Parameters of `mlp`: one weight and bias per layer. */
export type MlpParams = { layers: DenseParams[] };

/** An MLP: its sizes, `init` and `apply`. */
export interface Mlp {
  readonly inDim: number;
  readonly outDim: number;
  readonly contextDim: number;
  /** Fresh parameters in `dtype` (default float32). Consumes `key`. */
  init(key: Array, dtype?: DType): MlpParams;
  /**
   * x: [batch, inDim], cond: [batch, contextDim] (required when contextDim > 0,
   * disposed otherwise) -> [batch, outDim]. Consumes every argument.
   */
  apply(params: MlpParams, x: Array, cond?: Array): Array;
}

const ACTIVATIONS: Record<Activation, (x: Array) => Array> = {
  relu: (x) => nn.relu(x),
  tanh: (x) => np.tanh(x),
  gelu: (x) => nn.gelu(x),
};

/** A multilayer perceptron conditioner whose output layer starts at zero (so its layer starts as the identity). */
export function mlp(options: MlpOptions): Mlp {
  const where = "mlp";
  const { inDim, outDim, hidden } = options;
  const contextDim = options.contextDim ?? 0;
  const activation = options.activation ?? "relu";
  assertPositiveInt(where, "inDim", inDim);
  assertPositiveInt(where, "outDim", outDim);
  if (!globalThis.Array.isArray(hidden))
    throw new Error(`${where}: hidden must be a list of layer widths`);
  hidden.forEach((h, i) => assertPositiveInt(where, `hidden[${i}]`, h));
  if (!(Number.isInteger(contextDim) && contextDim >= 0)) {
    throw new Error(
      `${where}: contextDim must be a non-negative integer, got ${jsonExcerpt(contextDim)}`,
    );
  }
  const act = ACTIVATIONS[activation];
  if (!act)
    throw new Error(
      `${where}: unknown activation ${JSON.stringify(activation)} (use relu, tanh or gelu)`,
    );
  const widths = [inDim + contextDim, ...hidden, outDim];
  const nLayers = widths.length - 1;

  return {
    inDim,
    outDim,
    contextDim,
    init(key, dtype = np.float32) {
      const keys = splitKey(key, nLayers);
      const layers: DenseParams[] = [];
      for (let i = 0; i < nLayers; i++) {
        const [fanIn, fanOut] = [widths[i], widths[i + 1]];
        if (i === nLayers - 1) {
          keys[i].dispose();
          layers.push({
            w: np.zeros([fanIn, fanOut], { dtype }),
            b: np.zeros([fanOut], { dtype }),
          });
          continue;
        }
        // Keep activations at unit scale: Glorot for tanh (linear near 0), He for
        // the rectifiers (which zero half their input).
        const limit =
          activation === "tanh" ? Math.sqrt(6 / (fanIn + fanOut)) : Math.sqrt(6 / fanIn);
        const [kw, kb] = splitKey(keys[i], 2);
        const w = random
          .uniform(kw, [fanIn, fanOut], { minval: -limit, maxval: limit })
          .astype(dtype);
        // Random biases, not zeros: with zero biases a ReLU network is positively homogeneous,
        // f(a x) = a f(x), so on a 1-D input (a 2-D coupling's conditioner) every unit bends at
        // x = 0 and the whole network is two lines until the biases learn to move the bends.
        const bLimit = 1 / Math.sqrt(fanIn);
        const b = random.uniform(kb, [fanOut], { minval: -bLimit, maxval: bLimit }).astype(dtype);
        layers.push({ w, b });
      }
      return { layers };
    },
    apply(params, x, cond) {
      // Errors still honour the ownership rule: the arguments are consumed.
      const fail = (msg: string) => {
        tree.dispose(params);
        x.dispose();
        cond?.dispose();
        throw new Error(`${where}: ${msg}`);
      };
      if (x.ndim !== 2 || x.shape[1] !== inDim)
        fail(`expected input of shape [batch, ${inDim}], got [${x.shape.join(", ")}]`);
      if (params.layers.length !== nLayers)
        fail(`expected ${nLayers} layers of parameters, got ${params.layers.length}`);
      let h = x;
      if (contextDim > 0) {
        if (cond === undefined)
          fail(`this network is conditional: pass a context of shape [batch, ${contextDim}]`);
        if (cond!.ndim !== 2 || cond!.shape[0] !== x.shape[0] || cond!.shape[1] !== contextDim) {
          fail(
            `expected context of shape [${x.shape[0]}, ${contextDim}], got [${cond!.shape.join(", ")}]`,
          );
        }
        h = np.concatenate([x, cond!.dtype === x.dtype ? cond! : cond!.astype(x.dtype)], 1);
      } else {
        cond?.dispose();
      }
      params.layers.forEach(({ w, b }, i) => {
        h = np.matmul(h, w).add(b);
        if (i < nLayers - 1) h = act(h);
      });
      return h;
    },
  };
}
