// A real Envoy on an ADS stream to our server, SotW and delta: it receives listeners,
// routes, clusters and endpoints and serves traffic; adding and removing a cluster with
// a route to it under continuous traffic fails no request (make before break); a
// resource Envoy rejects is recorded as a NACK with Envoy's message while the previous
// configuration keeps serving.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { SnapshotCache, type Snapshot } from '../../src/xds/cache.js';
import { Resource } from '../../src/xds/resource.js';
import { TypeUrl } from '../../src/xds/resources.js';
import { XdsServer } from '../../src/xds/server.js';
import { continuousTraffic, request, startAdsEnvoy } from '../helpers/ads-envoy.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import type { Envoy } from '../helpers/envoy.js';
import { freePort } from '../helpers/ports.js';
import { showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { hasBinary } from '../helpers/tools.js';
import { waitFor } from '../helpers/wait.js';
import { cluster, endpoints, listener, recordingCallbacks, snapshot } from '../helpers/xds-fixtures.js';

/** Routes for host `api`: `/beta` to api.beta when `withBeta`, everything else to api. */
function apiRoutes(withBeta: boolean): Resource {
  const routes: unknown[] = [{ match: { prefix: '/' }, route: { cluster: 'api' } }];
  if (withBeta) routes.unshift({ match: { prefix: '/beta' }, route: { cluster: 'api.beta' } });
  return Resource.fromObject(TypeUrl.RouteConfiguration, {
    name: 'ingress',
    virtual_hosts: [{ name: 'api', domains: ['api'], routes }],
  });
}

describe.skipIf(!hasBinary('envoy'))('real Envoy over ADS', () => {
  describe.each(['GRPC', 'DELTA_GRPC'] as const)('%s', (apiType) => {
    const cache = new SnapshotCache();
    const callbacks = recordingCallbacks();
    let server: XdsServer;
    let envoy: Envoy;
    let stable: TestBackend;
    let beta: TestBackend;
    let listenerPort: number;

    const base = (): Resource[] => [listener('ingress', listenerPort, 'ingress'), cluster('api'), endpoints('api', [['127.0.0.1', stable.port]])];
    const withBeta = (): Snapshot => snapshot(base(), apiRoutes(true), cluster('api.beta'), endpoints('api.beta', [['127.0.0.1', beta.port]]));
    const withoutBeta = (): Snapshot => snapshot(base(), apiRoutes(false));

    // The route table in force is what matters; check it through the admin API.
    let lastRouteVersionSeen = '';
    function routesServing(s: Snapshot): boolean {
      const wanted = s.resources(TypeUrl.RouteConfiguration).get('ingress')!.version;
      return lastRouteVersionSeen === wanted;
    }
    async function refreshRouteVersion(): Promise<void> {
      const dump = (await envoy.configDump('resource=dynamic_route_configs')) as { configs?: { route_config?: unknown }[] };
      const route = dump.configs?.[0]?.route_config;
      lastRouteVersionSeen = route ? Resource.fromObject(TypeUrl.RouteConfiguration, stripType(route)).version : '';
    }

    beforeAll(async () => {
      stable = await startBackend('stable');
      beta = await startBackend('beta');
      listenerPort = await freePort();
      server = new XdsServer({ address: '127.0.0.1:0', watcher: cache, callbacks, logger: silentLogger(), groupOf: () => 'gateway', controlPlaneId: 'test' });
      const xdsPort = await server.start();
      cache.set('gateway', withoutBeta());
      envoy = await startAdsEnvoy({ xdsPort, listenerPort, apiType });
    });

    afterAll(async () => {
      await stopAllProcesses();
      await server?.stop();
      await stable?.close();
      await beta?.close();
    });

    beforeEach(() => showLogsOnFailure(envoy));

    it('receives listeners, routes, clusters and endpoints, and serves traffic with them', async () => {
      const dump = JSON.stringify(await envoy.configDump());
      expect(dump).toContain('"name":"ingress"');
      const clusters = await envoy.clusters();
      const api = clusters.find((c) => c.name === 'api');
      expect(api?.added_via_api).toBe(true);
      expect(JSON.stringify(api?.host_statuses)).toContain(String(stable.port));
      const r = await request(listenerPort, 'api', '/hello');
      expect(r).toMatchObject({ status: 200, backend: 'stable' });
    });

    it('adds and removes a cluster with a route to it 50 times under continuous traffic without a failed request', async () => {
      const traffic = continuousTraffic(listenerPort, 'api', '/beta/x');
      try {
        for (let i = 0; i < 50; i++) {
          for (const next of [withBeta(), withoutBeta()]) {
            cache.set('gateway', next);
            await waitFor(
              async () => {
                await refreshRouteVersion();
                const clusterNames = (await envoy.clusters()).map((c) => c.name);
                return routesServing(next) && clusterNames.includes('api.beta') === next.resources(TypeUrl.Cluster).has('api.beta');
              },
              { description: `round ${i}: Envoy to apply ${next.resources(TypeUrl.Cluster).has('api.beta') ? 'the beta route' : 'the removal'}`, timeoutMs: 15_000, intervalMs: 10 },
            );
          }
        }
      } finally {
        await traffic.stop();
      }
      expect(traffic.sent).toBeGreaterThan(100);
      expect(Object.fromEntries(traffic.statuses)).toEqual({ 200: traffic.sent });
      // Both routes really served: the beta one while present, the default one after.
      expect(traffic.backends.get('beta')).toBeGreaterThan(0);
      expect(traffic.backends.get('stable')).toBeGreaterThan(0);
      expect(callbacks.of('onNack')).toEqual([]);
    });

    it('records a rejected resource as a NACK with Envoy\'s message and keeps serving the previous configuration', async () => {
      cache.set('gateway', withoutBeta());
      await waitFor(async () => (await request(listenerPort, 'api', '/')).backend === 'stable', { description: 'stable serving' });
      const responsesBefore = callbacks.of('onResponse').length;
      // A cluster Envoy refuses: its protos require a positive connect_timeout.
      const bad = snapshot(
        listener('ingress', listenerPort, 'ingress'),
        apiRoutes(false),
        Resource.fromObject(TypeUrl.Cluster, { name: 'api', type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } }, connect_timeout: { seconds: -1 } }),
        endpoints('api', [['127.0.0.1', stable.port]]),
      );
      cache.set('gateway', bad);
      const nack = await waitFor(() => callbacks.of('onNack').find((n) => n.type_url === TypeUrl.Cluster), {
        description: 'a NACK for the bad cluster',
        timeoutMs: 15_000,
      });
      expect(nack.node_id).toBe('gateway-test');
      expect(nack.error_message).toMatch(/connect_timeout|Duration|value must be greater than/i);
      // The rejected version is not sent again, and traffic still flows on the old config.
      for (let i = 0; i < 20; i++) expect(await request(listenerPort, 'api', '/')).toMatchObject({ status: 200, backend: 'stable' });
      const cdsResponses = callbacks.of('onResponse').slice(responsesBefore).filter((r) => r.type_url === TypeUrl.Cluster);
      expect(cdsResponses).toHaveLength(1);
      // The next change is sent and applied.
      cache.set('gateway', withBeta());
      await waitFor(async () => (await request(listenerPort, 'api', '/beta')).backend === 'beta', { description: 'the next good snapshot to serve' });
    });
  });
});

function stripType(object: unknown): Record<string, unknown> {
  const { ['@type']: _t, ...rest } = object as Record<string, unknown>;
  return rest;
}
