// Shadow traffic and weighted splits, end to end: a real Consul catalog, the real
// `shadowplane serve` with a rules folder, a real edge Envoy and backends that record
// what they receive. Mirrors copy their share of read-only requests to the shadow,
// marked and stripped, and nothing the shadow does (answer late, fail, be gone) reaches
// the caller. Shares are checked with bounds of 3.5 standard deviations or more.
// Most tests write a mirror rule while its target subset has no instance and register
// the instance afterwards, as CI would; the last one adds a mirror to a registered
// target by a rule alone.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { request } from '../helpers/ads-envoy.js';
import { backendBody } from '../helpers/backend.js';
import { deregisterService, registerService } from '../helpers/consul.js';
import { freePort } from '../helpers/ports.js';
import { showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { hasBinary } from '../helpers/tools.js';
import {
  clusterPorts,
  mirrorCopies,
  percent,
  sendRequests,
  startScriptedBackend,
  startTrafficStack,
  virtualHostRoutes,
  waitForClusterPorts,
  waitForRouteConfig,
  waitForRouteNames,
  type ScriptedBackend,
  type TrafficStack,
} from '../helpers/traffic.js';

const SHADOW_10 = `services:
  api:
    mirrors:
      - name: shadow-10
        to: shadow
        percent: 10
        remove_headers: [authorization]
`;
const TWO_MIRRORS = `${SHADOW_10}      - { name: canary-20, to: canary, percent: 20 }
`;
const CANARY_5 = `services:
  api:
    routes:
      - name: canary-5
        split:
          - { to: canary, weight: 5 }
          - { to: stable, weight: 95 }
`;
const CANARY_5_AND_SHADOW_10 = `${CANARY_5}    mirrors:
      - { name: shadow-10, to: shadow, percent: 10 }
`;

const MARKER = 'x-shadowplane-mirror';
const SHADOW_MIRROR = 'api.shadow.mirror-shadow-10';
const SHADOW_ROUTES = ['api/stable+mirror:shadow-10', 'api/stable'];

describe.skipIf(!hasBinary('envoy') || !hasBinary('consul'))('traffic: mirrors and weighted splits', () => {
  let stack: TrafficStack;
  const b: Record<'primary' | 'shadow' | 'canary' | 'slow' | 'failing', ScriptedBackend> = {} as never;

  /** Puts the shadow instance on `port` and waits until Envoy's mirror cluster sends there. */
  async function shadowAt(port: number): Promise<void> {
    await registerService(stack.consul, { name: 'api', id: 'api-shadow-1', port, tags: ['shadow'] });
    await waitForClusterPorts(stack.envoy, SHADOW_MIRROR, [port]);
    await waitForRouteNames(stack.envoy, stack.listener, 'api', SHADOW_ROUTES);
  }

  const get = (count: number, headers?: (i: number) => Record<string, string>, method = 'GET') =>
    sendRequests({ port: stack.port, host: 'api', count, headers, method });

  beforeAll(async () => {
    b.primary = await startScriptedBackend('stable');
    b.shadow = await startScriptedBackend('shadow');
    b.canary = await startScriptedBackend('canary');
    b.slow = await startScriptedBackend('slow-shadow', { delayMs: 2_000 });
    b.failing = await startScriptedBackend('failing-shadow', { status: 500 });
    stack = await startTrafficStack({
      rules: { api: SHADOW_10 },
      instances: [
        { name: 'api', id: 'api-stable-1', port: b.primary.port },
        { name: 'api', id: 'api-shadow-1', port: b.shadow.port, tags: ['shadow'] },
      ],
      services: ['api'],
    });
  });
  afterAll(async () => {
    await stopAllProcesses();
    await Promise.all(Object.values(b).map((backend) => backend.close()));
    await stack?.cleanup();
  });
  beforeEach(() => showLogsOnFailure(stack.serve.process, stack.envoy, stack.consul));

  describe('one mirror, 10 % to shadow', () => {
    beforeAll(() => shadowAt(b.shadow.port));

    it('copies 10 % of GET requests to the shadow while the primary answers every one', async () => {
      const route = (await virtualHostRoutes(stack.envoy, stack.listener, 'api'))[0];
      expect(route?.route?.request_mirror_policies).toEqual([
        expect.objectContaining({ cluster: SHADOW_MIRROR, runtime_fraction: { default_value: { numerator: 100_000, denominator: 'MILLION' } } }),
      ]);
      const primaryBefore = b.primary.requests.length;
      const shadow = await mirrorCopies(stack.envoy, SHADOW_MIRROR, b.shadow);
      const total = 3_000;
      const result = await get(total);
      expect(Object.fromEntries(result.statuses)).toEqual({ 200: total });
      expect(Object.fromEntries(result.backends)).toEqual({ stable: total });
      expect(result.wrongBodies).toBe(0);
      expect(b.primary.requests.length - primaryBefore).toBe(total);

      const copies = await shadow.settled();
      console.log(`mirror shadow-10: the shadow received ${copies} of ${total} GETs = ${percent(copies, total)} %`);
      // 10 % ± 2 points; one standard deviation is 0.55 points here.
      expect(percent(copies, total)).toBeGreaterThanOrEqual(8);
      expect(percent(copies, total)).toBeLessThanOrEqual(12);
    });

    it('sends the copy to Host api-shadow with the marker header and without the removed headers', async () => {
      const primaryBefore = b.primary.requests.length;
      const shadow = await mirrorCopies(stack.envoy, SHADOW_MIRROR, b.shadow);
      const total = 300;
      // A caller cannot forge the marker: the edge removes it before routing.
      const result = await get(total, (i) => ({ authorization: 'Bearer secret', 'x-test-id': `h-${i}`, [MARKER]: 'forged' }));
      expect(Object.fromEntries(result.statuses)).toEqual({ 200: total });
      await shadow.settled();

      const atPrimary = b.primary.requests.slice(primaryBefore);
      expect(atPrimary).toHaveLength(total);
      for (const r of atPrimary) {
        expect(r.headers.host).toBe('api');
        expect(r.headers.authorization).toBe('Bearer secret');
        expect(r.headers[MARKER]).toBeUndefined();
      }
      const copies = shadow.received();
      // 0.9^300: the chance of no copy at all is below 1e-13.
      expect(copies.length).toBeGreaterThan(0);
      const primaryIds = new Set(atPrimary.map((r) => r.headers['x-test-id']));
      for (const r of copies) {
        expect(r.headers.host).toBe('api-shadow');
        expect(r.headers[MARKER]).toBe('shadow-10');
        expect(r.headers.authorization).toBeUndefined();
        expect(r.method).toBe('GET');
        // A copy of a request the primary served, its other headers intact.
        expect(primaryIds.has(r.headers['x-test-id'])).toBe(true);
      }
    });

    it('does not copy POST requests (default methods: GET, HEAD, OPTIONS)', async () => {
      const primaryBefore = b.primary.requests.length;
      const shadow = await mirrorCopies(stack.envoy, SHADOW_MIRROR, b.shadow);
      const total = 500;
      const result = await get(total, undefined, 'POST');
      expect(Object.fromEntries(result.statuses)).toEqual({ 200: total });
      expect(b.primary.requests.slice(primaryBefore).filter((r) => r.method === 'POST')).toHaveLength(total);
      // 500 POSTs at 10 % would give 50 copies; Envoy sent none on the mirror cluster.
      expect(await shadow.settled()).toBe(0);
      // GETs sent after them are copied as before.
      expect(Object.fromEntries((await get(300)).statuses)).toEqual({ 200: 300 });
      expect(await shadow.settled()).toBeGreaterThan(0);
      expect(shadow.received().filter((r) => r.method !== 'GET')).toEqual([]);
    });
  });

  describe('a shadow that misbehaves never changes the primary answer', () => {
    afterAll(() => shadowAt(b.shadow.port));

    it('a slow shadow (answers after 2 s): callers get the primary answer without waiting for the copy', async () => {
      await shadowAt(b.slow.port);
      const copies = await mirrorCopies(stack.envoy, SHADOW_MIRROR, b.slow);
      // 4 workers × 50 requests; each notes whether the shadow had answered its copy
      // by the time the caller had the primary's answer.
      const outcomes = await Promise.all(
        Array.from({ length: 4 }, async (_, worker) => {
          const seen: { status: number; backend: string | null; body: string; copyAnsweredFirst: boolean }[] = [];
          for (let i = 0; i < 50; i++) {
            const id = `slow-${worker}-${i}`;
            const r = await request(stack.port, 'api', '/', { headers: { 'x-test-id': id } });
            const copyAnsweredFirst = b.slow.requests.some((c) => c.headers['x-test-id'] === id && c.answered);
            seen.push({ ...r, copyAnsweredFirst });
          }
          return seen;
        }),
      );
      const all = outcomes.flat();
      expect(all).toHaveLength(200);
      for (const r of all) expect(r).toEqual({ status: 200, backend: 'stable', body: backendBody('stable'), copyAnsweredFirst: false });
      // Copies went out all the same (0.9^200 < 1e-9), and the shadow answered each in the end.
      expect(await copies.settled()).toBeGreaterThan(0);
      expect(copies.received().every((c) => c.answered)).toBe(true);
    });

    it('a failing shadow (answers 500): callers get the primary answer', async () => {
      await shadowAt(b.failing.port);
      const copies = await mirrorCopies(stack.envoy, SHADOW_MIRROR, b.failing);
      const result = await get(200);
      expect(Object.fromEntries(result.statuses)).toEqual({ 200: 200 });
      expect(Object.fromEntries(result.backends)).toEqual({ stable: 200 });
      expect(result.wrongBodies).toBe(0);
      expect(await copies.settled()).toBeGreaterThan(0);
    });

    it('a shadow that is down, then deregistered: callers get the primary answer', async () => {
      // Registered, but nothing listens on its port: every copy fails to connect.
      await shadowAt(await freePort());
      const connectFails = () => stack.envoy.stat(`cluster.${SHADOW_MIRROR}.upstream_cx_connect_fail`).then((n) => n ?? 0);
      const failsBefore = await connectFails();
      const down = await get(200);
      expect(Object.fromEntries(down.statuses)).toEqual({ 200: 200 });
      expect(Object.fromEntries(down.backends)).toEqual({ stable: 200 });
      expect(down.wrongBodies).toBe(0);
      expect(await connectFails()).toBeGreaterThan(failsBefore);

      // Deregistered: the mirror has no target, so the route carries none, and the primary serves on.
      await deregisterService(stack.consul, 'api-shadow-1');
      await waitForClusterPorts(stack.envoy, SHADOW_MIRROR, undefined);
      await waitForRouteNames(stack.envoy, stack.listener, 'api', ['api/stable']);
      expect(await clusterPorts(stack.envoy, 'api.shadow')).toBeUndefined();
      expect((await virtualHostRoutes(stack.envoy, stack.listener, 'api')).map((r) => r.route?.request_mirror_policies)).toEqual([undefined]);
      const gone = await get(200);
      expect(Object.fromEntries(gone.statuses)).toEqual({ 200: 200 });
      expect(Object.fromEntries(gone.backends)).toEqual({ stable: 200 });
      expect(gone.wrongBodies).toBe(0);
    });
  });

  it('two mirrors on one route each get their share: 10 % to shadow, 20 % to canary', async () => {
    // The rule first, the canary instance after it (see the note at the top).
    await stack.writeRules('api', TWO_MIRRORS);
    await registerService(stack.consul, { name: 'api', id: 'api-canary-1', port: b.canary.port, tags: ['canary'] });
    await waitForRouteNames(stack.envoy, stack.listener, 'api', ['api/stable+mirror:shadow-10+canary-20', 'api/stable']);
    await waitForClusterPorts(stack.envoy, SHADOW_MIRROR, [b.shadow.port]);
    await waitForClusterPorts(stack.envoy, 'api.canary.mirror-canary-20', [b.canary.port]);
    const primaryBefore = b.primary.requests.length;
    const shadow = await mirrorCopies(stack.envoy, SHADOW_MIRROR, b.shadow);
    const canary = await mirrorCopies(stack.envoy, 'api.canary.mirror-canary-20', b.canary);
    const total = 3_000;
    const result = await get(total);
    expect(Object.fromEntries(result.statuses)).toEqual({ 200: total });
    expect(Object.fromEntries(result.backends)).toEqual({ stable: total });
    expect(b.primary.requests.length - primaryBefore).toBe(total);

    const toShadow = await shadow.settled();
    const toCanary = await canary.settled();
    console.log(`two mirrors over ${total} GETs: shadow-10 got ${percent(toShadow, total)} %, canary-20 got ${percent(toCanary, total)} %`);
    // Each copy is marked with its own mirror's name.
    expect(shadow.received().every((r) => r.headers[MARKER] === 'shadow-10' && r.headers.host === 'api-shadow')).toBe(true);
    expect(canary.received().every((r) => r.headers[MARKER] === 'canary-20' && r.headers.host === 'api-shadow')).toBe(true);
    // 10 % ± 2 points (3.6 σ) and 20 % ± 3 points (4.1 σ).
    expect(percent(toShadow, total)).toBeGreaterThanOrEqual(8);
    expect(percent(toShadow, total)).toBeLessThanOrEqual(12);
    expect(percent(toCanary, total)).toBeGreaterThanOrEqual(17);
    expect(percent(toCanary, total)).toBeLessThanOrEqual(23);
  });

  it('a weighted split sends 5 % to the canary', async () => {
    await stack.writeRules('api', CANARY_5);
    await waitForRouteNames(stack.envoy, stack.listener, 'api', ['api/canary-5', 'api/stable']);
    const route = (await virtualHostRoutes(stack.envoy, stack.listener, 'api'))[0];
    expect(route?.route?.weighted_clusters?.clusters).toEqual([
      expect.objectContaining({ name: 'api.canary', weight: 5 }),
      expect.objectContaining({ name: 'api', weight: 95 }),
    ]);
    const total = 4_000;
    const result = await get(total);
    expect(Object.fromEntries(result.statuses)).toEqual({ 200: total });
    expect([...result.backends.keys()].sort()).toEqual(['canary', 'stable']);
    expect(result.wrongBodies).toBe(0);
    const toCanary = result.backends.get('canary') ?? 0;
    console.log(`weighted split canary-5: the canary answered ${toCanary} of ${total} = ${percent(toCanary, total)} %`);
    // 5 % ± 1.5 points; one standard deviation is 0.34 points here.
    expect(percent(toCanary, total)).toBeGreaterThanOrEqual(3.5);
    expect(percent(toCanary, total)).toBeLessThanOrEqual(6.5);
  });

  // A new cluster whose EDS resource (service_name) Envoy already holds must still be
  // sent its endpoints: Envoy's request for it names nothing new. Before that was done,
  // such a cluster warmed until Envoy's 15 s initial_fetch_timeout.
  it('a mirror added by a rule alone: Envoy has its cluster warm before the route that uses it', async () => {
    const policies = (routes: Awaited<ReturnType<typeof virtualHostRoutes>>) => routes.flatMap((r) => r.route?.request_mirror_policies ?? []);
    await stack.writeRules('api', CANARY_5_AND_SHADOW_10);
    // api.shadow is registered and on Envoy; the mirror's cluster api.shadow.mirror-shadow-10 is new.
    const rc = await waitForRouteConfig(
      stack.envoy,
      stack.listener,
      (c) => policies(c.virtual_hosts.find((vh) => vh.name === 'api')?.routes ?? []).length > 0,
      'the shadow-10 mirror',
      30_000,
    );
    expect(rc.virtual_hosts[0]?.routes.map((r) => r.name)).toContain('api/canary-5+mirror:shadow-10');
    const warming = ((await stack.envoy.configDump('resource=dynamic_warming_clusters')) as { configs?: { cluster: { name: string } }[] }).configs ?? [];
    expect(warming.map((c) => c.cluster.name)).toEqual([]);
  });
});
