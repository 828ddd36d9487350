// The Consul catalog source: the registry, kept live from Consul's catalog with blocking
// queries. One watch reads the service list (`/v1/catalog/services`); one watch per
// service reads its healthy instances (`/v1/health/service/<name>?passing`). All reads
// use `stale` consistency: any server may answer, so the watch keeps working while the
// cluster has no leader (the `X-Consul-KnownLeader` / `X-Consul-LastContact` headers
// are kept in `status()` to bound how stale that is).
//
// Behaviour, and the invariants each rule protects:
// - Blocking-query rules (Consul's api-docs/features/blocking): an index that goes
//   backwards resets that watch to 0 (a fresh non-blocking read); an index of 0 or a
//   missing `X-Consul-Index` is used as 1 and the loop backs off before the next read,
//   so a misbehaving server can never drive it into a busy loop. Every loop also takes
//   a token from its own bucket (burst 2, one per second by default): rare changes pass
//   at once, a churning service degrades to polling.
// - A return is no guarantee of a change: each answer is compared by content with the
//   last one, and only a real change schedules an emit.
// - Failures (network, HTTP status, a body of the wrong shape, a timeout) back off
//   exponentially with jitter (100 ms → 30 s by default) and are never read as "no
//   instances": the last good state stays, `status()` turns unhealthy with `lastError`.
//   After a failure the next read is non-blocking (index 0), because the agent that
//   answers may be a restarted one whose indexes start again from 1.
// - A service that leaves the service list is removed (Consul says so); a service whose
//   health read fails keeps its last instances. An empty list from Consul is a real
//   answer (scale to zero, or every instance failing its checks) and is emitted as such.
// - Bursts are coalesced: an emit waits for `debounceMs` of quiet, but never longer
//   than `maxHoldMs` after the first change, so a burst becomes one rebuild.
// - Deterministic output: services sorted by name, instances by id, meta keys sorted,
//   so equal catalogs give equal registries (versions downstream are content hashes).
//
// Status: `lastSuccessMs` moves whenever a read succeeds while no watch is failing. A
// healthy blocking watch answers at least once per `wait` (+ up to wait/16), so alert
// on an age well past that (say 3 × wait), not on seconds.
//
// Lifecycle: `start()` resolves once the first complete registry (the service list and
// the instances of every service in it) has been emitted. If Consul cannot be reached,
// the source keeps retrying in the background and `start()` rejects after
// `initialTimeoutMs` with code CONSUL_CATALOG_START_TIMEOUT; the source is still
// running then and emits as soon as Consul answers, so the caller decides: wait on, or
// `stop()`. `stop()` aborts every in-flight request, clears every timer and resolves
// once all loops have ended; nothing is emitted after it.
//
// Plain `fetch` rather than the `consul` package's Watch: that Watch ends itself on a
// missing index or an HTTP 400, has no rate limit and no jitter, and reports changes by
// index rather than content; every rule above would have been a workaround around it.
// `fetch` (undici) gives up waiting for response headers after 300 s, hence `wait` is
// capped at 4 min (Consul adds up to wait/16 on top).
import { z } from 'zod';
import type { Logger } from '../log.js';
import type { Instance, Registry, Service } from '../model/types.js';
import {
  backoffDelay,
  defaultBackoff,
  defaultRateLimit,
  sleep,
  TokenBucket,
  type BackoffOptions,
  type TokenBucketOptions,
} from './backoff.js';
import type { Source, SourceStatus } from './source.js';

