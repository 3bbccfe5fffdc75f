/**
 * Downloads checked by SHA-256: nothing is written unless the bytes match, and the file appears
 * atomically (complete or not at all), so an interrupted or tampered download never leaves a
 * file that a later run would trust. file: URLs are read from disk (Node's fetch has none), for
 * local mirrors and tests.
 */
import { node } from "../core/node-builtins.js";
import { writeFileAtomic } from "../io/atomic-write.js";

/** The part of a fetch Response that downloads use (the global `fetch` fits). */
export interface FetchResponseLike {
  ok: boolean;
  status: number;
  statusText?: string;
  /** The body's bytes. */
  arrayBuffer(): Promise<ArrayBuffer>;
}
/** The part of `fetch` a download needs (tests pass their own). */
export type FetchLike = (url: string) => Promise<FetchResponseLike>;

export interface DownloadOptions {
  /** Fetch to use. Default: global fetch, plus file: URLs read from disk. */
  fetch?: FetchLike;
  /** Largest accepted download, in bytes. Default 64 MiB. */
  maxDownloadBytes?: number;
}

/** SHA-256 of bytes, lower-case hex. */
export function sha256Hex(...chunks: Uint8Array[]): string {
  const h = node.crypto("sha256Hex").createHash("sha256");
  for (const c of chunks) h.update(c);
  return h.digest("hex");
}

/**
 * Downloads `url` to `dest` if its SHA-256 equals `sha256` (lower-case hex); nothing is written
 * otherwise, and the file appears atomically (complete or not at all).
 */
export async function downloadVerified(
  url: string,
  dest: string,
  sha256: string,
  options: DownloadOptions = {},
): Promise<void> {
  const fetchImpl = options.fetch ?? defaultFetch;
  const maxBytes = options.maxDownloadBytes ?? 64 * 2 ** 20;
  const res = await fetchImpl(url);
  if (!res.ok)
    throw new Error(`${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length > maxBytes)
    throw new Error(`${url}: ${bytes.length} bytes, more than the limit of ${maxBytes}`);
  const got = sha256Hex(bytes);
  if (got !== sha256.toLowerCase()) {
    throw new Error(
      `${url}: SHA-256 ${got} does not match the expected ${sha256} (${bytes.length} bytes; not saved)`,
    );
  }
  await writeFileAtomic(dest, bytes);
}

/** Global fetch, plus file: URLs read from disk (for local mirrors; Node's fetch has no file:). */
async function defaultFetch(url: string): Promise<FetchResponseLike> {
  if (url.startsWith("file:")) {
    const path = node.url("a file: download").fileURLToPath(url);
    try {
      const data = await node.fsp().readFile(path);
      return {
        ok: true,
        status: 200,
        arrayBuffer: async () =>
          data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer,
      };
    } catch (err) {
      return {
        ok: false,
        status: 404,
        statusText: (err as Error).message,
        arrayBuffer: async () => new ArrayBuffer(0),
      };
    }
  }
  return fetch(url);
}
