/**
 * zlib streams without node:zlib, through the platform's CompressionStream and
 * DecompressionStream (browsers, workers, Node 18+): what encodePngAsync and parseIdxAsync use
 * where Node's synchronous zlib is not there. The level is the platform's default.
 */

/** RFC 1950 (zlib) deflate of `raw`. */
export async function deflateStream(raw: Uint8Array): Promise<Uint8Array> {
  return readAll(
    new Blob([raw as Uint8Array<ArrayBuffer>])
      .stream()
      .pipeThrough(new CompressionStream("deflate")),
    Infinity,
    "deflate",
  );
}

/**
 * gunzip of `bytes`, stopping as soon as the output passes `maxOutputLength` (a small file that
 * inflates to gigabytes is refused, not held). Errors name `file`.
 */
export async function gunzipStream(
  bytes: Uint8Array,
  maxOutputLength: number,
  file: string,
): Promise<Uint8Array> {
  try {
    return await readAll(
      new Blob([bytes as Uint8Array<ArrayBuffer>])
        .stream()
        .pipeThrough(new DecompressionStream("gzip")),
      maxOutputLength,
      file,
    );
  } catch (e) {
    if ((e as Error).message.startsWith(`${file}: decompresses`)) throw e;
    throw new Error(`${file}: corrupt or truncated gzip data (${(e as Error).message})`);
  }
}

async function readAll(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  file: string,
): Promise<Uint8Array> {
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel();
      throw new Error(
        `${file}: decompresses to more than ${limit} bytes, the limit for an IDX file here`,
      );
    }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
