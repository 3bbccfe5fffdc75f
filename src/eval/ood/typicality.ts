/**
 * The typicality test for batches of inputs (Nalisnick, Matsukawa, Teh & Lakshminarayanan 2019,
 * "Detecting out-of-distribution inputs to deep generative models using typicality", Algorithm 1).
 *
 * A likelihood threshold cannot catch inputs that are MORE likely than the training data (a flow
 * trained on CIFAR-10 gives SVHN higher likelihood), but such inputs are not typical: a batch drawn
 * from the model's distribution has mean NLL close to the entropy H. For a batch of M inputs
 *   statistic = | (1/M) sum_m NLL(x_m) - H_hat |,
 * with H_hat the mean NLL on training (or validation) data, and the batch is flagged OOD when the
 * statistic exceeds epsilon, the (1 - alpha) quantile of the statistic over K bootstrap batches of
 * size M drawn with replacement from held-out in-distribution NLLs. The two-sided |.| is what
 * flags batches that are too likely as well as too unlikely. With batchSize 1 the statistic is the
 * per-input score |NLL(x) - H_hat|, usable with the metrics in ./metrics.ts.
 *
 * Quantile: epsilon is the k-th smallest bootstrap statistic with k = K - floor(alpha K), so at most
 * a fraction alpha of the bootstrap batches exceed it (false-positive rate <= alpha up to
 * bootstrap error). NLLs may be in any unit (nats, bits/dim) as long as held-out and tested agree.
 */
import { makeRng } from "../../core/prng.js";

/** A fitted typicality test: the entropy estimate, the threshold epsilon, the batch size and alpha. */
export interface TypicalityTest {
  entropy: number;
  epsilon: number;
  batchSize: number;
  alpha: number;
}

/** Options of `fitTypicality`. */
export interface TypicalityOptions {
  /** Inputs per tested batch, M. */
  batchSize: number;
  /** Target false-positive rate for in-distribution batches. Default 0.01. */
  alpha?: number;
  /** Bootstrap batches K. Default 1000. */
  bootstraps?: number;
  /** Seed of the bootstrap draws (mulberry32). Default 0. */
  seed?: number;
  /** H_hat, e.g. the mean training NLL. Default: the mean of `heldOutNll`. */
  entropy?: number;
}

function checkBatchSize(where: string, batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`${where}: batchSize must be a positive integer, got ${batchSize}`);
}

function checkEntropy(where: string, entropy: number): void {
  if (!Number.isFinite(entropy))
    throw new Error(`${where}: entropy must be a finite number, got ${entropy}`);
}

/** The typicality test (Nalisnick et al. 2019) fitted to held-out NLLs: its threshold epsilon by bootstrap. */
export function fitTypicality(
  heldOutNll: ArrayLike<number>,
  options: TypicalityOptions,
): TypicalityTest {
  const where = "fitTypicality";
  const { batchSize, alpha = 0.01, bootstraps = 1000, seed = 0 } = options;
  checkBatchSize(where, batchSize);
  if (!(alpha > 0 && alpha < 1)) throw new Error(`${where}: alpha must be in (0, 1), got ${alpha}`);
  if (!Number.isInteger(bootstraps) || bootstraps < 1)
    throw new Error(`${where}: bootstraps must be a positive integer, got ${bootstraps}`);
  const n = heldOutNll.length;
  if (n === 0)
    throw new Error(`${where}: heldOutNll is empty; need in-distribution NLLs to bootstrap from`);
  let sum = 0;
  let bad = 0;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(heldOutNll[i])) bad++;
    sum += heldOutNll[i];
  }
  // One infinite or NaN held-out NLL would make the entropy and every bootstrap mean meaningless.
  if (bad > 0)
    throw new Error(
      `${where}: heldOutNll has ${bad} non-finite value(s); held-out in-distribution NLLs must be finite`,
    );
  const entropy = options.entropy ?? sum / n;
  checkEntropy(where, entropy);
  const rng = makeRng(seed);
  const stats = new Float64Array(bootstraps);
  for (let k = 0; k < bootstraps; k++) {
    let s = 0;
    for (let m = 0; m < batchSize; m++) s += heldOutNll[rng.int(n)];
    stats[k] = Math.abs(s / batchSize - entropy);
  }
  stats.sort();
  // The 1e-9 keeps alpha * K from rounding just below an integer (0.29 * 100 = 28.999999999999996).
  const index = Math.max(0, bootstraps - Math.floor(alpha * bootstraps + 1e-9) - 1);
  return { entropy, epsilon: stats[index], batchSize, alpha };
}

/** Split scores into consecutive batches of batchSize (drop the remainder) and return each batch's statistic (higher = more OOD). */
export function typicalityStatistics(
  nll: ArrayLike<number>,
  test: Pick<TypicalityTest, "entropy" | "batchSize">,
): Float64Array {
  const where = "typicalityStatistics";
  const { entropy, batchSize } = test;
  checkBatchSize(where, batchSize);
  checkEntropy(where, entropy);
  if (nll.length < batchSize)
    throw new Error(`${where}: got ${nll.length} NLL(s), fewer than one batch of ${batchSize}`);
  const batches = Math.floor(nll.length / batchSize);
  const out = new Float64Array(batches);
  let nan = 0;
  for (let b = 0; b < batches; b++) {
    let s = 0;
    for (let m = 0; m < batchSize; m++) s += nll[b * batchSize + m];
    // +Infinity (an input outside the support) gives statistic +Infinity: flagged, as it should be.
    out[b] = Math.abs(s / batchSize - entropy);
    if (Number.isNaN(out[b])) nan++;
  }
  if (nan > 0)
    throw new Error(
      `${where}: ${nan} batch(es) have a NaN mean NLL (a NaN NLL, or +Infinity and -Infinity in one batch)`,
    );
  return out;
}

/** True for each batch whose statistic exceeds epsilon (flagged out-of-distribution). */
export function flagBatches(nll: ArrayLike<number>, test: TypicalityTest): boolean[] {
  return Array.from(typicalityStatistics(nll, test), (s) => s > test.epsilon);
}
