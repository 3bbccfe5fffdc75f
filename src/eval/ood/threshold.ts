/**
 * A score threshold from in-distribution scores (higher = more out-of-distribution): the
 * smallest stored score with at most `rate` of the scores above it, so that about that
 * fraction of in-distribution inputs is flagged.
 */
export function thresholdAtFalseAlarmRate(inScores: ArrayLike<number>, rate: number): number {
  if (!(rate > 0 && rate < 1))
    throw new Error(`thresholdAtFalseAlarmRate: rate must be in (0, 1), got ${rate}`);
  if (inScores.length === 0)
    throw new Error("thresholdAtFalseAlarmRate: no scores to calibrate on");
  const sorted = Float64Array.from(inScores).sort();
  if (Number.isNaN(sorted[sorted.length - 1]))
    throw new Error("thresholdAtFalseAlarmRate: a score is NaN");
  return sorted[Math.min(sorted.length - 1, Math.floor((1 - rate) * sorted.length))];
}
