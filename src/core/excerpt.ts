/**
 * Input quoted in a message must stay short and printable: a field of a binary file read as
 * CSV, or a corrupt config, would otherwise put raw bytes, newlines or megabytes on the
 * terminal.
 */

/** Control characters, U+FFFD (bytes that were not UTF-8), lone surrogates and line/paragraph separators. */
const UNPRINTABLE =
  /[\u0000-\u001f\u007f-\u009f\ufffd\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function escape(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    if (c === "\t") return "\\t";
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/**
 * `text` as a double-quoted, escaped excerpt of at most about `max` characters, e.g.
 * `"\u0000\u0001PK..." (50000000 characters)`.
 */
export function excerpt(text: string, max = 40): string {
  let head = escape(text.slice(0, max)).replace(/"/g, '\\"');
  let cut = text.length > max;
  if (head.length > max) {
    // Escapes lengthen the text: cut again, and not inside an escape.
    head = head.slice(0, max).replace(/\\(u[0-9a-f]{0,3})?$/, "");
    cut = true;
  }
  return `"${head}${cut ? `..." (${text.length} characters)` : `"`}`;
}

/** A message on one line of at most `max` characters (escaped, cut with "..."), for the terminal. */
export function oneLine(message: string, max = 300): string {
  const flat = escape(message);
  return flat.length <= max ? flat : `${flat.slice(0, max - 3)}...`;
}

/**
 * A value read from a file, as short escaped JSON for a message (`[[[[... (2000 characters)`):
 * JSON.stringify of a hostile config can be megabytes. Values JSON cannot write (undefined,
 * BigInt, cycles) are shown with String().
 */
export function jsonExcerpt(value: unknown, max = 40): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  const head = escape(text.slice(0, max));
  if (text.length <= max && head.length <= max) return head;
  return `${head.slice(0, max).replace(/\\(u[0-9a-f]{0,3})?$/, "")}... (${text.length} characters)`;
}

/** A name from a file (a CSV column, a JSON key) as it is when short and printable, else as an excerpt. */
export function nameExcerpt(name: string, max = 40): string {
  return name.length <= max && escape(name) === name ? name : excerpt(name, max);
}
