/**
 * Batch normalisation as a bijector (Dinh et al. 2016, "Density estimation
 * using Real NVP", §3.7; Papamakarios et al. 2017, "Masked Autoregressive Flow",
 * §3.4):
 *   forward: y = exp(logGamma) * (x - μ) / sqrt(σ² + eps) + beta,
 *   log|det J| = sum(logGamma - log(σ² + eps) / 2),
 * with (μ, σ²) the statistics of the current batch when `{ training: true }`
 * (biased variance) and the running averages otherwise. In training mode the
 * log-det treats the batch statistics as constants, as in both papers: it is
 * the log-det of the per-sample map x_i -> y_i with (μ, σ²) fixed, not of the
 * whole batch map (whose Jacobian also carries dμ/dx_i and dσ²/dx_i).
 *
 * The inverse always uses the running statistics (batch statistics of the
 * latent side would be meaningless), whatever `training` says.
 *
 * Parameters: `logGamma` and `beta` are trainable. `state` = { mean, var }
 * holds the running statistics and is NOT trainable: the optimizer masks any
 * subtree named `state`, and the statistics are read through stopGradient, so
 * their gradients are zero anyway. `updateState(p, x)` moves them towards the
 * (biased) statistics of the batch x by `momentum`:
 *   mean <- (1 - momentum) * mean + momentum * μ_batch, likewise for var;
 * with momentum 1 the evaluation map equals the training map on that batch.
 */
import { numpy as np, lax, type Array, type DType } from "@jax-js/jax";
import type { Bijector } from "../core/types.js";
import { checkInput, assertPositiveInt } from "../core/checks.js";
import { discardInitInputs } from "../core/util.js";

/** Parameters of `batchNorm`: log-scale, shift and the (untrained) running statistics. */
export type BatchNormParams = {
  logGamma: Array;
  beta: Array;
  /** Running statistics: non-trainable. */
  state: { mean: Array; var: Array };
};

/** Options of `batchNorm`. */
export interface BatchNormOptions {
  /** Weight of the new batch in the running averages. Default 0.1. */
  momentum?: number;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
}

/** Batch mean and biased variance over the batch axis. Consumes x. */
function batchStats(x: Array): [Array, Array] {
  const mean = x.ref.mean(0);
  const variance = np.square(x.sub(mean.ref)).mean(0);
  return [mean, variance];
}

/** Batch normalisation as a bijector (RealNVP, MAF): batch statistics in training, running averages otherwise. */
export function batchNorm(dim: number, options: BatchNormOptions = {}): Bijector<BatchNormParams> {
  const where = "batchNorm";
  assertPositiveInt(where, "dim", dim);
  const momentum = options.momentum ?? 0.1;
  const eps = options.eps ?? 1e-5;
  if (!(momentum >= 0 && momentum <= 1))
    throw new Error(`${where}: momentum must be in [0, 1], got ${momentum}`);
  if (!(eps > 0)) throw new Error(`${where}: eps must be > 0, got ${eps}`);
  const eventShape = [dim];
  // Typed constant: under jit a plain JS number is rounded to float32 even in float64 code.
  const scalar = (value: number, dtype: DType) => np.full([], value, { dtype });

  /** [mean, log(var + eps)] for this call: from the batch x (training) or the running state. */
  const stats = (p: BatchNormParams, x: Array, training: boolean): [Array, Array] => {
    const dtype = x.dtype;
    let mean: Array;
    let variance: Array;
    if (training) {
      p.state.mean.dispose();
      p.state.var.dispose();
      [mean, variance] = batchStats(x);
    } else {
      x.dispose();
      mean = lax.stopGradient(p.state.mean);
      variance = lax.stopGradient(p.state.var);
    }
    return [mean, np.log(variance.add(scalar(eps, dtype)))];
  };
  const total = (logGamma: Array, logVar: Array, x: Array) => {
    const perSample = logGamma.sub(logVar.mul(0.5)).sum();
    return np.ones([x.shape[0]], { dtype: x.dtype }).mul(perSample);
  };

  return {
    kind: "batchNorm",
    eventShape,
    contextDim: 0,
    init(key, initOptions = {}) {
      discardInitInputs(key, initOptions);
      const dtype = initOptions.dtype ?? np.float32;
      return {
        logGamma: np.zeros([dim], { dtype }),
        beta: np.zeros([dim], { dtype }),
        state: { mean: np.zeros([dim], { dtype }), var: np.ones([dim], { dtype }) },
      };
    },
    forward(p, x, cond, callOptions = {}) {
      checkInput(where, eventShape, 0, x);
      cond?.dispose();
      const [mean, logVar] = stats(p, x.ref, callOptions.training ?? false);
      const logDet = total(p.logGamma.ref, logVar.ref, x);
      const scale = np.exp(p.logGamma.sub(logVar.mul(0.5)));
      return [x.sub(mean).mul(scale).add(p.beta), logDet];
    },
    inverse(p, y, cond) {
      checkInput(where, eventShape, 0, y);
      cond?.dispose();
      const [mean, logVar] = stats(p, y.ref, false);
      const logDet = total(p.logGamma.ref, logVar.ref, y).neg();
      const invScale = np.exp(logVar.mul(0.5).sub(p.logGamma));
      return [y.sub(p.beta).mul(invScale).add(mean), logDet];
    },
    updateState(p, x, cond) {
      checkInput(`${where}.updateState`, eventShape, 0, x);
      cond?.dispose();
      const dtype = p.state.mean.dtype;
      const [mean, variance] = batchStats(x.astype(dtype));
      const blend = (old: Array, batch: Array) =>
        old.mul(scalar(1 - momentum, dtype)).add(batch.mul(scalar(momentum, dtype)));
      return {
        logGamma: p.logGamma,
        beta: p.beta,
        state: { mean: blend(p.state.mean, mean), var: blend(p.state.var, variance) },
      };
    },
  };
}
