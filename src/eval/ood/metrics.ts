/**
 * Threshold-free metrics for out-of-distribution (OOD) detection.
 *
 * Convention: a score is "higher = more anomalous"; OOD inputs are the POSITIVE class
 * (n_out of them), in-distribution inputs the negatives (n_in). An input is flagged at
 * threshold t when score >= t. Thresholds are the distinct observed scores t_1 > t_2 > ... > t_K,
 * and TP_k = #{out >= t_k}, FP_k = #{in >= t_k}, R_k = TP_k / n_out (recall = TPR),
 * P_k = TP_k / (TP_k + FP_k) (precision), R_0 = 0.
 *
 * - AUROC = P(out > in) + 0.5 P(out == in) over independent draws, i.e. the Mann-Whitney U
 *   statistic with midranks for ties divided by n_in n_out (Hanley & McNeil 1982). Computed
 *   exactly with integer counts: sum over distinct values v of out_eq(v) (in_below(v) + in_eq(v)/2).
 * - AUPR = average precision AP = sum_k (R_k - R_{k-1}) P_k (the step-wise area under the
 *   precision-recall curve, as sklearn's average_precision_score). Tied scores form ONE threshold
 *   step, so the value does not depend on the order of tied inputs (Davis & Goadrich 2006 on why
 *   interpolating PR curves linearly is wrong).
 * - FPR at TPR: FP_k / n_in at the HIGHEST threshold t_k with R_k >= tpr, i.e. the lowest
 *   false-positive rate any observed threshold reaches while catching at least `tpr` of the OOD
 *   inputs (FPR only grows as t falls). Reported as "FPR95" with tpr = 0.95 (Liang et al. 2018).
 *
 * All three sort the two sets once: O(n log n). +/-Infinity are valid scores (e.g. a row outside
 * the model's support has NLL = +Infinity); NaN is rejected because it has no place in the order.
 */

export interface OodMetrics {
  auroc: number;
  aupr: number;
  fprAt95Tpr: number;
  inCount: number;
  outCount: number;
}

/** Copies scores into a sorted Float64Array, with a clear error for empty sets and NaN scores. */
function sortedScores(
  where: string,
  which: "inScores" | "outScores",
  scores: ArrayLike<number>,
): Float64Array {
  if (scores.length === 0)
    throw new Error(`${where}: ${which} is empty; need at least one score in each set`);
  const out = Float64Array.from(scores);
  let nan = 0;
  let first = -1;
  for (let i = 0; i < out.length; i++) {
    if (Number.isNaN(out[i])) {
      if (first < 0) first = i;
      nan++;
    }
  }
  if (nan > 0)
    throw new Error(
      `${where}: ${which} has ${nan} NaN score(s) (first at index ${first}); scores must be numbers or +/-Infinity`,
    );
  // TypedArray sort is numeric and orders -Infinity < finite < +Infinity (unlike (a, b) => a - b,
  // which gives NaN for Infinity - Infinity).
  return out.sort();
}

/** One distinct threshold, walked from the highest score down. */
interface Step {
  inEq: number;
  outEq: number;
}

/**
 * Calls `visit` for each distinct score in DESCENDING order with how many in/out scores equal it.
 * Equality is ===, so -0 and +0 are one threshold (typed sort keeps them adjacent).
 */
function walkDescending(
  inS: Float64Array,
  outS: Float64Array,
  visit: (s: Step) => boolean | void,
): void {
  let i = inS.length - 1;
  let j = outS.length - 1;
  while (i >= 0 || j >= 0) {
    const v = i < 0 ? outS[j] : j < 0 ? inS[i] : Math.max(inS[i], outS[j]);
    let inEq = 0;
    let outEq = 0;
    while (i >= 0 && inS[i] === v) {
      i--;
      inEq++;
    }
    while (j >= 0 && outS[j] === v) {
      j--;
      outEq++;
    }
    if (visit({ inEq, outEq }) === true) return;
  }
}

