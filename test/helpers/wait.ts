// Polling with a deadline: the only way tests synchronise with other processes.
// A fixed sleep is either too short on a loaded CI machine or wastes time everywhere.

export interface WaitOptions {
  /** What we wait for, in words; it names the wait in the timeout error. */
  description: string;
  timeoutMs?: number;
  intervalMs?: number;
  /** Stops the wait at once, rejecting with the signal's reason (e.g. the process died). */
  signal?: AbortSignal;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

type Outcome<T> = { kind: 'value'; value: T } | { kind: 'error'; error: unknown } | { kind: 'expired' };

/**
 * Calls `condition` until it returns a truthy value (which is returned) or the deadline
 * passes. A falsy return or a throw means "not yet". One attempt that hangs cannot
 * outlive the deadline: it is raced against the time left.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { description, timeoutMs = 10_000, intervalMs = 100, signal }: WaitOptions,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'condition was never checked';
  let attempts = 0;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    attempts++;
    const outcome = await attempt(condition, deadline, signal);
    if (outcome.kind === 'value') {
      if (outcome.value) return outcome.value;
      lastProblem = `condition returned ${String(outcome.value)}`;
    } else if (outcome.kind === 'error') {
      lastProblem = `last error: ${describeError(outcome.error)}`;
    } else {
      lastProblem = 'the last attempt was still running at the deadline';
    }
    await delay(Math.min(intervalMs, Math.max(deadline - Date.now(), 0)));
  }
  throw new Error(`timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${description}; ${lastProblem}`);
}

/** One call of `condition`, cut short by the deadline; rejects only when `signal` aborts. */
async function attempt<T>(condition: () => T | Promise<T>, deadline: number, signal?: AbortSignal): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const cutShort = new Promise<Outcome<T>>((resolve, reject) => {
    timer = setTimeout(() => resolve({ kind: 'expired' }), deadline - Date.now());
    onAbort = () => reject(signal?.reason as Error);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  const called = Promise.resolve()
    .then(condition)
    .then(
      (value): Outcome<T> => ({ kind: 'value', value }),
      (error: unknown): Outcome<T> => ({ kind: 'error', error }),
    );
  try {
    return await Promise.race([called, cutShort]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
