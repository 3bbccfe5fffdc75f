export interface CsvColumn {
  name: string;
  values: ArrayLike<number>;
}

/**
 * Rows to CSV text with a header, then any extra columns. Numbers are written at full float32
 * precision (what the model computed in), or with `exact` as the float64 values given (what a
 * file held: ids and labels come back unchanged).
 */
export function toCsv(
  columns: string[],
  rows: ArrayLike<number>,
  width: number,
  extra?: CsvColumn | CsvColumn[],
  { exact = false }: { exact?: boolean } = {},
): string {
  const extras = extra === undefined ? [] : Array.isArray(extra) ? extra : [extra];
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const header = [...columns, ...extras.map((e) => e.name)].map(quote).join(",");
  const lines = [header];
  const n = rows.length / width;
  const cell = exact ? (v: number) => String(v) : (v: number) => String(Math.fround(v));
  for (let r = 0; r < n; r++) {
    const cells: string[] = [];
    for (let c = 0; c < width; c++) cells.push(cell(rows[r * width + c]));
    for (const e of extras) cells.push(String(e.values[r]));
    lines.push(cells.join(","));
  }
  return lines.join("\n") + "\n";
}
