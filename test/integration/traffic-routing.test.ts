// Routing by Consul tags and header rules, end to end: a real Consul catalog, the real
// `shadowplane serve` with a rules folder, a real edge Envoy and HTTP backends that say
// who answered. CI marks instances only by a tag; the test measures how long a tag
// written to Consul takes to reach traffic (logged; the 1 s target is a benchmark's).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerService } from '../helpers/consul.js';
import { showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { hasBinary } from '../helpers/tools.js';
import {
  backendsFor,
  clusterPorts,
  msUntilRouted,
  startScriptedBackend,
  startTrafficStack,
  virtualHostRoutes,
  waitForClusterPorts,
  waitForRouteNames,
  type ScriptedBackend,
  type TrafficStack,
} from '../helpers/traffic.js';

const RULES = `services:
  api:
    routes:
      - name: beta-users
        match: { headers: [{ name: x-beta, exact: "true" }] }
        to: beta
      - name: version-2
        match: { headers: [{ name: x-client-version, regex: "2\\\\.[0-9]+\\\\.[0-9]+" }] }
        to: canary
      - name: debug
        match: { headers: [{ name: x-debug, present: true }] }
        to: debug
      - name: not-mobile
        match:
          path_prefix: /app/
          headers: [{ name: x-platform, exact: mobile, invert: true }]
        to: desktop
`;

const ALL_ROUTES = ['api/beta-users', 'api/version-2', 'api/debug', 'api/not-mobile', 'api/stable'];

describe.skipIf(!hasBinary('envoy') || !hasBinary('consul'))('traffic: tag subsets and header routes', () => {
  let stack: TrafficStack;
  const backends: Record<'stable' | 'beta' | 'canary' | 'debug' | 'desktop', ScriptedBackend> = {} as never;
  const betaInstance = (tags: string[]) => ({ name: 'api', id: 'api-beta-1', port: backends.beta.port, tags });
  const send = (headers: Record<string, string> = {}, path = '/') => backendsFor(stack.port, 'api', headers, { path });

  beforeAll(async () => {
    for (const name of ['stable', 'beta', 'canary', 'debug', 'desktop'] as const) backends[name] = await startScriptedBackend(name);
    stack = await startTrafficStack({
      rules: { api: RULES },
      instances: [
        { name: 'api', id: 'api-stable-1', port: backends.stable.port },
        // Not tagged yet: CI tags it in the first test.
        betaInstance([]),
        { name: 'api', id: 'api-canary-1', port: backends.canary.port, tags: ['canary'] },
        { name: 'api', id: 'api-debug-1', port: backends.debug.port, tags: ['debug'] },
        { name: 'api', id: 'api-desktop-1', port: backends.desktop.port, tags: ['desktop'] },
      ],
      services: ['api'],
    });
  });
  afterAll(async () => {
    await stopAllProcesses();
    await Promise.all(Object.values(backends).map((b) => b.close()));
    await stack?.cleanup();
  });
  beforeEach(() => showLogsOnFailure(stack.serve.process, stack.envoy, stack.consul));

  it('forms cluster api.beta from instances tagged beta in Consul, and moves them back when the tag goes', async () => {
    const { envoy, port, listener } = stack;
    // Untagged, the future beta instance is one of the stable ones; the beta route waits for an instance.
    await waitForRouteNames(envoy, listener, 'api', ALL_ROUTES.filter((r) => r !== 'api/beta-users'));
    expect(await clusterPorts(envoy, 'api')).toEqual([backends.stable.port, backends.beta.port].sort((a, b) => a - b));
    expect(await clusterPorts(envoy, 'api.beta')).toBeUndefined();

    // CI tags the instance: the Consul write alone makes beta users reach it.
    const tagged = Date.now();
    await registerService(stack.consul, betaInstance(['beta']));
    const tagMs = await msUntilRouted(port, 'api', { 'x-beta': 'true' }, (b) => b === 'beta', tagged, 'x-beta requests to reach the beta instance');
    console.log(`tag "beta" written to Consul → Envoy routes x-beta requests by it: ${tagMs} ms`);
    await waitForClusterPorts(envoy, 'api.beta', [backends.beta.port]);
    await waitForClusterPorts(envoy, 'api', [backends.stable.port]);
    expect(await send({ 'x-beta': 'true' })).toEqual({ beta: 20 });
    expect(await send()).toEqual({ stable: 20 });
    expect((await virtualHostRoutes(envoy, listener, 'api')).find((r) => r.name === 'api/beta-users')?.route?.cluster).toBe('api.beta');

    // Re-registered without the tag (same id): it serves stable traffic again, and api.beta goes.
    const untagged = Date.now();
    await registerService(stack.consul, betaInstance([]));
    const untagMs = await msUntilRouted(port, 'api', {}, (b) => b === 'beta', untagged, 'requests without x-beta to reach the untagged instance');
    console.log(`tag "beta" removed in Consul → Envoy routes by it: ${untagMs} ms`);
    await waitForClusterPorts(envoy, 'api', [backends.stable.port, backends.beta.port]);
    await waitForClusterPorts(envoy, 'api.beta', undefined);
    await waitForRouteNames(envoy, listener, 'api', ALL_ROUTES.filter((r) => r !== 'api/beta-users'));
    // Both instances are stable now, whatever the header says.
    expect(Object.keys(await send())).toEqual(['beta', 'stable']);
    expect(Object.keys(await send({ 'x-beta': 'true' }))).toEqual(['beta', 'stable']);
  });

  describe('header routes', () => {
    beforeAll(async () => {
      await registerService(stack.consul, betaInstance(['beta']));
      await waitForClusterPorts(stack.envoy, 'api.beta', [backends.beta.port]);
      await waitForClusterPorts(stack.envoy, 'api', [backends.stable.port]);
      await waitForRouteNames(stack.envoy, stack.listener, 'api', ALL_ROUTES);
    });

    it('sends x-beta: true to beta and everything else to stable (exact match)', async () => {
      expect(await send({ 'x-beta': 'true' })).toEqual({ beta: 20 });
      expect(await send()).toEqual({ stable: 20 });
      expect(await send({ 'x-beta': 'false' })).toEqual({ stable: 20 });
      // Exact is exact: case and extra characters count.
      expect(await send({ 'x-beta': 'TRUE' })).toEqual({ stable: 20 });
      expect(await send({ 'x-beta': 'true1' })).toEqual({ stable: 20 });
      // Routes are tried in order: the first that holds decides.
      expect(await send({ 'x-beta': 'true', 'x-client-version': '2.1.0', 'x-debug': '1' })).toEqual({ beta: 20 });
    });

    it('matches a regex against the whole header value', async () => {
      expect(await send({ 'x-client-version': '2.1.0' })).toEqual({ canary: 20 });
      expect(await send({ 'x-client-version': '2.10.33' })).toEqual({ canary: 20 });
      // The regex must match all of the value, not a part of it.
      expect(await send({ 'x-client-version': '2.1.0-rc1' })).toEqual({ stable: 20 });
      expect(await send({ 'x-client-version': 'v2.1.0' })).toEqual({ stable: 20 });
      expect(await send({ 'x-client-version': '1.9.0' })).toEqual({ stable: 20 });
      expect(await send({ 'x-client-version': '2.x.0' })).toEqual({ stable: 20 });
    });

    it('matches a header by its presence, whatever its value', async () => {
      expect(await send({ 'x-debug': '1' })).toEqual({ debug: 20 });
      expect(await send({ 'x-debug': 'anything at all' })).toEqual({ debug: 20 });
      expect(await send({ 'x-debugging': '1' })).toEqual({ stable: 20 });
      expect(await send()).toEqual({ stable: 20 });
    });

    it('inverts a match: x-platform other than mobile, under /app/', async () => {
      expect(await send({ 'x-platform': 'desktop' }, '/app/home')).toEqual({ desktop: 20 });
      expect(await send({ 'x-platform': 'web' }, '/app/home')).toEqual({ desktop: 20 });
      expect(await send({ 'x-platform': 'mobile' }, '/app/home')).toEqual({ stable: 20 });
      // Invert negates the comparison of a value; a request without the header does not
      // match at all (in Envoy a string match on a missing header fails, inverted or not).
      expect(await send({}, '/app/home')).toEqual({ stable: 20 });
      // The route's path prefix still applies.
      expect(await send({ 'x-platform': 'desktop' }, '/other')).toEqual({ stable: 20 });
    });
  });
});
