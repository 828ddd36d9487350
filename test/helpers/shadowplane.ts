// Runs the built `shadowplane` command as a user would (node dist/cli/main.js), for
// tests of the CLI and of `serve` end to end.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { abortOnExit, startFailure, startProcess, type ManagedProcess } from './process.js';
import { waitFor } from './wait.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const cliPath = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

function requireBuilt(): void {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run \`npm run build\` first (npm test does)`);
}

/** Runs the CLI to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  requireBuilt();
  const result = spawnSync(process.execPath, [cliPath, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** JSON log lines the process wrote so far. */
export function logRecords(proc: ManagedProcess): Record<string, unknown>[] {
  return proc
    .logs()
    .split('\n')
    .map((line) => line.replace(/^\[[^\]]*\]\s*/, ''))
    .flatMap((line): Record<string, unknown>[] => {
      try {
        const parsed: unknown = JSON.parse(line);
        return typeof parsed === 'object' && parsed !== null ? [parsed as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
}

export interface ServeProcess {
  process: ManagedProcess;
  xdsPort: number;
  adminPort: number;
  adminUrl: string;
}

/** Starts `shadowplane serve` with the xDS server on a free port and waits until it listens. */
export async function startServe(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  requireBuilt();
  const proc = startProcess({
    name: 'shadowplane',
    command: process.execPath,
    args: [cliPath, 'serve', '--xds-address', '127.0.0.1:0', '--admin-address', '127.0.0.1:0', ...args],
    cwd: repoRoot,
    env: { ...process.env, ...env },
  });
  // A serve that exits (bad configuration) fails the wait at once, with its output.
  const listening = await waitFor(
    () => {
      const records = logRecords(proc);
      const xds = records.find((r) => r.msg === 'xDS server listening');
      const admin = records.find((r) => r.msg === 'admin API listening');
      return xds && admin ? { xdsPort: Number(xds.port), adminPort: Number(admin.port) } : undefined;
    },
    { description: 'shadowplane serve to log that xDS and admin are listening', timeoutMs: 20_000, signal: abortOnExit(proc, 'starting') },
  ).catch(async (error: unknown) => {
    throw await startFailure(proc, error, () => proc.stop());
  });
  return { process: proc, ...listening, adminUrl: `http://127.0.0.1:${listening.adminPort}` };
}
