/**
 * Seeded generators of malformed input files for the fuzz suite (test/fuzz-inputs.test.ts):
 * CSV, IDX, safetensors and run config.json. Nothing here is committed as a binary; every case
 * is made from a seed, so a failure names a case that the same seed makes again.
 *
 * `malformed*` lists are cases that are wrong for certain (the command must fail on each);
 * `mutate*` makes random changes that may or may not leave a valid file (the reader must then
 * either accept it or fail cleanly).
 */

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  bytes(n: number): Uint8Array;
}

/** mulberry32: small, fast and good enough to pick cases. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    pick: (items) => items[int(items.length)],
    bytes: (n) => Uint8Array.from({ length: n }, () => int(256)),
  };
}

export interface FuzzCase {
  name: string;
  bytes: Uint8Array;
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

// ------------------------------------------------------------------ CSV

/** A valid numeric CSV (header x,y; `rows` rows), the base the CSV cases break. */
export function validCsv(r: Rng, rows = 40): string {
  const lines = ["x,y"];
  for (let i = 0; i < rows; i++)
    lines.push(`${(r.next() * 4 - 2).toFixed(4)},${(r.next() * 4 - 2).toFixed(4)}`);
  return lines.join("\n") + "\n";
}

/** CSV files that no numeric-CSV reader may accept. */
export function malformedCsvs(r: Rng): FuzzCase[] {
  const base = validCsv(r);
  const lines = base.trimEnd().split("\n");
  const withCell = (cell: string) => {
    const i = 1 + r.int(lines.length - 1);
    const parts = lines[i].split(",");
    parts[r.int(2)] = cell;
    return [...lines.slice(0, i), parts.join(","), ...lines.slice(i + 1)].join("\n") + "\n";
  };
  const utf16 = new Uint8Array(2 + base.length * 2);
  utf16.set([0xff, 0xfe]);
  for (let i = 0; i < base.length; i++) utf16[2 + 2 * i] = base.charCodeAt(i);
  const cases: [string, string | Uint8Array][] = [
    ["empty file", ""],
    ["blank lines only", "\n\r\n   \n\n"],
    ["header only", "x,y\n"],
    ["BOM and CRLF header only", "\ufeffx,y\r\n"],
    ["binary garbage", r.bytes(4000)],
    ["binary garbage after a header", concat(utf8("x,y\n"), r.bytes(3000))],
    [
      "truncated row (cut after the delimiter)",
      base.slice(0, base.lastIndexOf(",", base.length - 2) + 1),
    ],
    ["truncated row (one field left)", base.slice(0, base.lastIndexOf(",", base.length - 2))],
    ["ragged row, one field too many", withCell("1,2")],
    [
      "ragged rows with CRLF",
      base.replace(/\n/g, "\r\n").replace(/\r\n([^,\r]*),[^\r]*\r\n$/, "\r\n$1\r\n"),
    ],
    ["a huge unquoted field", `x,y\n${"7".repeat(200_000)},1\n`],
    ["a huge quoted field", `x,y\n"${"ab".repeat(100_000)}",1\n`],
    ["a number that overflows", withCell("9".repeat(400))],
    ["NaN", withCell("NaN")],
    ["Infinity", withCell("Infinity")],
    ["-inf", withCell("-inf")],
    ["nan quoted", withCell('"nan"')],
    ["an unbalanced quote that never closes", withCell('"1.5')],
    ["a quote inside a field", withCell('1"5')],
    ["a text value", withCell("abc")],
    ["a hex value", withCell("0x1f")],
    ["an empty field", withCell("")],
    ["a NUL inside a number", withCell("1\u00002")],
    ["UTF-16 with its byte-order mark", utf16],
    ["duplicate column names", base.replace("x,y", "x,x")],
    ["an empty column name", base.replace("x,y", "x,")],
    [
      "lone carriage returns as line ends",
      base.replace(/\n/g, "\r").replace(/\r([^,\r]*),[^\r]*\r$/, "\r$1\r"),
    ],
  ];
  return cases.map(([name, v]) => ({ name, bytes: typeof v === "string" ? utf8(v) : v }));
}

