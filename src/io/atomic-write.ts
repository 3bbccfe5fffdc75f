/**
 * Atomic file replacement: readers see either the old file or the complete new one, never a
 * partial write, even if the process dies mid-way (POSIX rename(2) within one directory is atomic).
 *
 * Steps: write a temp file in the target's directory (same file system, so rename is a move, not
 * a copy), fsync it (data on disk before the name points to it), rename over the target, fsync the
 * directory (the rename itself is durable). On any error the temp file is removed.
 */
import { node } from "../core/node-builtins.js";

/** Options of `writeFileAtomic`. */
export interface AtomicWriteOptions {
  /** Test hook: called with the temp path after it is written and synced, before the rename. */
  beforeRename?: (tmpPath: string) => void | Promise<void>;
}

/** Writes `data` to `path` atomically (see module comment). */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const { open, rename, unlink } = node.fsp("writeFileAtomic");
  const { basename, dirname, join } = node.path();
  const randomBytes = node.crypto().randomBytes;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fh = await open(tmp, "wx", 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await options.beforeRename?.(tmp);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await syncDir(dir);
}

/** fsync a directory so a rename in it survives a crash; a no-op where directories cannot be opened (Windows). */
async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await node.fsp().open(dir, "r");
  } catch {
    return;
  }
  try {
    await fh.sync();
  } catch (err) {
    // Some file systems refuse fsync on directories; the rename has still happened.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EPERM" && code !== "EISDIR") throw err;
  } finally {
    await fh.close();
  }
}
