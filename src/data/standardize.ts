/**
 * Per-column standardisation z = (x - mean) / std, fitted on training rows only (so validation
 * and test rows do not leak into the fit), stored as plain JSON next to a trained flow.
 *
 * A flow trained on z reports log p_z(z); the density in the original units is
 *   log p_x(x) = log p_z(z) + log|det dz/dx| = log p_z(z) - sum_j log std_j,
 * so `standardizerLogDet` is the per-row constant to add.
 */

/** Row-major float data. */
export type FloatData = Float32Array | Float64Array;

/** JSON-serialisable standardiser. */
export interface Standardizer {
  kind: "standardizer";
  mean: number[];
  /** Population std (divisor n) per column; 1 for constant columns (see `notes`). */
  std: number[];
  /** Human-readable notes, e.g. which columns were constant. */
  notes: string[];
}

/**
 * Fits mean and std per column over `rows` (row indices; all rows when absent) of row-major
 * `data` with `cols` columns. Constant columns get std 1 (a division by 0 would give NaN, and
 * any positive value leaves them constant) and a note.
 */
export function fitStandardizer(
  data: FloatData,
  cols: number,
  rows?: ArrayLike<number>,
  columnNames?: string[],
): Standardizer {
  checkShape("fitStandardizer", data, cols);
  const idx = rows ?? Array.from({ length: data.length / cols }, (_, i) => i);
  if (idx.length === 0) throw new Error("fitStandardizer: no rows to fit on");
  const mean = new Array<number>(cols).fill(0);
  const m2 = new Array<number>(cols).fill(0);
  // Welford's update: stable when the mean is large relative to the spread.
  for (let k = 0; k < idx.length; k++) {
    const r = idx[k];
    if (!Number.isInteger(r) || r < 0 || r * cols >= data.length)
      throw new Error(`fitStandardizer: row index ${r} out of range`);
    for (let j = 0; j < cols; j++) {
      const x = data[r * cols + j];
      const d = x - mean[j];
      mean[j] += d / (k + 1);
      m2[j] += d * (x - mean[j]);
    }
  }
  const notes: string[] = [];
  const std = m2.map((s, j) => {
    const sd = Math.sqrt(s / idx.length);
    if (sd > 0 && Number.isFinite(sd)) return sd;
    const name = columnNames?.[j] !== undefined ? ` (${columnNames[j]})` : "";
    notes.push(
      `column ${j + 1}${name} is constant (${mean[j]}) on the fitting rows; its std is set to 1`,
    );
    return 1;
  });
  return { kind: "standardizer", mean, std, notes };
}

/** z = (x - mean) / std, row-major, same array type as `data`. */
export function standardizeTransform(s: Standardizer, data: FloatData): FloatData {
  const cols = s.mean.length;
  checkShape("standardizeTransform", data, cols);
  const out =
    data instanceof Float32Array ? new Float32Array(data.length) : new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = (data[i] - s.mean[i % cols]) / s.std[i % cols];
  return out;
}

/** x = z * std + mean, row-major, same array type as `data`. */
export function standardizeInverse(s: Standardizer, data: FloatData): FloatData {
  const cols = s.mean.length;
  checkShape("standardizeInverse", data, cols);
  const out =
    data instanceof Float32Array ? new Float32Array(data.length) : new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] * s.std[i % cols] + s.mean[i % cols];
  return out;
}

/** log|det dz/dx| per row = -sum_j log std_j; add it to log p_z(z) to get log p_x(x). */
export function standardizerLogDet(s: Standardizer): number {
  return -s.std.reduce((acc, sd) => acc + Math.log(sd), 0);
}

/** Validates a parsed JSON object as a standardiser (e.g. read back from disk). */
export function standardizerFromJSON(obj: unknown): Standardizer {
  const o = obj as Partial<Standardizer> | null;
  const ok =
    o !== null &&
    typeof o === "object" &&
    o.kind === "standardizer" &&
    Array.isArray(o.mean) &&
    Array.isArray(o.std) &&
    o.mean.length === o.std.length &&
    o.mean.every(Number.isFinite) &&
    o.std.every((v) => Number.isFinite(v) && v > 0);
  if (!ok)
    throw new Error(
      'standardizerFromJSON: expected {kind: "standardizer", mean: number[], std: positive number[]} of equal lengths',
    );
  return {
    kind: "standardizer",
    mean: [...o.mean!],
    std: [...o.std!],
    notes: Array.isArray(o.notes) ? o.notes.map(String) : [],
  };
}

function checkShape(where: string, data: FloatData, cols: number): void {
  if (!Number.isInteger(cols) || cols <= 0)
    throw new Error(`${where}: cols must be a positive integer, got ${cols}`);
  if (data.length % cols !== 0)
    throw new Error(`${where}: data length ${data.length} is not a multiple of ${cols} columns`);
}
