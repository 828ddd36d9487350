// Pacing for watch loops that poll a remote (Consul's blocking queries). Two separate
// tools, because they answer different questions:
// - backoff: how long to wait after a failure (exponential, bounded, jittered so that
//   many loops failing together do not retry in lockstep);
// - token bucket: how often a loop that is succeeding may go round. In the happy case a
//   loop proceeds at once; when its input churns it degrades to one round per refill,
//   instead of spinning (Consul's blocking-query guidance suggests a burst of 2).
// No timers live here: callers sleep with `sleep`, which a stop signal cuts short.

export interface BackoffOptions {
  /** Delay ceiling after the first failure. */
  baseMs: number;
  /** The ceiling never grows past this. */
  maxMs: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 100, maxMs: 30_000 };

/**
 * Delay before retry `attempt` (0 for the first): the ceiling is `baseMs·2^attempt`
 * capped at `maxMs`, and the delay is uniform in [ceiling/2, ceiling] ("equal jitter"),
 * so retries spread out yet never come back at ~0 ms.
 */
export function backoffDelay(attempt: number, { baseMs, maxMs }: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 52));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export interface TokenBucketOptions {
  /** Rounds that may run back to back before the rate applies. */
  burst: number;
  /** One token comes back every `refillMs`. */
  refillMs: number;
}

export const defaultRateLimit: TokenBucketOptions = { burst: 2, refillMs: 1_000 };

/** A token bucket for one loop. Starts full. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly options: TokenBucketOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = options.burst;
    this.last = now();
  }

  /**
   * Takes a token and returns how long the caller must wait before using it: 0 while
   * the bucket holds one, else the time until one has refilled. The token is owed at
   * once, so a caller that waits the returned time and reserves again stays on rate.
   */
  reserve(): number {
    const now = this.now();
    this.tokens = Math.min(this.options.burst, this.tokens + (now - this.last) / this.options.refillMs);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens * this.options.refillMs);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (the timer is cleared then). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
