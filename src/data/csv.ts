/**
 * CSV files of numeric columns -> a row-major Float64Array.
 *
 * Reads RFC 4180 style text: fields split by a delimiter (",", ";" or tab, detected from the
 * first record unless given), fields may be double-quoted ("" is a literal quote; quoted fields may
 * span lines), CRLF or LF line ends, a UTF-8 byte-order mark, blank lines and a trailing newline.
 * The first record is a header when any of its fields is not a number (or when `header` says so).
 * Every data field must be a finite decimal number: a missing value, text, NaN or Infinity is an
 * error naming the file, line and column, because a silently dropped or zeroed value would bias
 * every likelihood reported on the data.
 */
import { node } from "../core/node-builtins.js";
import { excerpt, nameExcerpt } from "../core/excerpt.js";

export type CsvDelimiter = "," | ";" | "\t";

export interface CsvOptions {
  /** Name used in error messages (the path, for `readCsvFile`). Default "<csv>". */
  file?: string;
  /** Field delimiter; detected from the first record when absent. */
  delimiter?: CsvDelimiter;
  /** Force the first record to be (true) or not be (false) a header; detected when absent. */
  header?: boolean;
}

export interface CsvTable {
  /** Column names: the header's, or "col1", "col2", ... when the file has none. */
  columns: string[];
  hasHeader: boolean;
  rows: number;
  cols: number;
  /** Values, row-major [rows, cols]. */
  data: Float64Array;
  delimiter: CsvDelimiter;
}

/** Reads and parses a CSV file (UTF-8); errors name `path`. */
export function readCsvFile(path: string, options: Omit<CsvOptions, "file"> = {}): CsvTable {
  return parseCsv(node.fs("readCsvFile").readFileSync(path, "utf8"), { ...options, file: path });
}

/** Parses CSV text of numeric columns; see the module comment for the accepted format. */
export function parseCsv(text: string, options: CsvOptions = {}): CsvTable {
  const file = options.file ?? "<csv>";
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const delimiter = options.delimiter ?? detectDelimiter(text);
  const records = splitRecords(text, delimiter, file);
  if (records.length === 0) throw new Error(`${file}: empty CSV file (no rows)`);

  const first = records[0];
  const hasHeader = options.header ?? first.fields.some((f) => !NUMBER.test(f.trim()));
  const cols = first.fields.length;
  const columns = hasHeader ? first.fields.map((f) => f.trim()) : first.fields.map((_, j) => `col${j + 1}`);
  if (hasHeader) checkColumnNames(columns, `${file}:${first.line}`);
  const body = hasHeader ? records.slice(1) : records;
  if (body.length === 0) throw new Error(`${file}: header on line ${first.line} but no data rows`);

  const data = new Float64Array(body.length * cols);
  body.forEach((rec, i) => {
    if (rec.fields.length !== cols) {
      throw new Error(
        `${file}:${rec.line}: expected ${cols} columns (as in line ${first.line}), got ${rec.fields.length}`,
      );
    }
    rec.fields.forEach((raw, j) => {
      data[i * cols + j] = parseNumber(raw, `${file}:${rec.line}: column ${j + 1} (${nameExcerpt(columns[j])})`);
    });
  });
  return { columns, hasHeader, rows: body.length, cols, data, delimiter };
}

/** Every column needs a name of its own: `score` and context columns pick columns by name. */
function checkColumnNames(columns: string[], where: string) {
  const empty = columns.flatMap((c, j) => (c === "" ? [j + 1] : []));
  if (empty.length > 0) throw new Error(`${where}: the header leaves column${empty.length > 1 ? "s" : ""} ${empty.join(", ")} without a name; name every column`);
  const seen = new Map<string, number>();
  columns.forEach((c, j) => {
    const before = seen.get(c);
    if (before !== undefined) throw new Error(`${where}: columns ${before + 1} and ${j + 1} are both named ${excerpt(c)}; column names must be unique`);
    seen.set(c, j);
  });
}

/** Plain decimal numbers only: no hex, no "Infinity", no empty string (which Number() reads as 0). */
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseNumber(raw: string, where: string): number {
  const s = raw.trim();
  if (s === "") throw new Error(`${where}: missing value`);
  if (/^[+-]?(nan|inf|infinity)$/i.test(s)) throw new Error(`${where}: ${excerpt(s)} is not allowed (values must be finite)`);
  if (!NUMBER.test(s)) throw new Error(`${where}: ${excerpt(s)} is not a number`);
  const v = Number(s);
  if (!Number.isFinite(v)) throw new Error(`${where}: ${excerpt(s)} overflows to ${v}`);
  return v;
}

/** The candidate delimiter seen most often on the first non-blank line; "," when none is seen. */
function detectDelimiter(text: string): CsvDelimiter {
  const line = text.split(/\r?\n/).find((l) => l.trim() !== "") ?? "";
  const unquoted = line.replace(/"([^"]|"")*"/g, "");
  let best: CsvDelimiter = ",";
  let bestCount = 0;
  for (const d of [",", ";", "\t"] as const) {
    const count = unquoted.split(d).length - 1;
    if (count > bestCount) [best, bestCount] = [d, count];
  }
  return best;
}

interface CsvRecord {
  /** 1-based line on which the record starts. */
  line: number;
  fields: string[];
}

/**
 * The longest field accepted. A CSV of numbers has short fields; a longer one means the file is
 * not such a CSV (a binary file, a stray quote), and the parse stops there instead of building
 * the field in memory.
 */
export const MAX_FIELD_CHARS = 65536;

/** Splits text into records of raw fields, honouring quotes; skips blank lines. */
function splitRecords(text: string, delim: string, file: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = "";
  let line = 1;
  let startLine = 1;
  let inQuotes = false;
  let quoteLine = 0;
  let touched = false; // the current record has content (so a blank line is not a record)
  const tooLong = (at: number): never => {
    throw new Error(`${file}:${at}: a field longer than ${MAX_FIELD_CHARS} characters (${excerpt(field)}); this is not a CSV of numbers (a binary file, or an unclosed quote?)`);
  };
  const endRecord = () => {
    fields.push(field);
    if (touched || fields.length > 1 || field.trim() !== "") records.push({ line: startLine, fields });
    fields = [];
    field = "";
    touched = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (ch === "\n") line++;
        field += ch;
        if (field.length > MAX_FIELD_CHARS) tooLong(quoteLine);
      }
      continue;
    }
    if (ch === '"' && field.trim() === "") {
      inQuotes = true;
      quoteLine = line;
      field = "";
      touched = true;
    } else if (ch === delim) {
      fields.push(field);
      field = "";
      touched = true;
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      endRecord();
      line++;
      startLine = line;
    } else {
      field += ch;
      if (field.length > MAX_FIELD_CHARS) tooLong(line);
    }
  }
  if (inQuotes) throw new Error(`${file}:${quoteLine}: unterminated quoted field`);
  if (field !== "" || fields.length > 0 || touched) endRecord();
  return records;
}
