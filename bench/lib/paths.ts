// Where a benchmark run leaves its files (server logs, CPU profiles, results): under
// dist/bench/out/, which git and eslint ignore.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs as dist/bench/bench/lib/paths.js). */
export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

export function outPath(name: string): string {
  const dir = path.join(repoRoot, 'dist', 'bench', 'out');
  mkdirSync(dir, { recursive: true });
  return path.join(dir, name);
}