/** Random edits of a valid CSV (may stay valid): bytes flipped, special characters put in or taken out. */
export function mutateCsv(r: Rng, text: string): FuzzCase {
  const specials = [
    '"',
    ",",
    ";",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "\u0000",
    "\ufeff",
    "e",
    "-",
    ".",
    "NaN",
    "inf",
    " ",
    '""',
    "\u00e9",
    "\ud800",
  ];
  let s = text;
  const edits: string[] = [];
  for (let k = 1 + r.int(4); k > 0; k--) {
    const at = r.int(s.length + 1);
    switch (r.int(4)) {
      case 0: {
        const c = r.pick(specials);
        s = s.slice(0, at) + c + s.slice(at);
        edits.push(`insert ${JSON.stringify(c)} at ${at}`);
        break;
      }
      case 1:
        s = s.slice(0, at) + s.slice(at + 1 + r.int(8));
        edits.push(`delete at ${at}`);
        break;
      case 2:
        s = s.slice(0, at);
        edits.push(`truncate at ${at}`);
        break;
      default: {
        const c = String.fromCharCode(r.int(256));
        s = s.slice(0, at) + c + s.slice(at + 1);
        edits.push(`replace at ${at} by ${JSON.stringify(c)}`);
      }
    }
  }
  return { name: edits.join(", "), bytes: utf8(s) };
}

// ------------------------------------------------------------------ IDX

/** An IDX file of unsigned bytes: magic 00 00 08 ndims, big-endian dims, values. */
export function idxBytes(dims: number[], data: Uint8Array): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  header.set([0, 0, 0x08, dims.length]);
  const view = new DataView(header.buffer);
  dims.forEach((d, i) => view.setInt32(4 + 4 * i, d, false));
  return concat(header, data);
}

/**
 * IDX files that must be refused, made from a valid image file (`valid`, dims [n, 28, 28]) and
 * `gzip` (a gzip compressor, passed in so that this module needs no Node import).
 */
export function malformedIdx(
  r: Rng,
  valid: Uint8Array,
  gzip: (b: Uint8Array) => Uint8Array,
): FuzzCase[] {
  const withHeader = (edit: (b: Uint8Array, v: DataView) => void) => {
    const b = valid.slice();
    edit(b, new DataView(b.buffer));
    return b;
  };
  const gz = gzip(valid);
  const flipped = gz.slice();
  for (let i = 0; i < 8; i++) flipped[10 + r.int(gz.length - 18)] ^= 1 + r.int(255);
  const cases: [string, Uint8Array][] = [
    ["empty file", new Uint8Array(0)],
    ["three bytes", valid.subarray(0, 3)],
    [
      "wrong magic (a PNG signature)",
      concat(Uint8Array.of(0x89, 0x50, 0x4e, 0x47), valid.subarray(4)),
    ],
    ["random bytes", r.bytes(3000)],
    ["data type float32", withHeader((b) => (b[2] = 0x0d))],
    ["unknown data type", withHeader((b) => (b[2] = 0x42))],
    ["zero dimensions", withHeader((b) => (b[3] = 0))],
    ["255 dimensions, header truncated", withHeader((b) => (b[3] = 255))],
    ["a negative dimension", withHeader((_, v) => v.setInt32(8, -28, false))],
    ["a zero dimension", withHeader((_, v) => v.setInt32(4, 0, false))],
    [
      "dimensions whose product overflows",
      withHeader((_, v) => [4, 8, 12].forEach((o) => v.setInt32(o, 0x7fffffff, false))),
    ],
    [
      "more images declared than stored",
      withHeader((_, v) => v.setInt32(4, v.getInt32(4, false) + 1, false)),
    ],
    ["truncated payload", valid.subarray(0, valid.length - 1 - r.int(700))],
    ["trailing bytes", concat(valid, r.bytes(5))],
    ["images of the wrong size", idxBytes([4, 27, 29], new Uint8Array(4 * 27 * 29))],
    ["only two dimensions", idxBytes([4, 784], new Uint8Array(4 * 784))],
    ["truncated gzip", gz.subarray(0, Math.floor(gz.length / 2))],
    ["gzip with corrupt bytes", flipped],
    ["gzip magic then garbage", concat(Uint8Array.of(0x1f, 0x8b), r.bytes(500))],
    ["gzip of a truncated file", gzip(valid.subarray(0, valid.length - 10))],
  ];
  return cases.map(([name, bytes]) => ({ name, bytes }));
}