export interface ConsulCatalogOptions {
  /** The agent's HTTP API: `host:port` (http), or a full `http(s)://host:port` URL. */
  address: string;
  /** Sent as `X-Consul-Token`; never logged. */
  token?: string;
  /** Datacenter to read (`dc=`); the agent's own when unset. */
  datacenter?: string;
  /** Blocking wait per query: ms, or `'30s'`, `'2m'`, `'500ms'`. Default 30 s, at most 4 min. */
  wait?: number | string;
  /** Quiet time after the last change before an emit. Default 50 ms. */
  debounceMs?: number;
  /** An emit is never held longer than this after the first change. Default 500 ms. */
  maxHoldMs?: number;
  /** Failure backoff. Default 100 ms doubling to 30 s, with jitter. */
  backoff?: Partial<BackoffOptions>;
  /** Per-watch token bucket. Default burst 2, one token per 1000 ms. */
  rateLimit?: Partial<TokenBucketOptions>;
  /** `start()` rejects when no complete registry arrived in this time. Default 30 s; Infinity waits forever. */
  initialTimeoutMs?: number;
  /** Time allowed for an answer beyond the blocking wait. Default 10 s. */
  requestTimeoutMs?: number;
  logger: Logger;
}

export interface ConsulCatalogStatus extends SourceStatus {
  /** Watches running: the service list plus one per service. */
  readonly watches: number;
  /** Watches whose latest attempt failed. */
  readonly failingWatches: number;
  /** From the latest answer: whether the answering server knew a leader. */
  readonly knownLeader?: boolean;
  /** From the latest answer: ms since that server last heard from the leader. */
  readonly lastContactMs?: number;
}

export type ConsulCatalogErrorCode = 'CONSUL_CATALOG_OPTIONS' | 'CONSUL_CATALOG_START_TIMEOUT' | 'CONSUL_CATALOG_STOPPED';

export class ConsulCatalogError extends Error {
  constructor(
    readonly code: ConsulCatalogErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ConsulCatalogError';
  }
}

const maxWaitMs = 240_000;

