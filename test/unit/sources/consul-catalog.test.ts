// The Consul catalog source against a tiny fake Consul (node:http on 127.0.0.1:0) whose
// indexes, headers and bodies each test controls: the blocking-query rules, content
// comparison, coalescing, failure handling and a clean stop.
import { createHook } from 'node:async_hooks';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import type { Registry } from '../../../src/model/types.js';
import { backoffDelay, TokenBucket } from '../../../src/sources/backoff.js';
import {
  ConsulCatalogSource,
  instancesOf,
  parseWait,
  type ConsulCatalogOptions,
} from '../../../src/sources/consul-catalog.js';
import { freePort } from '../../helpers/ports.js';
import { waitFor } from '../../helpers/wait.js';

// ---- a fake Consul -------------------------------------------------------------------

interface Seen {
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** The `index` parameter as a number (0 when absent). */
  index: number;
}

/** What a path answers; `index: null` leaves the X-Consul-Index header out. */
interface Answer {
  status?: number;
  index?: number | null;
  body: unknown;
}

interface Route {
  index: number;
  body: unknown;
  status: number;
  /** When set, answers every request at once instead of blocking; `hold` keeps it open. */
  custom?: (seen: Seen) => Answer | 'hold';
}

interface Waiter {
  since: number;
  respond: () => void;
}

class FakeConsul {
  readonly seen: Seen[] = [];
  private readonly routes = new Map<string, Route>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private lastIndex = 10;

  private constructor(private readonly server: Server) {}

