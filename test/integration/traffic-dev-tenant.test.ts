// Dev routes and tenant routes, end to end: a real Consul catalog, the real
// `shadowplane serve` with a rules folder, a real edge Envoy and backends that say who
// answered. A dev route sends requests carrying a routing key to one developer's
// instance until it expires, and then ends by itself; a tenant header picks a tenant's
// own deployment.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { hasBinary } from '../helpers/tools.js';
import {
  backendsFor,
  msUntilRouted,
  startScriptedBackend,
  startTrafficStack,
  virtualHostRoutes,
  waitForRouteNames,
  type ScriptedBackend,
  type TrafficStack,
} from '../helpers/traffic.js';

const TENANTS = `    tenant_routes:
      - { tenant: acme, to: tenant-acme }
      - { tenant: globex, to: tenant-globex }
`;
const TENANT_RULES = `services:\n  api:\n${TENANTS}`;
const TENANT_ROUTES = ['api/tenant-acme', 'api/tenant-globex', 'api/stable'];

/** A dev route to laptop-1 until `expires`, beside the tenant routes. */
const devRules = (expires: string): string => `services:
  api:
    dev_routes:
      - key: laptop-1
        to: dev-laptop-1
        owner: alice@example.com
        expires: ${expires}
${TENANTS}`;

/** ISO-8601 with whole seconds, as docs/rules.md asks: the next whole second at least `ms` ahead. */
function secondsAhead(ms: number): { iso: string; at: number } {
  const at = Math.ceil((Date.now() + ms) / 1_000) * 1_000;
  return { iso: new Date(at).toISOString().replace(/\.000Z$/, 'Z'), at };
}

// Long enough to show the route working first on a slow machine; the test waits it out.
const DEV_ROUTE_LIFETIME_MS = 8_000;

describe.skipIf(!hasBinary('envoy') || !hasBinary('consul'))('traffic: dev routes and tenant routes', () => {
  let stack: TrafficStack;
  const backends: Record<'stable' | 'dev' | 'acme' | 'globex', ScriptedBackend> = {} as never;
  const send = (headers: Record<string, string> = {}) => backendsFor(stack.port, 'api', headers);

  beforeAll(async () => {
    backends.stable = await startScriptedBackend('stable');
    backends.dev = await startScriptedBackend('dev-laptop-1');
    backends.acme = await startScriptedBackend('tenant-acme');
    backends.globex = await startScriptedBackend('tenant-globex');
    stack = await startTrafficStack({
      rules: { api: TENANT_RULES },
      instances: [
        { name: 'api', id: 'api-stable-1', port: backends.stable.port },
        // The developer's instance: a process on this machine, registered with its tag.
        { name: 'api', id: 'api-dev-laptop-1', port: backends.dev.port, tags: ['dev-laptop-1'] },
        { name: 'api', id: 'api-acme-1', port: backends.acme.port, tags: ['tenant-acme'] },
        { name: 'api', id: 'api-globex-1', port: backends.globex.port, tags: ['tenant-globex'] },
      ],
      services: ['api'],
    });
    await waitForRouteNames(stack.envoy, stack.listener, 'api', TENANT_ROUTES);
  });
  afterAll(async () => {
    await stopAllProcesses();
    await Promise.all(Object.values(backends).map((b) => b.close()));
    await stack?.cleanup();
  });
  beforeEach(() => showLogsOnFailure(stack.serve.process, stack.envoy, stack.consul));

  it('sends each tenant to its own subset and unknown tenants to stable', async () => {
    expect(await send({ 'x-tenant': 'acme' })).toEqual({ 'tenant-acme': 20 });
    expect(await send({ 'x-tenant': 'globex' })).toEqual({ 'tenant-globex': 20 });
    expect(await send({ 'x-tenant': 'initech' })).toEqual({ stable: 20 });
    // Tenant names match exactly.
    expect(await send({ 'x-tenant': 'ACME' })).toEqual({ stable: 20 });
    expect(await send({ 'x-tenant': 'acme-2' })).toEqual({ stable: 20 });
    expect(await send()).toEqual({ stable: 20 });
    const routes = await virtualHostRoutes(stack.envoy, stack.listener, 'api');
    expect(routes.map((r) => [r.name, r.route?.cluster])).toEqual([
      ['api/tenant-acme', 'api.tenant-acme'],
      ['api/tenant-globex', 'api.tenant-globex'],
      ['api/stable', 'api'],
    ]);
  });

  it('sends x-dev-route: laptop-1 to the developer instance until the route expires, then to stable by itself', async () => {
    const expires = secondsAhead(DEV_ROUTE_LIFETIME_MS);
    const written = Date.now();
    await stack.writeRules('api', devRules(expires.iso));
    const devHeader = { 'x-dev-route': 'laptop-1' };
    const toDevMs = await msUntilRouted(stack.port, 'api', devHeader, (b) => b === 'dev-laptop-1', written, 'requests with x-dev-route: laptop-1 to reach the dev instance');
    console.log(`dev route written (expires ${expires.iso}) → Envoy routes by it: ${toDevMs} ms`);

    expect(await send(devHeader)).toEqual({ 'dev-laptop-1': 20 });
    // Other keys, and requests without one, are not the developer's.
    expect(await send({ 'x-dev-route': 'laptop-2' })).toEqual({ stable: 20 });
    expect(await send()).toEqual({ stable: 20 });
    // A dev route comes before a tenant route.
    expect(await send({ ...devHeader, 'x-tenant': 'acme' })).toEqual({ 'dev-laptop-1': 20 });
    const routes = await virtualHostRoutes(stack.envoy, stack.listener, 'api');
    expect(routes.map((r) => [r.name, r.route?.cluster])).toEqual([
      ['api/dev-laptop-1', 'api.dev-laptop-1'],
      ['api/tenant-acme', 'api.tenant-acme'],
      ['api/tenant-globex', 'api.tenant-globex'],
      ['api/stable', 'api'],
    ]);
    // Everything above happened before the expiry, so it showed the live route.
    expect(Date.now()).toBeLessThan(expires.at);

    // No one touches the rules: at the expiry the route ends and the same request reaches stable.
    const toStableMs = await msUntilRouted(
      stack.port,
      'api',
      devHeader,
      (b) => b === 'stable',
      expires.at,
      'requests with x-dev-route: laptop-1 to reach stable after the expiry',
      DEV_ROUTE_LIFETIME_MS + 15_000,
    );
    console.log(`dev route expired at ${expires.iso} → Envoy routes x-dev-route: laptop-1 to stable ${toStableMs} ms later`);
    // Not a moment before the expiry.
    expect(toStableMs).toBeGreaterThanOrEqual(0);
    await waitForRouteNames(stack.envoy, stack.listener, 'api', TENANT_ROUTES);
    expect(await send(devHeader)).toEqual({ stable: 20 });
    // The rest of the rules stay in force.
    expect(await send({ 'x-tenant': 'acme' })).toEqual({ 'tenant-acme': 20 });
    expect(await send({ ...devHeader, 'x-tenant': 'globex' })).toEqual({ 'tenant-globex': 20 });
  });
});