/** `30000`, `'30s'`, `'2m'`, `'500ms'` → ms; throws on anything else or out of range. */
export function parseWait(wait: number | string): number {
  const match = typeof wait === 'string' ? /^(\d+)(ms|s|m)$/.exec(wait) : undefined;
  const ms =
    typeof wait === 'number' ? wait : match ? Number(match[1]) * { ms: 1, s: 1_000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'] : NaN;
  if (!Number.isFinite(ms) || ms < 1 || ms > maxWaitMs) {
    throw new ConsulCatalogError(
      'CONSUL_CATALOG_OPTIONS',
      `wait: ${JSON.stringify(wait)} is not a duration between 1ms and 4m (write it as ms, or like "30s", "2m", "500ms")`,
    );
  }
  return ms;
}

// The parts of Consul's answers we read; anything else in them is ignored.
const catalogServicesSchema = z.record(z.string(), z.array(z.string()).nullable());
const healthServiceSchema = z.array(
  z.object({
    Node: z.object({ Address: z.string() }),
    Service: z.object({
      ID: z.string().min(1),
      Address: z.string().nullish(),
      Port: z.number().int().min(0).max(65_535),
      Tags: z.array(z.string()).nullish(),
      Meta: z.record(z.string(), z.string()).nullish(),
    }),
  }),
);

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Service names in the list, sorted, without Consul's own `consul` service. */
export function serviceNamesOf(body: unknown): string[] {
  return Object.keys(catalogServicesSchema.parse(body))
    .filter((name) => name !== 'consul')
    .sort(byCodeUnits);
}

/**
 * The healthy instances of one service, sorted by id (then address and port, since ids
 * are only unique per node). Instances without a port or address cannot be routed to
 * and are returned apart, by id.
 */
export function instancesOf(body: unknown): { instances: Instance[]; unroutable: string[] } {
  const instances: Instance[] = [];
  const unroutable: string[] = [];
  for (const { Node, Service: s } of healthServiceSchema.parse(body)) {
    const address = s.Address || Node.Address;
    if (!address || s.Port === 0) {
      unroutable.push(s.ID);
      continue;
    }
    const meta = Object.fromEntries(Object.entries(s.Meta ?? {}).sort(([a], [b]) => byCodeUnits(a, b)));
    instances.push({ id: s.ID, address, port: s.Port, tags: s.Tags ?? [], meta });
  }
  instances.sort((a, b) => byCodeUnits(a.id, b.id) || byCodeUnits(a.address, b.address) || a.port - b.port);
  return { instances, unroutable: unroutable.sort(byCodeUnits) };
}

/** One read of a blocking endpoint. */
interface WatchSpec<T> {
  /** `catalog` or `service:<name>`: names the watch in status and logs. */
  key: string;
  path: string;
  params: Record<string, string>;
  /** Throws when the body has the wrong shape; that counts as a failed read. */
  parse(body: unknown): T;
  apply(value: T): void;
}

interface Answer {
  body: unknown;
  index: bigint | undefined;
  knownLeader?: boolean;
  lastContactMs?: number;
}

interface ServiceState {
  controller: AbortController;
  /** Undefined until the first answer: the service is pending, not empty. */
  instances?: readonly Instance[];
  key?: string;
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : undefined;
  return detail ? `${err.message} (${detail})` : err.message;
}

function parseIndex(header: string | null): bigint | undefined {
  return header !== null && /^\d+$/.test(header) ? BigInt(header) : undefined;
}

export class ConsulCatalogSource implements Source<Registry> {
  private readonly base: URL;
  private readonly waitMs: number;
  private readonly debounceMs: number;
  private readonly maxHoldMs: number;
  private readonly backoff: BackoffOptions;
  private readonly rateLimit: TokenBucketOptions;
  private readonly initialTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly token: string | undefined;
  private readonly datacenter: string | undefined;
  private readonly log: Logger;

  private readonly controller = new AbortController();
  private readonly loops = new Set<Promise<void>>();
  private readonly services = new Map<string, ServiceState>();
  /** Watch key → the message of its latest failure, for the watches failing now. */
  private readonly failing = new Map<string, string>();
  private catalogKey?: string;
  private onUpdate?: (registry: Registry) => void;
  private first?: { resolve: () => void; reject: (err: Error) => void };
  private initialTimer?: NodeJS.Timeout;
  private flushTimer?: NodeJS.Timeout;
  /** When the first change not yet emitted happened (performance.now()). */
  private firstChangeAt?: number;
  /** The services last emitted, and their names in order (recomputed when the list changes). */
  private emitted?: ReadonlyMap<string, Service>;
  private sortedNames?: string[];
  private stopped = false;
  private state: { updates: number; lastSuccessMs?: number; lastError?: string; knownLeader?: boolean; lastContactMs?: number } = {
    updates: 0,
  };

  constructor(options: ConsulCatalogOptions) {
    const address = options.address.includes('://') ? options.address : `http://${options.address}`;
    try {
      this.base = new URL(address);
    } catch {
      throw new ConsulCatalogError('CONSUL_CATALOG_OPTIONS', `address: ${JSON.stringify(options.address)} is not host:port or a URL`);
    }
    this.waitMs = parseWait(options.wait ?? '30s');
    this.debounceMs = options.debounceMs ?? 50;
    this.maxHoldMs = Math.max(options.maxHoldMs ?? 500, this.debounceMs);
    this.backoff = { ...defaultBackoff, ...options.backoff };
    this.rateLimit = { ...defaultRateLimit, ...options.rateLimit };
    this.initialTimeoutMs = options.initialTimeoutMs ?? 30_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    // Zero or negative pacing would turn a failing or churning watch into a busy loop.
    const positive: [string, number][] = [
      ['backoff.baseMs', this.backoff.baseMs],
      ['backoff.maxMs', this.backoff.maxMs],
      ['rateLimit.burst', this.rateLimit.burst],
      ['rateLimit.refillMs', this.rateLimit.refillMs],
      ['initialTimeoutMs', this.initialTimeoutMs],
      ['requestTimeoutMs', this.requestTimeoutMs],
    ];
    const bad = positive.filter(([, value]) => !(value > 0));
    if (this.debounceMs < 0) bad.push(['debounceMs', this.debounceMs]);
    if (bad.length > 0) {
      throw new ConsulCatalogError('CONSUL_CATALOG_OPTIONS', bad.map(([name, value]) => `${name}: ${value} must be a positive number`).join('; '));
    }
    this.log = options.logger;
    this.token = options.token;
    this.datacenter = options.datacenter;
  }

  start(onUpdate: (registry: Registry) => void): Promise<void> {
    if (this.onUpdate || this.stopped) return Promise.reject(new Error('ConsulCatalogSource.start() may be called once, before stop()'));
    this.onUpdate = onUpdate;
    const started = new Promise<void>((resolve, reject) => {
      this.first = { resolve, reject };
    });
    if (Number.isFinite(this.initialTimeoutMs)) {
      this.initialTimer = setTimeout(() => {
        const last = this.state.lastError ? `; last error: ${this.state.lastError}` : '';
        this.settleFirst(
          new ConsulCatalogError(
            'CONSUL_CATALOG_START_TIMEOUT',
            `no complete registry from Consul at ${this.base.host} within ${this.initialTimeoutMs} ms${last}; still retrying in the background`,
          ),
        );
      }, this.initialTimeoutMs);
    }
    this.log.info({ address: this.base.host, datacenter: this.datacenter, wait_ms: this.waitMs }, 'watching the Consul catalog');
    this.spawn(
      this.runWatch(
        {
          key: 'catalog',
          path: '/v1/catalog/services',
          params: {},
          parse: serviceNamesOf,
          apply: (names) => this.applyServiceList(names),
        },
        this.controller.signal,
      ),
    );
    return started;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.controller.abort();
    for (const service of this.services.values()) service.controller.abort();
    clearTimeout(this.flushTimer);
    this.settleFirst(new ConsulCatalogError('CONSUL_CATALOG_STOPPED', 'stopped before the first registry from Consul'));
    await Promise.allSettled([...this.loops]);
    this.log.info('stopped watching the Consul catalog');
  }

  status(): ConsulCatalogStatus {
    const { updates, lastSuccessMs, lastError, knownLeader, lastContactMs } = this.state;
    return {
      source: 'consul-catalog',
      healthy: updates > 0 && this.failing.size === 0,
      updates,
      ...(lastSuccessMs === undefined ? {} : { lastSuccessMs }),
      ...(lastError === undefined ? {} : { lastError }),
      watches: this.catalogKey === undefined ? 0 : 1 + this.services.size,
      failingWatches: this.failing.size,
      ...(knownLeader === undefined ? {} : { knownLeader }),
      ...(lastContactMs === undefined ? {} : { lastContactMs }),
    };
  }

  private spawn(loop: Promise<void>): void {
    this.loops.add(loop);
    void loop.finally(() => this.loops.delete(loop));
  }

  /** Resolves (no error) or rejects `start()` once; later calls do nothing. */
  private settleFirst(error?: Error): void {
    const first = this.first;
    if (!first) return;
    this.first = undefined;
    clearTimeout(this.initialTimer);
    if (error) first.reject(error);
    else first.resolve();
  }

  // ---- the watch loop -------------------------------------------------------------

  private async runWatch<T>(spec: WatchSpec<T>, signal: AbortSignal): Promise<void> {
    const bucket = new TokenBucket(this.rateLimit);
    let index = 0n;
    let failures = 0;
    let anomalies = 0;
    while (!signal.aborted) {
      await sleep(bucket.reserve(), signal);
      if (signal.aborted) return;
      let pauseMs = 0;
      try {
        const answer = await this.query(spec, index, signal);
        const value = spec.parse(answer.body);
        if (signal.aborted) return;
        const next = answer.index;
        if (next === undefined || next === 0n) {
          // Blocking on 0 (or on nothing) would return at once, every time.
          anomalies += 1;
          pauseMs = backoffDelay(anomalies - 1, this.backoff);
          if (anomalies === 1) {
            this.log.warn({ watch: spec.key, index: next?.toString() ?? null, delay_ms: pauseMs }, 'Consul answered without a usable index; waiting on index 1 and backing off');
          }
          index = 1n;
        } else if (next < index) {
          this.log.info({ watch: spec.key, index: next.toString(), prev_index: index.toString() }, 'Consul index went backwards; the watch restarts from 0');
          anomalies = 0;
          index = 0n;
        } else {
          anomalies = 0;
          index = next;
        }
        if (failures > 0) this.log.info({ watch: spec.key, failures }, 'Consul watch recovered');
        failures = 0;
        this.recordSuccess(spec.key, answer);
        spec.apply(value);
      } catch (err) {
        if (signal.aborted) return;
        failures += 1;
        index = 0n;
        pauseMs = backoffDelay(failures - 1, this.backoff);
        this.recordFailure(spec.key, describeError(err), failures, pauseMs);
      }
      await sleep(pauseMs, signal);
    }
  }

  private async query<T>(spec: WatchSpec<T>, index: bigint, signal: AbortSignal): Promise<Answer> {
    const url = new URL(spec.path, this.base);
    url.searchParams.set('stale', '');
    if (this.datacenter) url.searchParams.set('dc', this.datacenter);
    for (const [name, value] of Object.entries(spec.params)) url.searchParams.set(name, value);
    let timeoutMs = this.requestTimeoutMs;
    if (index > 0n) {
      url.searchParams.set('index', index.toString());
      url.searchParams.set('wait', `${this.waitMs}ms`);
      timeoutMs += this.waitMs + Math.ceil(this.waitMs / 16);
    }
    // One controller per request, aborted by the watch's signal or the deadline.
    const request = new AbortController();
    const onAbort = (): void => request.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => request.abort(), timeoutMs);
    try {
      const response = await fetch(url, {
        signal: request.signal,
        headers: { accept: 'application/json', ...(this.token ? { 'x-consul-token': this.token } : {}) },
      });
      const text = await response.text();
      if (!response.ok) {
        const detail = text.trim().slice(0, 200);
        throw new Error(`GET ${spec.path} answered ${response.status}${detail ? `: ${detail}` : ''}`);
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new Error(`GET ${spec.path} answered with a body that is not JSON`);
      }
      const lastContact = response.headers.get('x-consul-lastcontact');
      const knownLeader = response.headers.get('x-consul-knownleader');
      return {
        body,
        index: parseIndex(response.headers.get('x-consul-index')),
        ...(knownLeader === null ? {} : { knownLeader: knownLeader === 'true' }),
        ...(lastContact !== null && /^\d+$/.test(lastContact) ? { lastContactMs: Number(lastContact) } : {}),
      };
    } catch (err) {
      if (request.signal.aborted && !signal.aborted) throw new Error(`GET ${spec.path}: no answer within ${timeoutMs} ms`, { cause: err });
      throw err;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  private recordSuccess(key: string, answer: Answer): void {
    this.failing.delete(key);
    this.state.knownLeader = answer.knownLeader ?? this.state.knownLeader;
    this.state.lastContactMs = answer.lastContactMs ?? this.state.lastContactMs;
    if (this.failing.size === 0) {
      this.state.lastSuccessMs = Date.now();
      this.state.lastError = undefined;
    }
  }

  private recordFailure(key: string, message: string, failures: number, delayMs: number): void {
    this.failing.set(key, message);
    this.state.lastError = `${key}: ${message}`;
    const fields = { watch: key, err_message: message, failures, delay_ms: delayMs };
    // The first failure of a run is news; the retries that follow are not.
    if (failures === 1) this.log.warn(fields, 'Consul watch failed; the last good state stays in force');
    else this.log.debug(fields, 'Consul watch still failing');
  }

  // ---- state ----------------------------------------------------------------------

  private applyServiceList(names: string[]): void {
    const key = names.join('\n');
    if (key === this.catalogKey) return;
    const first = this.catalogKey === undefined;
    this.catalogKey = key;
    const listed = new Set(names);
    this.sortedNames = undefined;
    for (const [name, service] of this.services) {
      if (listed.has(name)) continue;
      service.controller.abort();
      this.services.delete(name);
      this.failing.delete(`service:${name}`);
      this.log.info({ service: name }, 'service left the Consul catalog');
    }
    for (const name of names) {
      if (!this.services.has(name)) this.watchService(name);
    }
    if (!first) this.log.debug({ services: names.length }, 'Consul service list changed');
    this.scheduleFlush();
  }

  private watchService(name: string): void {
    const controller = new AbortController();
    const state: ServiceState = { controller };
    this.services.set(name, state);
    this.spawn(
      this.runWatch(
        {
          key: `service:${name}`,
          path: `/v1/health/service/${encodeURIComponent(name)}`,
          params: { passing: 'true' },
          parse: instancesOf,
          apply: ({ instances, unroutable }) => {
            const key = JSON.stringify(instances);
            if (key === state.key) return;
            if (unroutable.length > 0) {
              this.log.warn({ service: name, instance_ids: unroutable }, 'instances without an address or port are left out');
            }
            state.key = key;
            state.instances = instances;
            this.scheduleFlush();
          },
        },
        controller.signal,
      ),
    );
  }

  /** Every listed service has answered at least once. */
  private complete(): boolean {
    if (this.catalogKey === undefined) return false;
    for (const service of this.services.values()) if (service.instances === undefined) return false;
    return true;
  }

  private scheduleFlush(): void {
    if (this.stopped) return;
    const now = performance.now();
    this.firstChangeAt ??= now;
    clearTimeout(this.flushTimer);
    const delay = Math.max(0, Math.min(this.debounceMs, this.firstChangeAt + this.maxHoldMs - now));
    this.flushTimer = setTimeout(() => this.flush(), delay);
  }

  private flush(): void {
    this.flushTimer = undefined;
    if (this.stopped || this.firstChangeAt === undefined) return;
    if (!this.complete()) {
      // The first registry must be complete: the services still pending will schedule
      // again when they answer. Later, a new service that has not answered yet is left
      // out once the hold is up, rather than holding back every other change.
      if (this.state.updates === 0) {
        this.firstChangeAt = undefined;
        return;
      }
      const held = performance.now() - this.firstChangeAt;
      if (held < this.maxHoldMs) {
        this.flushTimer = setTimeout(() => this.flush(), this.maxHoldMs - held);
        return;
      }
    }
    this.firstChangeAt = undefined;
    // Unchanged services keep their objects (and instance arrays), and the registry says
    // which changed, so consumers need not look at the rest (10,000 services, one change).
    this.sortedNames ??= [...this.services.keys()].sort(byCodeUnits);
    const before = this.emitted;
    const services = new Map<string, Service>();
    const changed = new Set<string>();
    for (const name of this.sortedNames) {
      const instances = this.services.get(name)?.instances;
      if (!instances) continue;
      const was = before?.get(name);
      if (was?.instances === instances) services.set(name, was);
      else {
        services.set(name, { name, instances });
        changed.add(name);
      }
    }
    if (before) for (const name of before.keys()) if (!services.has(name)) changed.add(name);
    if (before && changed.size === 0) return;
    this.emitted = services;
    this.state.updates += 1;
    const instances = [...services.values()].reduce((n, s) => n + s.instances.length, 0);
    this.log.info({ services: services.size, instances, updates: this.state.updates }, 'registry from Consul');
    try {
      this.onUpdate?.(before ? { services, changes: { since: before, services: changed } } : { services });
    } catch (err) {
      this.log.error({ err }, 'the registry consumer threw');
    }
    this.settleFirst();
  }
}