  static async start(port = 0): Promise<FakeConsul> {
    const server = createServer();
    const fake = new FakeConsul(server);
    server.on('request', (req, res) => fake.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Sets what `path` answers, with a fresh (higher) index, and wakes its waiters. */
  set(path: string, body: unknown, status = 200): void {
    this.lastIndex += 1;
    this.routes.set(path, { index: this.lastIndex, body, status });
    this.wake(path);
  }

  setCustom(path: string, custom: (seen: Seen) => Answer | 'hold'): void {
    this.routes.set(path, { index: 0, body: null, status: 200, custom });
    this.wake(path);
  }

  requestsTo(path: string): Seen[] {
    return this.seen.filter((s) => s.path === path);
  }

  /** Requests held open right now (blocking queries in flight). */
  openWaiters(): number {
    return [...this.waiters.values()].reduce((n, set) => n + set.size, 0);
  }

  async close(): Promise<void> {
    for (const set of this.waiters.values()) for (const w of set) w.respond();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private wake(path: string): void {
    for (const waiter of [...(this.waiters.get(path) ?? [])]) waiter.respond();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const seen: Seen = { path: url.pathname, query: url.searchParams, headers: req.headers, index: Number(url.searchParams.get('index') ?? 0) };
    this.seen.push(seen);
    const route = this.routes.get(url.pathname);
    if (!route) return send(res, { status: 404, index: null, body: 'no such path' });
    const answer = route.custom?.(seen);
    if (answer && answer !== 'hold') return send(res, answer);
    if (!answer && (route.status !== 200 || seen.index === 0 || seen.index < route.index)) {
      return send(res, { status: route.status, index: route.index, body: route.body });
    }
    // Blocking: hold until the route changes, the wait expires or the client goes.
    const waitMs = Number(/^(\d+)ms$/.exec(url.searchParams.get('wait') ?? '')?.[1] ?? 300_000);
    const set = this.waiters.get(url.pathname) ?? new Set<Waiter>();
    this.waiters.set(url.pathname, set);
    const finish = (): void => {
      clearTimeout(timer);
      set.delete(waiter);
    };
    const waiter: Waiter = {
      since: Date.now(),
      respond: () => {
        finish();
        const now = this.routes.get(url.pathname);
        if (!now) return send(res, { status: 404, index: null, body: 'gone' });
        const custom = now.custom?.(seen);
        if (custom === 'hold') return void res.destroy();
        send(res, custom ?? { status: now.status, index: now.index, body: now.body });
      },
    };
    const timer = setTimeout(() => waiter.respond(), waitMs);
    set.add(waiter);
    res.on('close', finish);
  }
}

function send(res: ServerResponse, { status = 200, index, body }: Answer): void {
  if (res.writableEnded || res.destroyed) return;
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-consul-knownleader': 'true', 'x-consul-lastcontact': '0' };
  if (index !== null && index !== undefined) headers['x-consul-index'] = String(index);
  res.writeHead(status, headers);
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

// ---- inputs by name ------------------------------------------------------------------

interface InstanceSpec {
  port?: number;
  address?: string;
  nodeAddress?: string;
  tags?: string[] | null;
  meta?: Record<string, string> | null;
}

/** One entry of /v1/health/service/<name>, as Consul shapes it. */
function instance(id: string, spec: InstanceSpec = {}): unknown {
  return {
    Node: { Node: 'node-1', Address: spec.nodeAddress ?? '10.0.0.1' },
    Service: {
      ID: id,
      Service: id.split('-')[0],
      Address: spec.address ?? '127.0.0.1',
      Port: spec.port ?? 8080,
      Tags: spec.tags === undefined ? [] : spec.tags,
      Meta: spec.meta === undefined ? {} : spec.meta,
    },
    Checks: [],
  };
}

const catalogPath = '/v1/catalog/services';
const healthPath = (name: string): string => `/v1/health/service/${name}`;

/** The catalog list: every name maps to its tags, with Consul's own service in it. */
function catalog(...names: string[]): Record<string, string[]> {
  return Object.fromEntries([['consul', []], ...names.map((n) => [n, []])]);
}

const summary = (registry: Registry | undefined): Record<string, string[]> =>
  Object.fromEntries(
    [...(registry?.services.values() ?? [])].map((s) => [s.name, s.instances.map((i) => `${i.id}@${i.address}:${i.port}[${i.tags.join(',')}]`)]),
  );

/**
 * Follows the timers created from now on; `alive()` lists those still pending that
 * would keep the process running (ref'd), by the stack that made them.
 */
function trackTimers(): { alive(): Promise<string[]> } {
  const pending = new Map<number, { timer: NodeJS.Timeout; stack: string }>();
  const hook = createHook({
    init(asyncId, type, _trigger, resource) {
      if (type === 'Timeout') pending.set(asyncId, { timer: resource as NodeJS.Timeout, stack: new Error().stack ?? '' });
    },
    destroy(asyncId) {
      pending.delete(asyncId);
    },
  }).enable();
  return {
    async alive() {
      // Destroy hooks of cleared timers run on a later tick.
      await new Promise((resolve) => setImmediate(resolve));
      hook.disable();
      return [...pending.values()].filter((p) => p.timer.hasRef()).map((p) => p.stack);
    },
  };
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the tests -------------------------------------------------------------------------

describe('ConsulCatalogSource', () => {
  const fakes: FakeConsul[] = [];
  const sources: ConsulCatalogSource[] = [];
  afterEach(async () => {
    await Promise.all(sources.map((s) => s.stop()));
    await Promise.all(fakes.map((f) => f.close()));
    sources.length = 0;
    fakes.length = 0;
  });

  async function fakeConsul(port?: number): Promise<FakeConsul> {
    const fake = await FakeConsul.start(port);
    fakes.push(fake);
    return fake;
  }

  /** A fake with `api` (one instance) and `web` (none) in its catalog. */
  async function apiAndWeb(): Promise<FakeConsul> {
    const fake = await fakeConsul();
    fake.set(catalogPath, catalog('api', 'web'));
    fake.set(healthPath('api'), [instance('api-1')]);
    fake.set(healthPath('web'), []);
    return fake;
  }

  function source(fake: { address: string }, options: Partial<ConsulCatalogOptions> = {}): { source: ConsulCatalogSource; updates: Registry[] } {
    const updates: Registry[] = [];
    const created = new ConsulCatalogSource({
      address: fake.address,
      logger: silentLogger(),
      wait: '5s',
      debounceMs: 30,
      maxHoldMs: 300,
      // Rate limiting is tested on its own; elsewhere it must not shape the timing.
      rateLimit: { burst: 1_000, refillMs: 1 },
      backoff: { baseMs: 20, maxMs: 200 },
      ...options,
    });
    sources.push(created);
    return { source: created, updates };
  }

  async function started(fake: FakeConsul, options: Partial<ConsulCatalogOptions> = {}): Promise<{ source: ConsulCatalogSource; updates: Registry[] }> {
    const made = source(fake, options);
    await made.source.start((r) => made.updates.push(r));
    return made;
  }

  /** Waits until every watch is parked in a blocking query again. */
  async function settled(fake: FakeConsul, watches: number): Promise<void> {
    await waitFor(() => fake.openWaiters() === watches, { description: `${watches} blocking queries held open` });
  }

  it('maps healthy instances into a sorted registry without the consul service', async () => {
    const fake = await fakeConsul();
    fake.set(catalogPath, catalog('web', 'api'));
    fake.set(healthPath('api'), [
      instance('api-2', { port: 9002, tags: null, meta: null }),
      instance('api-1', { address: '', nodeAddress: '10.0.0.7', port: 9001, tags: ['beta'], meta: { zone: 'a', app: 'api' } }),
    ]);
    fake.set(healthPath('web'), []);
    const { updates } = await started(fake, { token: 'secret', datacenter: 'dc2' });

    expect(updates).toHaveLength(1);
    const registry = updates[0]!;
    expect([...registry.services.keys()]).toEqual(['api', 'web']);
    expect(registry.services.get('api')?.instances).toEqual([
      { id: 'api-1', address: '10.0.0.7', port: 9001, tags: ['beta'], meta: { app: 'api', zone: 'a' } },
      { id: 'api-2', address: '127.0.0.1', port: 9002, tags: [], meta: {} },
    ]);
    expect(Object.keys(registry.services.get('api')!.instances[0]!.meta)).toEqual(['app', 'zone']);
    expect(registry.services.get('web')?.instances).toEqual([]);
    expect(fake.requestsTo(healthPath('consul'))).toHaveLength(0);

    const health = fake.requestsTo(healthPath('api'))[0]!;
    expect(health.query.has('passing')).toBe(true);
    expect(health.query.has('stale')).toBe(true);
    expect(health.query.get('dc')).toBe('dc2');
    expect(health.headers['x-consul-token']).toBe('secret');
    expect(fake.requestsTo(catalogPath)[0]!.query.has('stale')).toBe(true);
  });

  it('blocks on the index it was given, with the configured wait', async () => {
    const fake = await apiAndWeb();
    await started(fake, { wait: '2s' });
    await settled(fake, 3);
    const blocking = fake.requestsTo(catalogPath)[1]!;
    expect(blocking.index).toBe(11);
    expect(blocking.query.get('wait')).toBe('2000ms');
  });

  it('emits nothing when a wake-up brings no real change', async () => {
    const fake = await apiAndWeb();
    const { source: src, updates } = await started(fake);
    await settled(fake, 3);
    const before = fake.requestsTo(healthPath('api')).length;
    // Same content, new index: an idempotent write, as far as the source can tell.
    fake.set(healthPath('api'), [instance('api-1')]);
    fake.set(catalogPath, catalog('api', 'web'));
    await waitFor(() => fake.requestsTo(healthPath('api')).length > before && fake.openWaiters() === 3, {
      description: 'the watch to re-block on the new index',
    });
    await delay(100);
    expect(updates).toHaveLength(1);
    expect(src.status()).toMatchObject({ healthy: true, updates: 1 });
  });

  it('coalesces a burst of changes over several services into one emit', async () => {
    const fake = await apiAndWeb();
    const { updates } = await started(fake, { debounceMs: 80 });
    await settled(fake, 3);
    for (let port = 1; port <= 5; port++) {
      fake.set(healthPath('api'), [instance('api-1', { port })]);
      fake.set(healthPath('web'), [instance('web-1', { port })]);
      await delay(5);
    }
    await waitFor(() => updates.length === 2, { description: 'the second registry' });
    await delay(200);
    expect(updates).toHaveLength(2);
    expect(summary(updates[1])).toEqual({ api: ['api-1@127.0.0.1:5[]'], web: ['web-1@127.0.0.1:5[]'] });
    expect(updates[0]!.changes).toBeUndefined(); // the first registry is whole
    expect(updates[1]!.changes?.since).toBe(updates[0]!.services);
    expect([...updates[1]!.changes!.services].sort()).toEqual(['api', 'web']);
  });

  it('says which services changed, and keeps the objects of the others', async () => {
    const fake = await apiAndWeb();
    const { updates } = await started(fake);
    await settled(fake, 3);
    fake.set(healthPath('web'), [instance('web-1', { port: 7001 })]);
    await waitFor(() => updates.length === 2, { description: 'the registry with web moved' });
    const [first, second] = [updates[0]!, updates[1]!];
    expect(second.changes?.since).toBe(first.services);
    expect([...second.changes!.services]).toEqual(['web']);
    expect(second.services.get('api')).toBe(first.services.get('api'));
  });

  it('never holds a change longer than maxHoldMs while changes keep coming', async () => {
    const fake = await apiAndWeb();
    const { updates } = await started(fake, { debounceMs: 50, maxHoldMs: 150 });
    await settled(fake, 3);
    let port = 1;
    const churn = setInterval(() => fake.set(healthPath('api'), [instance('api-1', { port: port++ })]), 15);
    try {
      await delay(700);
      // Each quiet window is cut short, so only the hold lets anything through.
      expect(updates.length - 1).toBeGreaterThanOrEqual(2);
      expect(updates.length - 1).toBeLessThanOrEqual(6);
    } finally {
      clearInterval(churn);
    }
  });

  it('rate-limits a churning watch with its token bucket', async () => {
    const fake = await apiAndWeb();
    let index = 100;
    await started(fake, { rateLimit: { burst: 2, refillMs: 200 } });
    // Every answer has a new index and new content: a naive loop would spin.
    fake.setCustom(healthPath('api'), () => ({ index: ++index, body: [instance('api-1', { port: index })] }));
    const before = fake.requestsTo(healthPath('api')).length;
    await delay(1_000);
    const during = fake.requestsTo(healthPath('api')).length - before;
    expect(during).toBeGreaterThanOrEqual(3);
    expect(during).toBeLessThanOrEqual(2 + 1_000 / 200 + 1);
  });

  it('restarts a watch from index 0 when the index goes backwards', async () => {
    const fake = await apiAndWeb();
    // Index 100 first; the blocking read at 100 then answers 50 (say, a snapshot restore).
    fake.setCustom(healthPath('api'), (seen) => {
      if (seen.index === 0 && fake.requestsTo(healthPath('api')).length === 1) return { index: 100, body: [instance('api-1')] };
      if (seen.index === 0) return { index: 50, body: [instance('api-1', { port: 2 })] };
      if (seen.index === 100) return { index: 50, body: [instance('api-1', { port: 2 })] };
      return 'hold';
    });
    const { updates } = await started(fake);
    await waitFor(() => fake.requestsTo(healthPath('api')).length >= 4, { description: 'four reads of api' });
    expect(fake.requestsTo(healthPath('api')).slice(0, 4).map((s) => s.index)).toEqual([0, 100, 0, 50]);
    // The answer at the lower index is still a good answer.
    await waitFor(() => summary(updates.at(-1)).api?.[0] === 'api-1@127.0.0.1:2[]', { description: 'port 2' });
  });

  it.each([
    ['an index of 0', 0],
    ['no X-Consul-Index header', null],
  ])('does not busy-loop on %s', async (_name, badIndex) => {
    const fake = await apiAndWeb();
    fake.setCustom(healthPath('api'), () => ({ index: badIndex, body: [instance('api-1')] }));
    // No rate limit (see source()): the backoff alone must keep the loop slow.
    const { source: src, updates } = await started(fake, { backoff: { baseMs: 100, maxMs: 1_000 } });
    const reads = fake.requestsTo(healthPath('api'));
    await delay(1_000);
    const count = fake.requestsTo(healthPath('api')).length;
    expect(count).toBeGreaterThanOrEqual(3);
    // 50-100, 100-200, 200-400, 400-800 ms: at most five reads in the first second.
    expect(count).toBeLessThanOrEqual(6);
    expect(reads[0]!.index).toBe(0);
    expect(fake.requestsTo(healthPath('api')).slice(1).every((s) => s.index === 1)).toBe(true);
    // The body was fine, so the source is healthy and emitted it once.
    expect(updates).toHaveLength(1);
    expect(src.status().healthy).toBe(true);
  });

  it('keeps the last instances when a health read fails, reports it, and recovers', async () => {
    const fake = await apiAndWeb();
    const { source: src, updates } = await started(fake);
    await settled(fake, 3);
    const goodSince = src.status().lastSuccessMs;
    expect(goodSince).toBeGreaterThan(0);

    fake.set(healthPath('api'), 'rpc error: no cluster leader', 500);
    await waitFor(() => !src.status().healthy, { description: 'the source to report the failure' });
    const failing = src.status();
    expect(failing.lastError).toMatch(/service:api: GET \/v1\/health\/service\/api answered 500: rpc error: no cluster leader/);
    expect(failing.failingWatches).toBe(1);
    // Retries go on (with backoff), and none of them empties the service.
    const failedReads = fake.requestsTo(healthPath('api')).length;
    await waitFor(() => fake.requestsTo(healthPath('api')).length >= failedReads + 2, { description: 'two retries' });
    expect(updates).toHaveLength(1);
    expect(summary(updates[0])).toEqual({ api: ['api-1@127.0.0.1:8080[]'], web: [] });
    expect(src.status().lastSuccessMs).toBe(goodSince);

    fake.set(healthPath('api'), [instance('api-1', { tags: ['beta'] })]);
    await waitFor(() => src.status().healthy, { description: 'the source to recover' });
    await waitFor(() => updates.length === 2, { description: 'the new registry' });
    expect(summary(updates[1]).api).toEqual(['api-1@127.0.0.1:8080[beta]']);
    expect(src.status().lastError).toBeUndefined();
    expect(src.status().lastSuccessMs).toBeGreaterThan(goodSince!);
  });

  it('keeps every service when the service list read fails', async () => {
    const fake = await apiAndWeb();
    const { source: src, updates } = await started(fake);
    await settled(fake, 3);
    fake.set(catalogPath, { error: 'boom' }, 503);
    await waitFor(() => !src.status().healthy, { description: 'the source to report the failure' });
    expect(src.status().lastError).toMatch(/^catalog: .*answered 503/);
    // Health watches carry on: a change still comes through while the list is failing.
    fake.set(healthPath('api'), [instance('api-1', { port: 9 })]);
    await waitFor(() => updates.length === 2, { description: 'the api change' });
    expect(summary(updates[1])).toEqual({ api: ['api-1@127.0.0.1:9[]'], web: [] });
  });

  it('treats a body of the wrong shape as a failed read, not as no instances', async () => {
    const fake = await apiAndWeb();
    const { source: src, updates } = await started(fake);
    await settled(fake, 3);
    fake.set(healthPath('api'), [{ Node: {}, Service: { ID: 'api-1' } }]);
    await waitFor(() => !src.status().healthy, { description: 'the source to refuse the body' });
    expect(src.status().lastError).toMatch(/^service:api: /);
    expect(updates).toHaveLength(1);
  });

  it('removes a service that leaves the list and stops watching it', async () => {
    const fake = await apiAndWeb();
    const { source: src, updates } = await started(fake);
    await settled(fake, 3);
    fake.set(catalogPath, catalog('api'));
    await waitFor(() => updates.length === 2, { description: 'the registry without web' });
    expect(summary(updates[1])).toEqual({ api: ['api-1@127.0.0.1:8080[]'] });
    expect([...updates[1]!.changes!.services]).toEqual(['web']);
    await settled(fake, 2);
    const webReads = fake.requestsTo(healthPath('web')).length;
    fake.set(healthPath('web'), [instance('web-1')]);
    await delay(100);
    expect(fake.requestsTo(healthPath('web'))).toHaveLength(webReads);
    expect(src.status()).toMatchObject({ healthy: true, watches: 2 });
  });

  it('adds a new service once its instances are known', async () => {
    const fake = await apiAndWeb();
    const { updates } = await started(fake);
    await settled(fake, 3);
    fake.set(healthPath('db'), [instance('db-1', { port: 5432 })]);
    fake.set(catalogPath, catalog('api', 'web', 'db'));
    await waitFor(() => updates.length === 2, { description: 'the registry with db' });
    expect(Object.keys(summary(updates[1]))).toEqual(['api', 'db', 'web']);
    expect(summary(updates[1]).db).toEqual(['db-1@127.0.0.1:5432[]']);
    expect([...updates[1]!.changes!.services]).toEqual(['db']);
  });

  it('waits for every service before the first registry', async () => {
    const fake = await fakeConsul();
    fake.set(catalogPath, catalog('api', 'web'));
    fake.set(healthPath('api'), [instance('api-1')]);
    fake.set(healthPath('web'), 'down', 500);
    const { source: src, updates } = source(fake, { initialTimeoutMs: 400 });
    const start = src.start((r) => updates.push(r));
    await expect(start).rejects.toMatchObject({ code: 'CONSUL_CATALOG_START_TIMEOUT' });
    expect(updates).toHaveLength(0);
    expect(src.status()).toMatchObject({ healthy: false, updates: 0 });
    fake.set(healthPath('web'), []);
    await waitFor(() => updates.length === 1, { description: 'the first registry, late' });
    expect(summary(updates[0])).toEqual({ api: ['api-1@127.0.0.1:8080[]'], web: [] });
  });

  it('rejects start() after initialTimeoutMs when Consul is unreachable, and keeps retrying', async () => {
    const port = await freePort();
    const { source: src, updates } = source({ address: `127.0.0.1:${port}` }, { initialTimeoutMs: 300 });
    const began = Date.now();
    await expect(src.start((r) => updates.push(r))).rejects.toMatchObject({
      code: 'CONSUL_CATALOG_START_TIMEOUT',
      message: expect.stringMatching(/within 300 ms; last error: catalog: fetch failed \(ECONNREFUSED\)/),
    });
    expect(Date.now() - began).toBeLessThan(1_500);
    expect(src.status()).toMatchObject({ healthy: false, updates: 0, lastError: expect.stringMatching(/ECONNREFUSED/) });

    const fake = await fakeConsul(port);
    fake.set(catalogPath, catalog('api'));
    fake.set(healthPath('api'), [instance('api-1')]);
    await waitFor(() => updates.length === 1, { description: 'the registry once Consul is up' });
    expect(src.status().healthy).toBe(true);
  });

  it('stop() aborts open requests and sleeping loops, clears its timers and makes no further requests', async () => {
    const fake = await apiAndWeb();
    const timers = trackTimers();
    // Two tokens, then one a minute: after one change the api watch sleeps on its bucket.
    const { source: src, updates } = await started(fake, { wait: '4m', rateLimit: { burst: 2, refillMs: 60_000 } });
    await settled(fake, 3);
    fake.set(healthPath('api'), [instance('api-1', { port: 2 })]);
    await waitFor(() => updates.length === 2 && fake.openWaiters() === 2, { description: 'api to wait for a token' });

    const began = Date.now();
    await src.stop();
    expect(Date.now() - began).toBeLessThan(500);
    await waitFor(() => fake.openWaiters() === 0, { description: 'the blocking queries to be closed by the client', timeoutMs: 1_000 });
    const requests = fake.seen.length;
    fake.set(healthPath('api'), [instance('api-1', { port: 3 })]);
    fake.set(catalogPath, catalog('api', 'web', 'db'));
    await delay(200);
    expect(fake.seen).toHaveLength(requests);
    expect(updates).toHaveLength(2);
    await fake.close();
    // Every timer made since start() (the source's, fetch's, the fake server's) is gone.
    expect(await timers.alive()).toEqual([]);
  });

  it('rejects start() when stopped before the first registry', async () => {
    const port = await freePort();
    const { source: src } = source({ address: `127.0.0.1:${port}` });
    const start = src.start(() => undefined);
    await delay(50);
    await src.stop();
    await expect(start).rejects.toMatchObject({ code: 'CONSUL_CATALOG_STOPPED' });
  });
});

describe('Consul answers and options', () => {
  it.each([
    ['ms as a number', 1_500, 1_500],
    ['seconds', '30s', 30_000],
    ['minutes', '4m', 240_000],
    ['milliseconds', '250ms', 250],
  ])('parses a wait given as %s', (_name, wait, ms) => {
    expect(parseWait(wait)).toBe(ms);
  });

  it.each([['5m'], ['0s'], ['30'], ['1h'], [-1]])('refuses the wait %j', (wait) => {
    expect(() => parseWait(wait)).toThrow(expect.objectContaining({ code: 'CONSUL_CATALOG_OPTIONS' }));
  });

  it('refuses pacing options that would allow a busy loop, naming each', () => {
    const make = (): ConsulCatalogSource =>
      new ConsulCatalogSource({ address: '127.0.0.1:8500', logger: silentLogger(), backoff: { baseMs: 0 }, rateLimit: { refillMs: -1 } });
    expect(make).toThrow(expect.objectContaining({ code: 'CONSUL_CATALOG_OPTIONS', message: expect.stringMatching(/backoff\.baseMs: 0 .*rateLimit\.refillMs: -1/) }));
  });

  it('leaves out instances without a port or an address', () => {
    const { instances, unroutable } = instancesOf([instance('api-1', { port: 0 }), instance('api-2', { address: '', nodeAddress: '' }), instance('api-3')]);
    expect(instances.map((i) => i.id)).toEqual(['api-3']);
    expect(unroutable).toEqual(['api-1', 'api-2']);
  });

  it('sorts instances that share an id (ids are unique per node only) by address and port', () => {
    const { instances } = instancesOf([instance('api-1', { address: '10.0.0.2' }), instance('api-1', { address: '10.0.0.1', port: 2 }), instance('api-1', { address: '10.0.0.1', port: 1 })]);
    expect(instances.map((i) => `${i.address}:${i.port}`)).toEqual(['10.0.0.1:1', '10.0.0.1:2', '10.0.0.2:8080']);
  });
});

describe('backoff and token bucket', () => {
  it.each([
    [0, 50, 100],
    [1, 100, 200],
    [3, 400, 800],
    [20, 15_000, 30_000],
  ])('retry %i waits between %i and %i ms', (attempt, low, high) => {
    const options = { baseMs: 100, maxMs: 30_000 };
    expect(backoffDelay(attempt, options, () => 0)).toBe(low);
    expect(backoffDelay(attempt, options, () => 1)).toBe(high);
  });

  it('lets a burst through, then one round per refill', () => {
    let now = 0;
    const bucket = new TokenBucket({ burst: 2, refillMs: 1_000 }, () => now);
    expect([bucket.reserve(), bucket.reserve(), bucket.reserve()]).toEqual([0, 0, 1_000]);
    now = 1_000;
    expect(bucket.reserve()).toBe(1_000);
    now = 10_000;
    expect([bucket.reserve(), bucket.reserve(), bucket.reserve()]).toEqual([0, 0, 1_000]);
  });
});
