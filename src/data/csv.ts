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
 *
 * `CsvReader` parses incrementally (text in pieces of any size), and `readCsvFile` feeds it the
 * file in 64 KiB chunks, so memory is bounded by the values plus one record: a field over
 * MAX_FIELD_CHARS or a line over MAX_RECORD_CHARS stops the parse.
 */
import { node } from "../core/node-builtins.js";
import { excerpt, nameExcerpt } from "../core/excerpt.js";

/** The field delimiters a CSV may use. */
export type CsvDelimiter = "," | ";" | "\t";

/** Options of `parseCsv` and `readCsvFile`. */
export interface CsvOptions {
  /** Name used in error messages (the path, for `readCsvFile`). Default "<csv>". */
  file?: string;
  /** Field delimiter; detected from the first record when absent. */
  delimiter?: CsvDelimiter;
  /** Force the first record to be (true) or not be (false) a header; detected when absent. */
  header?: boolean;
}

/** A parsed CSV: column names and the values, row-major. */
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

/** Bytes read from the file at a time by `readCsvFile`. */
const CHUNK_BYTES = 1 << 16;

/**
 * Reads and parses a CSV file (UTF-8); errors name `path`. The file is read in chunks of 64 KiB
 * and each record becomes numbers as soon as it ends, so memory is the values (8 bytes each)
 * plus one record, never the file's text (a 22 MB file once took 490 MB).
 */
export function readCsvFile(path: string, options: Omit<CsvOptions, "file"> = {}): CsvTable {
  const fs = node.fs("readCsvFile");
  const reader = new CsvReader({ ...options, file: path });
  const fd = fs.openSync(path, "r");
  try {
    const buf = new Uint8Array(CHUNK_BYTES);
    // Invalid UTF-8 becomes U+FFFD, as in readFileSync(path, "utf8"); stream: a character may span two chunks.
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; )
      reader.push(decoder.decode(buf.subarray(0, n), { stream: true }));
    reader.push(decoder.decode());
  } finally {
    fs.closeSync(fd);
  }
  return reader.end();
}

/** Parses CSV text of numeric columns; see the module comment for the accepted format. */
export function parseCsv(text: string, options: CsvOptions = {}): CsvTable {
  const reader = new CsvReader(options);
  reader.push(text);
  return reader.end();
}

/**
 * The longest record (line) accepted, in characters: a row of 100,000 numbers (the widest
 * flow, models/vector.ts) fits, and a longer line means the file is not such a CSV.
 */
export const MAX_RECORD_CHARS = 1 << 22;

/**
 * An incremental CSV parser: `push` text in pieces of any size (a quote, a CRLF or a "" may
 * be split between pieces), then `end` for the table. Records are checked and turned into
 * numbers as they end, so errors come in file order.
 */
export class CsvReader {
  private readonly file: string;
  private readonly options: CsvOptions;
  private delim: string | null;
  /** Text held until the first non-blank line is complete, to detect the delimiter from it. */
  private pending = "";
  private started = false;
  // Record state.
  private fields: string[] = [];
  private field = "";
  private line = 1;
  private startLine = 1;
  private inQuotes = false;
  private quoteLine = 0;
  private touched = false; // the current record has content (so a blank line is not a record)
  private recordChars = 0;
  private afterQuote = false; // a '"' inside quotes ended the last piece: the next character says "" or close
  private afterCR = false; // a '\r' ended a record: a following '\n' belongs to it
  // Table state.
  private first: { line: number; fields: string[] } | null = null;
  private hasHeader = false;
  private cols = 0;
  private columns: string[] = [];
  private values = new Float64Array(1024);
  private count = 0;
  private rows = 0;

  constructor(options: CsvOptions = {}) {
    this.options = options;
    this.file = options.file ?? "<csv>";
    this.delim = options.delimiter ?? null;
  }

  push(text: string): void {
    if (!this.started) {
      if (text === "") return;
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.delim !== null) {
      this.feed(text);
      return;
    }
    this.pending += text;
    const firstLine = completeFirstLine(this.pending);
    if (firstLine === null && this.pending.length <= MAX_RECORD_CHARS) return;
    this.delim = detectDelimiter(firstLine ?? this.pending);
    const held = this.pending;
    this.pending = "";
    this.feed(held);
  }

  end(): CsvTable {
    if (this.delim === null) {
      this.delim = detectDelimiter(this.pending);
      const held = this.pending;
      this.pending = "";
      this.feed(held);
    }
    if (this.afterQuote) {
      this.afterQuote = false;
      this.inQuotes = false;
    }
    if (this.inQuotes) throw new Error(`${this.file}:${this.quoteLine}: unterminated quoted field`);
    if (this.field !== "" || this.fields.length > 0 || this.touched) this.endRecord();
    if (this.first === null) throw new Error(`${this.file}: empty CSV file (no rows)`);
    if (this.rows === 0)
      throw new Error(`${this.file}: header on line ${this.first.line} but no data rows`);
    return {
      columns: this.columns,
      hasHeader: this.hasHeader,
      rows: this.rows,
      cols: this.cols,
      data: this.values.slice(0, this.count),
      delimiter: this.delim as CsvDelimiter,
    };
  }

