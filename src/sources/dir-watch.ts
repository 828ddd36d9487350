// Watches a folder of YAML files for changes. fs.watch gives fast notice; a slow poll
// of names, sizes and modification times is the safety net for what fs.watch misses
// (a folder deleted and made again, editors that replace files, network filesystems).
// Notices are debounced so an editor's burst of writes becomes one reload.
import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

export interface DirWatchOptions {
  /** Quiet time after the last notice before `onChange` runs. */
  debounceMs?: number;
  /** How often the poll compares the folder's listing. */
  pollMs?: number;
}

/** Names, sizes and mtimes of the folder's YAML files; `missing` if it cannot be read. */
export function listingSignature(dir: string): string {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
      .sort()
      .map((f) => {
        try {
          const s = statSync(path.join(dir, f));
          return `${f}:${s.size}:${s.mtimeMs}`;
        } catch {
          return `${f}:gone`;
        }
      })
      .join('|');
  } catch (err) {
    return `missing:${(err as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}

/** Calls `onChange` (debounced) whenever the folder's YAML files may have changed. Returns stop. */
export function watchDirectory(dir: string, onChange: () => void, options: DirWatchOptions = {}): () => void {
  const debounceMs = options.debounceMs ?? 100;
  const pollMs = options.pollMs ?? 1_000;
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let signature = listingSignature(dir);
  let stopped = false;

  const notify = (): void => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      signature = listingSignature(dir);
      onChange();
    }, debounceMs);
  };

  const arm = (): void => {
    if (watcher || stopped) return;
    try {
      watcher = watch(dir, { persistent: false }, notify);
      watcher.on('error', () => {
        watcher?.close();
        watcher = undefined;
        notify();
      });
    } catch {
      watcher = undefined; // the folder is missing; the poll re-arms when it is back
    }
  };

  const poll = setInterval(() => {
    arm();
    const now = listingSignature(dir);
    if (now !== signature) notify();
  }, pollMs);
  poll.unref();
  arm();

  return () => {
    stopped = true;
    clearInterval(poll);
    if (timer) clearTimeout(timer);
    watcher?.close();
  };
}
