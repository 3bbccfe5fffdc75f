/**
 * Viridis (van der Walt & Smith, matplotlib 2.0 default): perceptually uniform and readable in
 * grayscale. Approximated by linear interpolation between its 8 evenly spaced anchor colours
 * (matplotlib's viridis at 0, 1/7, ..., 1), which stays within a few levels of the 256-entry table.
 */
const VIRIDIS_ANCHORS: ReadonlyArray<readonly [number, number, number]> = [
  [68, 1, 84],
  [70, 50, 126],
  [54, 92, 141],
  [39, 127, 142],
  [31, 161, 135],
  [74, 193, 109],
  [160, 218, 57],
  [253, 231, 37],
];

/** RGB of viridis at t in [0, 1] (clamped; NaN gives mid-gray so missing values stand out). */
export function viridis(t: number): [number, number, number] {
  if (Number.isNaN(t)) return [128, 128, 128];
  const u = Math.min(1, Math.max(0, t)) * (VIRIDIS_ANCHORS.length - 1);
  const i = Math.min(Math.floor(u), VIRIDIS_ANCHORS.length - 2);
  const f = u - i;
  const a = VIRIDIS_ANCHORS[i];
  const b = VIRIDIS_ANCHORS[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k]))) as [number, number, number];
}