  private feed(text: string): void {
    const delim = this.delim;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (++this.recordChars > MAX_RECORD_CHARS) this.tooLongRecord();
      if (this.afterCR) {
        this.afterCR = false;
        if (ch === "\n") continue;
      }
      if (this.afterQuote) {
        this.afterQuote = false;
        if (ch === '"') {
          this.add('"', this.quoteLine);
          continue;
        }
        this.inQuotes = false; // the quote closed the field; ch is read as outside quotes below
      }
      if (this.inQuotes) {
        if (ch === '"') {
          if (i + 1 === text.length) this.afterQuote = true;
          else if (text[i + 1] === '"') {
            this.add('"', this.quoteLine);
            i++;
          } else this.inQuotes = false;
        } else {
          if (ch === "\n") this.line++;
          this.add(ch, this.quoteLine);
        }
        continue;
      }
      if (ch === '"' && this.field.trim() === "") {
        this.inQuotes = true;
        this.quoteLine = this.line;
        this.field = "";
        this.touched = true;
      } else if (ch === delim) {
        this.fields.push(this.field);
        this.field = "";
        this.touched = true;
      } else if (ch === "\n" || ch === "\r") {
        this.afterCR = ch === "\r";
        this.endRecord();
        this.line++;
        this.startLine = this.line;
      } else this.add(ch, this.line);
    }
  }

  private add(ch: string, at: number): void {
    this.field += ch;
    if (this.field.length > MAX_FIELD_CHARS) {
      throw new Error(
        `${this.file}:${at}: a field longer than ${MAX_FIELD_CHARS} characters (${excerpt(this.field)}); this is not a CSV of numbers (a binary file, or an unclosed quote?)`,
      );
    }
  }

  private tooLongRecord(): never {
    throw new Error(
      `${this.file}:${this.startLine}: a line longer than ${MAX_RECORD_CHARS} characters; this is not a CSV of numbers (a binary file, or an unclosed quote?)`,
    );
  }

  private endRecord(): void {
    const { fields, field } = this;
    fields.push(field);
    if (this.touched || fields.length > 1 || field.trim() !== "")
      this.record(this.startLine, fields);
    this.fields = [];
    this.field = "";
    this.touched = false;
    this.recordChars = 0;
  }

  private record(line: number, fields: string[]): void {
    if (this.first === null) {
      this.first = { line, fields };
      this.hasHeader = this.options.header ?? fields.some((f) => !NUMBER.test(f.trim()));
      this.cols = fields.length;
      this.columns = this.hasHeader
        ? fields.map((f) => f.trim())
        : fields.map((_, j) => `col${j + 1}`);
      if (this.hasHeader) {
        checkColumnNames(this.columns, `${this.file}:${line}`);
        return;
      }
    }
    if (fields.length !== this.cols) {
      throw new Error(
        `${this.file}:${line}: expected ${this.cols} columns (as in line ${this.first.line}), got ${fields.length}`,
      );
    }
    if (this.count + this.cols > this.values.length) {
      const grown = new Float64Array(Math.max(2 * this.values.length, this.count + this.cols));
      grown.set(this.values.subarray(0, this.count));
      this.values = grown;
    }
    fields.forEach((raw, j) => {
      this.values[this.count + j] = parseNumber(
        raw,
        `${this.file}:${line}: column ${j + 1} (${nameExcerpt(this.columns[j])})`,
      );
    });
    this.count += this.cols;
    this.rows++;
  }
}

/** The first non-blank line of `text` when a line end follows it, else null. */
function completeFirstLine(text: string): string | null {
  const re = /\r\n|\n|\r/g;
  let from = 0;
  for (let m; (m = re.exec(text)); from = re.lastIndex) {
    const line = text.slice(from, m.index);
    if (line.trim() !== "") return line;
  }
  return null;
}

/** Every column needs a name of its own: `score` and context columns pick columns by name. */
function checkColumnNames(columns: string[], where: string) {
  const empty = columns.flatMap((c, j) => (c === "" ? [j + 1] : []));
  if (empty.length > 0)
    throw new Error(
      `${where}: the header leaves column${empty.length > 1 ? "s" : ""} ${empty.join(", ")} without a name; name every column`,
    );
  const seen = new Map<string, number>();
  columns.forEach((c, j) => {
    const before = seen.get(c);
    if (before !== undefined)
      throw new Error(
        `${where}: columns ${before + 1} and ${j + 1} are both named ${excerpt(c)}; column names must be unique`,
      );
    seen.set(c, j);
  });
}

/** Plain decimal numbers only: no hex, no "Infinity", no empty string (which Number() reads as 0). */
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseNumber(raw: string, where: string): number {
  const s = raw.trim();
  if (s === "") throw new Error(`${where}: missing value`);
  if (/^[+-]?(nan|inf|infinity)$/i.test(s))
    throw new Error(`${where}: ${excerpt(s)} is not allowed (values must be finite)`);
  if (!NUMBER.test(s)) throw new Error(`${where}: ${excerpt(s)} is not a number`);
  const v = Number(s);
  if (!Number.isFinite(v)) throw new Error(`${where}: ${excerpt(s)} overflows to ${v}`);
  return v;
}

/** The candidate delimiter seen most often on `line` (the first non-blank one); "," when none is seen. */
function detectDelimiter(text: string): CsvDelimiter {
  const line = text.split(/\r\n|\n|\r/).find((l) => l.trim() !== "") ?? "";
  const unquoted = line.replace(/"([^"]|"")*"/g, "");
  let best: CsvDelimiter = ",";
  let bestCount = 0;
  for (const d of [",", ";", "\t"] as const) {
    const count = unquoted.split(d).length - 1;
    if (count > bestCount) [best, bestCount] = [d, count];
  }
  return best;
}

/**
 * The longest field accepted. A CSV of numbers has short fields; a longer one means the file is
 * not such a CSV (a binary file, a stray quote), and the parse stops there instead of building
 * the field in memory.
 */
export const MAX_FIELD_CHARS = 65536;
