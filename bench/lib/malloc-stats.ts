// What the C allocator has handed out and not had back: glibc's "in use bytes" over all
// its arenas and mmapped blocks, as its malloc_stats() reports them.
//
// RSS is a poor ruler for tens of KB per stream: it also counts memory that was freed
// but that glibc keeps (holes between live blocks, which it cannot give back), and how
// much of that there is at a given moment depends on where the last burst of transient
// allocations happened to land. In-use bytes count only live blocks, so they move by
// what the streams hold and by nothing else. Node has no API for them, so this asks
// gdb to call malloc_stats() inside the process while it sits idle, with the process's
// stderr pointed at a file for the moment: it needs gdb, and the right to ptrace our
// own process (root, or kernel.yama.ptrace_scope 0). Where either is missing, it says
// why and the caller measures without it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const GDB = process.env.GDB ?? 'gdb';
/** O_WRONLY | O_CREAT | O_TRUNC, and mode 0644, for open(2) called from gdb. */
const OPEN_FLAGS = 0o1 | 0o100 | 0o1000;
const OPEN_MODE = 0o644;

let unavailable: string | undefined;

/** Why in-use bytes cannot be read here, or undefined when they can (after one try). */
export function mallocUnavailable(): string | undefined {
  if (unavailable === undefined) mallocInUse();
  return unavailable || undefined;
}

/** glibc's in-use bytes for this process (all arenas plus mmapped blocks), or undefined. */
export function mallocInUse(): number | undefined {
  if (unavailable !== undefined && unavailable !== '') return undefined;
  if (process.platform !== 'linux') return fail('not Linux (glibc malloc_stats via gdb)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'malloc-stats-'));
  const file = path.join(dir, 'stats.txt');
  try {
    const commands = [
      'set $saved = (int)dup(2)',
      `set $file = (int)open("${file}", ${OPEN_FLAGS}, ${OPEN_MODE})`,
      'call (int)dup2($file, 2)',
      'call (void)malloc_stats()',
      'call (int)dup2($saved, 2)',
      'call (int)close($file)',
      'call (int)close($saved)',
    ];
    const run = spawnSync(GDB, ['-nx', '-batch', '-p', String(process.pid), ...commands.flatMap((c) => ['-ex', c])], { encoding: 'utf8', timeout: 60_000 });
    if (run.error) return fail(`${GDB}: ${run.error.message}`);
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return fail(`${GDB} could not call malloc_stats() in process ${process.pid}: ${(run.stderr || run.stdout).trim().split('\n').at(-1) ?? ''}`);
    }
    const inUse = parseMallocStats(text);
    if (inUse === undefined) return fail(`malloc_stats() printed no total: ${text.slice(0, 200)}`);
    unavailable = '';
    return inUse;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The in-use bytes of malloc_stats()'s "Total (incl. mmap)" block, or undefined. */
export function parseMallocStats(text: string): number | undefined {
  const total = /Total \(incl\. mmap\):\s*system bytes\s*=\s*\d+\s*in use bytes\s*=\s*(\d+)/.exec(text);
  return total ? Number(total[1]) : undefined;
}

function fail(reason: string): undefined {
  unavailable = reason;
  return undefined;
}
