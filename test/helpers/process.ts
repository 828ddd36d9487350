// Child processes the tests start (Envoy, Consul), with their output kept for failure
// reports and a stop that always ends in a reaped process. Every process is in one
// registry from spawn to exit, so `afterAll(stopAllProcesses)` cleans up even when a
// test failed or timed out half-way through starting something. Should the worker
// itself end first, an exit hook and (on Linux) the kernel kill what is left.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { onTestFailed } from 'vitest';
import { LogRing, defaultLogLimits, type LogRingLimits } from './log-ring.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (ENOENT, EACCES). */
  error?: Error;
}

export interface ProcessOptions {
  /** Short name for logs and errors, e.g. `envoy`. */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logLimits?: LogRingLimits;
}

/** Anything whose recent output a failing test should show. */
export interface LogSource {
  readonly name: string;
  logs(): string;
}

export interface ManagedProcess extends LogSource {
  readonly pid: number | undefined;
  /** Resolves once the process has exited (it never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** Undefined while the process runs. */
  exitInfo(): ExitInfo | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is reaped. */
  stop(options?: { graceMs?: number }): Promise<ExitInfo>;
}

// On globalThis so that every copy of this module in a worker (vitest re-imports
// modules per test file) shares one registry and installs one exit hook.
const registryKey = Symbol.for('shadowplane.test.processes');
type Registry = Set<{ child: ChildProcess; stop: ManagedProcess['stop'] }>;

function registry(): Registry {
  const holder = globalThis as typeof globalThis & { [registryKey]?: Registry };
  let live = holder[registryKey];
  if (!live) {
    const created: Registry = new Set();
    // For a worker that ends by process.exit(). 'exit' handlers must be synchronous:
    // a SIGKILL is all that can still be done.
    process.on('exit', () => {
      for (const entry of created) entry.child.kill('SIGKILL');
    });
    holder[registryKey] = created;
    live = created;
  }
  return live;
}

let wrapper: string[] | undefined;

/**
 * On Linux, `setpriv --pdeathsig KILL` makes the kernel SIGKILL the child when the
 * worker that spawned it dies. No JS hook covers that: vitest ends its fork workers
 * with SIGTERM, which skips 'exit' handlers, and a worker may crash or be killed.
 * setpriv execs the program, so the pid and signals are the program's own.
 */
function parentDeathWrapper(): string[] {
  if (wrapper === undefined) {
    const probe = process.platform === 'linux' ? spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true']) : undefined;
    wrapper = probe?.status === 0 ? ['setpriv', '--pdeathsig', 'KILL', '--'] : [];
  }
  return wrapper;
}

// After 'exit' the pipes may still hold the last lines; wait for 'close', but not for
// long, since a grandchild holding the pipes open would delay it forever.
const closeGraceMs = 500;

export function startProcess(options: ProcessOptions): ManagedProcess {
  const ring = new LogRing(options.logLimits ?? defaultLogLimits);
  const [command, ...args] = [...parentDeathWrapper(), options.command, ...options.args] as [string, ...string[]];
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const [stream, readable] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
    readable.setEncoding('utf8');
    readable.on('data', (chunk: string) => ring.write(stream, chunk));
  }

  let info: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    const finish = (result: ExitInfo): void => {
      if (info) return;
      info = result;
      ring.flush();
      registry().delete(entry);
      resolve(result);
    };
    child.once('error', (error) => {
      // A spawn failure never emits 'exit'; other errors (a failed kill) are not exits.
      if (child.pid === undefined) finish({ code: null, signal: null, error });
    });
    child.once('exit', (code, signal) => {
      const timer = setTimeout(() => finish({ code, signal }), closeGraceMs);
      child.once('close', () => {
        clearTimeout(timer);
        finish({ code, signal });
      });
    });
  });

  const stop = async ({ graceMs = 5_000 } = {}): Promise<ExitInfo> => {
    if (info) return info;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), graceMs);
    });
    const result = await Promise.race([exited, gaveUp]);
    clearTimeout(timer);
    if (result) return result;
    child.kill('SIGKILL');
    return exited;
  };

  const entry = { child, stop };
  registry().add(entry);

  return {
    name: options.name,
    pid: child.pid,
    exited,
    exitInfo: () => info,
    logs: () => ring.text(),
    stop,
  };
}

/** Stops every process still running in this worker; for afterAll/afterEach. */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...registry()].map((entry) => entry.stop()));
}

/** Describes how a process ended, for error messages. */
export function describeExit(info: ExitInfo): string {
  if (info.error) return `could not start: ${info.error.message}`;
  return info.signal ? `killed by ${info.signal}` : `exited with code ${String(info.code)}`;
}

/** The recent output of `source`, framed so it stands out in a test report. */
export function formatLogs(source: LogSource): string {
  return `----- ${source.name} output (most recent last) -----\n${source.logs()}\n----- end of ${source.name} output -----`;
}

/**
 * Prints the sources' recent output when the current test fails. Call it inside a
 * test or in `beforeEach` (vitest's onTestFailed needs a running test).
 */
export function showLogsOnFailure(...sources: LogSource[]): void {
  onTestFailed(() => {
    for (const source of sources) console.error(formatLogs(source));
  });
}

/**
 * The error to throw when starting `proc` failed: runs `cleanup` (which must stop it)
 * and adds the process's output unless the error carries it already.
 */
export async function startFailure(proc: ManagedProcess, error: unknown, cleanup: () => Promise<unknown>): Promise<Error> {
  // When the process died first, abortOnExit's error already holds the output.
  const died = proc.exitInfo() !== undefined;
  await cleanup();
  if (died && error instanceof Error) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new Error(`${message}\n${formatLogs(proc)}`, { cause: error });
}

/**
 * A signal that aborts when `proc` exits, with its exit and output as the reason; pass
 * it to waitFor so a readiness wait fails at once instead of running into its deadline.
 */
export function abortOnExit(proc: ManagedProcess, activity: string): AbortSignal {
  const controller = new AbortController();
  void proc.exited.then((info) => {
    controller.abort(new Error(`${proc.name} ${describeExit(info)} while ${activity}\n${formatLogs(proc)}`));
  });
  return controller.signal;
}