// ------------------------------------------------------------------ safetensors

function splitSafetensors(bytes: Uint8Array): { header: Record<string, any>; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return {
    header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))),
    data: bytes.subarray(8 + n),
  };
}

/** A safetensors file from a header object and data bytes (the length field made to match). */
export function joinSafetensors(
  header: unknown,
  data: Uint8Array,
  headerText = JSON.stringify(header),
): Uint8Array {
  const json = utf8(headerText);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
  return concat(len, json, data);
}

/** safetensors files that must be refused, made from a valid one (`valid`, with several tensors). */
export function malformedSafetensors(r: Rng, valid: Uint8Array): FuzzCase[] {
  const { header, data } = splitSafetensors(valid);
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  const name = r.pick(names);
  const edit = (f: (h: Record<string, any>) => void) => {
    const h = structuredClone(header);
    f(h);
    return joinSafetensors(h, data);
  };
  const withLength = (n: bigint) => {
    const b = valid.slice();
    new DataView(b.buffer).setBigUint64(0, n, true);
    return b;
  };
  const text = JSON.stringify(header);
  const cases: [string, Uint8Array][] = [
    ["empty file", new Uint8Array(0)],
    ["five bytes", valid.subarray(0, 5)],
    ["header length 2^64 - 1 (-1 as signed)", withLength(0xffffffffffffffffn)],
    ["header length 2^63", withLength(1n << 63n)],
    ["header length past the end", withLength(BigInt(valid.length))],
    ["header length zero", withLength(0n)],
    ["header length one short", withLength(BigInt(text.length - 1))],
    ["truncated in the header", valid.subarray(0, 8 + r.int(text.length))],
    ["truncated in the data", valid.subarray(0, valid.length - 1 - r.int(data.length - 1))],
    ["invalid JSON", joinSafetensors(null, data, text.slice(0, -1) + ",}")],
    [
      "header not UTF-8",
      concat(valid.subarray(0, 8), Uint8Array.of(0xff, 0xfe), valid.subarray(10)),
    ],
    ["header a JSON array", joinSafetensors([1, 2], data)],
    [
      "header a deeply nested array",
      joinSafetensors(null, data, "[".repeat(100_000) + "]".repeat(100_000)),
    ],
    [
      "offsets past the data",
      edit((h) => (h[name].data_offsets = [h[name].data_offsets[0], data.length + 8])),
    ],
    [
      "offsets end before they begin",
      edit((h) => (h[name].data_offsets = [h[name].data_offsets[1], h[name].data_offsets[0]])),
    ],
    [
      "overlapping offsets",
      edit((h) =>
        names.forEach(
          (n) => (h[n].data_offsets = [0, h[n].data_offsets[1] - h[n].data_offsets[0]]),
        ),
      ),
    ],
    ["negative offsets", edit((h) => (h[name].data_offsets = [-8, h[name].data_offsets[1]]))],
    ["offsets 2^60", edit((h) => (h[name].data_offsets = [2 ** 60, 2 ** 60 + 4]))],
    ["offsets not numbers", edit((h) => (h[name].data_offsets = ["0", "4"]))],
    ["unknown dtype", edit((h) => (h[name].dtype = "F8_E4M3"))],
    ["dtype not a string", edit((h) => (h[name].dtype = { toString: 1 }))],
    ["shape that does not match the bytes", edit((h) => (h[name].shape = [...h[name].shape, 2]))],
    ["shape of 2^40 elements", edit((h) => (h[name].shape = [2 ** 20, 2 ** 20]))],
    ["shape negative", edit((h) => (h[name].shape = [-1]))],
    ["a tensor entry that is a string", edit((h) => (h[name] = "F32"))],
    [
      "metadata value not a string",
      edit((h) => (h.__metadata__.format = { deep: "x".repeat(5000) })),
    ],
    ["metadata an array", edit((h) => (h.__metadata__ = ["x"]))],
    ["a tensor missing", edit((h) => delete h[name])],
    [
      "__proto__ as a tensor name",
      joinSafetensors(
        null,
        data,
        text.replace(/^\{/, '{"__proto__":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},'),
      ),
    ],
    ["random bytes", r.bytes(2000)],
  ];
  return cases.map(([n, bytes]) => ({ name: n, bytes }));
}

// ------------------------------------------------------------------ JSON (config.json)

const JUNK: (() => unknown)[] = [
  () => null,
  () => true,
  () => "",
  () => "x".repeat(100_000),
  () => -1,
  () => 0,
  () => 1e308,
  () => -1e308,
  () => 2 ** 53 + 1,
  () => 1e9,
  () => 0.5,
  () => "NaN",
  () => "Infinity",
  () => [],
  () => [1, "a", null],
  () => ({}),
  () =>
    JSON.parse(
      '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}',
    ),
  () => JSON.parse("[".repeat(1000) + "]".repeat(1000)),
];

/** Every path to a value in a JSON tree down to depth 8 (not into nested junk), root included (as []). */
function paths(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (at.length >= 8) return out;
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...at, i])));
  else if (value !== null && typeof value === "object")
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, k]));
  return out;
}

