/**
 * The proxy's private directory for worker sockets: mode 0700, owned by a
 * lock held for the proxy's whole life, so a later proxy can tell the
 * directory of one that was killed with SIGKILL (lock free) from one still
 * running (lock held) and remove only the former.
 *
 * @module
 */

import { join } from "node:path";

const PREFIX = "proxy-";
const LOCK = "owner.lock";
const MIN_AGE_MS = 10_000;

/** A private socket directory, held until {@linkcode SocketDir.remove}. */
export interface SocketDir {
  /** Its path. */
  readonly path: string;
  /** Releases the lock and removes the directory with what is in it. Idempotent. */
  remove(): Promise<void>;
}

/** The system temp directory. */
function tempRoot(): string {
  return Deno.env.get("TMPDIR") || "/tmp";
}

/**
 * Creates a fresh private directory and takes its lock.
 *
 * @param root Where to create it. @default {$TMPDIR or /tmp}
 */
export async function createSocketDir(root: string = tempRoot()): Promise<SocketDir> {
  const path = await Deno.makeTempDir({ dir: root, prefix: PREFIX });
  await Deno.chmod(path, 0o700);
  const lock = await Deno.open(join(path, LOCK), { create: true, write: true });
  await lock.lock(true);
  await lock.write(new TextEncoder().encode(`${Deno.pid}\n`));
  let removed: Promise<void> | null = null;
  return {
    path,
    remove() {
      removed ??= (async () => {
        try {
          lock.close();
        } catch {
          // closed already
        }
        await Deno.remove(path, { recursive: true }).catch(() => {});
      })();
      return removed;
    },
  };
}

/**
 * Removes the socket directories of proxies that are gone (killed before
 * they could clean up): those whose lock nobody holds. Returns the paths
 * removed. Directories of running proxies, and anything else, are left alone.
 *
 * @param root Where to look. @default {$TMPDIR or /tmp}
 */
export async function removeStaleSocketDirs(root: string = tempRoot()): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(root));
  } catch {
    return removed;
  }
  for (const entry of entries) {
    if (!entry.isDirectory || !entry.name.startsWith(PREFIX)) continue;
    const dir = join(root, entry.name);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(join(dir, LOCK), { write: true });
    } catch {
      continue; // not ours, or not readable
    }
    try {
      // A directory just made may not hold its lock yet: only judge older ones.
      const age = Date.now() - ((await file.stat()).mtime?.getTime() ?? 0);
      if (age > MIN_AGE_MS && await file.tryLock(true)) {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        removed.push(dir);
      }
    } catch {
      // locking not supported here: leave it
    } finally {
      file.close();
    }
  }
  return removed;
}
