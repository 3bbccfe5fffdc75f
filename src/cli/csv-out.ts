/** Rows to CSV text with a header; numbers at full float32 precision. */
export function toCsv(columns: string[], rows: ArrayLike<number>, width: number, extra?: { name: string; values: ArrayLike<number> }): string {
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const header = [...columns, ...(extra ? [extra.name] : [])].map(quote).join(",");
  const lines = [header];
  const n = rows.length / width;
  for (let r = 0; r < n; r++) {
    const cells: string[] = [];
    for (let c = 0; c < width; c++) cells.push(String(Math.fround(rows[r * width + c])));
    if (extra) cells.push(String(extra.values[r]));
    lines.push(cells.join(","));
  }
  return lines.join("\n") + "\n";
}