function aurocSorted(inS: Float64Array, outS: Float64Array): number {
  // Walking down, inAbove counts in-scores strictly above the current value, so in-scores strictly
  // below it are n_in - inAbove - inEq. Twice U stays an exact integer (< 2^53 for 10^7 x 10^7).
  let inAbove = 0;
  let twiceU = 0;
  walkDescending(inS, outS, ({ inEq, outEq }) => {
    const inBelow = inS.length - inAbove - inEq;
    twiceU += outEq * (2 * inBelow + inEq);
    inAbove += inEq;
  });
  return twiceU / (2 * inS.length * outS.length);
}

function auprSorted(inS: Float64Array, outS: Float64Array): number {
  let tp = 0;
  let fp = 0;
  let ap = 0;
  walkDescending(inS, outS, ({ inEq, outEq }) => {
    tp += outEq;
    fp += inEq;
    // (R_k - R_{k-1}) = outEq / n_out, divided out once at the end (so a perfect ranking is exactly
    // 1, not 1 + rounding); a step with no new positives adds nothing.
    if (outEq > 0) ap += outEq * (tp / (tp + fp));
  });
  return Math.min(1, ap / outS.length);
}

function fprSorted(inS: Float64Array, outS: Float64Array, tpr: number): number {
  let tp = 0;
  let fp = 0;
  let fpr = 1;
  walkDescending(inS, outS, ({ inEq, outEq }) => {
    tp += outEq;
    fp += inEq;
    // Compare the rate itself: TP / n_out and a literal like 0.95 round the same way when equal.
    if (tp / outS.length >= tpr) {
      fpr = fp / inS.length;
      return true;
    }
  });
  return fpr;
}

function checkTpr(where: string, tpr: number): void {
  if (!(tpr > 0 && tpr <= 1)) throw new Error(`${where}: tpr must be in (0, 1], got ${tpr}`);
}

/** Area under the ROC curve = P(out > in) + 0.5 P(out == in), exactly (Mann-Whitney U with midranks for ties). */
export function auroc(inScores: ArrayLike<number>, outScores: ArrayLike<number>): number {
  return aurocSorted(
    sortedScores("auroc", "inScores", inScores),
    sortedScores("auroc", "outScores", outScores),
  );
}

/** Area under the precision-recall curve with OOD as positive: average precision where tied scores form ONE threshold step (no order dependence on ties). */
export function aupr(inScores: ArrayLike<number>, outScores: ArrayLike<number>): number {
  return auprSorted(
    sortedScores("aupr", "inScores", inScores),
    sortedScores("aupr", "outScores", outScores),
  );
}

/**
 * False-positive rate (fraction of in-distribution scores flagged) at the strictest (highest)
 * observed threshold whose true-positive rate is >= tpr, flag = score >= threshold; this is the
 * smallest FPR any observed threshold reaches at that TPR. Default tpr 0.95.
 */
export function fprAtTpr(
  inScores: ArrayLike<number>,
  outScores: ArrayLike<number>,
  tpr = 0.95,
): number {
  checkTpr("fprAtTpr", tpr);
  return fprSorted(
    sortedScores("fprAtTpr", "inScores", inScores),
    sortedScores("fprAtTpr", "outScores", outScores),
    tpr,
  );
}

/** AUROC, AUPR (OOD positive) and FPR at 95% TPR, sorting each set once. */
export function oodMetrics(inScores: ArrayLike<number>, outScores: ArrayLike<number>): OodMetrics {
  const inS = sortedScores("oodMetrics", "inScores", inScores);
  const outS = sortedScores("oodMetrics", "outScores", outScores);
  return {
    auroc: aurocSorted(inS, outS),
    aupr: auprSorted(inS, outS),
    fprAt95Tpr: fprSorted(inS, outS, 0.95),
    inCount: inS.length,
    outCount: outS.length,
  };
}