/**
 * One to three random edits of a JSON value (a copy): a field deleted, replaced by a value of
 * another type, a huge or negative number, nested junk, or a `__proto__` / `constructor` key
 * added. Returns the edited text and what was done.
 */
export function mutateJson(r: Rng, value: unknown): { name: string; text: string } {
  const root = structuredClone(value) as Record<string, any>;
  const edits: string[] = [];
  for (let k = 1 + r.int(3); k > 0; k--) {
    const all = paths(root).filter((p) => p.length > 0);
    const path = r.pick(all);
    const parent = path.slice(0, -1).reduce((o: any, key) => o[key], root);
    const key = path[path.length - 1];
    const where = path.join(".");
    const kind = r.int(4);
    if (kind === 0 && !Array.isArray(parent)) {
      delete parent[key];
      edits.push(`delete ${where}`);
    } else if (kind === 1) {
      const junk = r.int(JUNK.length);
      parent[key] = JUNK[junk]();
      edits.push(`${where} = junk ${junk}`);
    } else if (kind === 2 && typeof parent[key] === "number") {
      const v = r.pick([
        -parent[key] - 1,
        parent[key] * 1e6,
        parent[key] + 0.5,
        2 ** 31,
        -(2 ** 31),
      ]);
      parent[key] = v;
      edits.push(`${where} = ${v}`);
    } else if (
      typeof parent[key] === "object" &&
      parent[key] !== null &&
      !Array.isArray(parent[key])
    ) {
      // A key that would pollute Object.prototype if copied by assignment.
      Object.defineProperty(parent[key], r.pick(["__proto__", "constructor", "prototype"]), {
        value: { polluted: true, toString: "x" },
        enumerable: true,
        configurable: true,
        writable: true,
      });
      edits.push(`${where}: prototype key`);
    } else {
      parent[key] = String(parent[key]);
      edits.push(`${where} as a string`);
    }
  }
  return { name: edits.join(", "), text: JSON.stringify(root) };
}
