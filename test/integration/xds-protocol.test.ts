// The xDS protocol over the wire: a real XdsServer on a free port, a raw gRPC client
// that sends exactly what a test says, and CSDS asked over gRPC what each node holds.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { SnapshotCache, type Snapshot } from '../../src/xds/cache.js';
import { noopCallbacks, type XdsCallbacks } from '../../src/xds/callbacks.js';
import type { ResourceObject } from '../../src/xds/resources.js';
import { XdsServer } from '../../src/xds/server.js';
import { silentLogger } from '../../src/log.js';
import { AdsClient, fetchClientStatus, type AdsKind } from '../helpers/ads-client.js';
import { waitFor } from '../helpers/wait.js';
import { TypeUrl, ingressSnapshot, listener, recordingCallbacks, routes, service, snapshot } from '../helpers/xds-fixtures.js';

const { Listener: LDS, RouteConfiguration: RDS, Cluster: CDS, ClusterLoadAssignment: EDS } = TypeUrl;
const GROUP = 'g';
const NODE = { id: 'envoy-1', cluster: 'ingress', user_agent_name: 'envoy' };

/** The initial subscriptions of an Envoy with one ingress listener, in the order it makes them. */
const SUBSCRIPTIONS: [string, string[]][] = [
  [CDS, []],
  [EDS, ['api.beta']],
  [LDS, []],
  [RDS, ['ingress']],
];

let servers: XdsServer[] = [];
let clients: AdsClient[] = [];

afterEach(async () => {
  for (const c of clients) c.close();
  clients = [];
  await Promise.all(servers.map((s) => s.stop(500)));
  servers = [];
});

function cacheWith(s: Snapshot): SnapshotCache {
  const cache = new SnapshotCache();
  cache.set(GROUP, s);
  return cache;
}

async function startServer(cache: SnapshotCache, { callbacks = noopCallbacks, port = 0 }: { callbacks?: XdsCallbacks; port?: number } = {}): Promise<XdsServer> {
  const server = new XdsServer({
    address: `127.0.0.1:${port}`,
    watcher: cache,
    callbacks,
    logger: silentLogger(),
    groupOf: () => GROUP,
    controlPlaneId: 'shadowplane-test',
  });
  servers.push(server);
  await server.start();
  return server;
}

async function stopServer(server: XdsServer): Promise<void> {
  servers = servers.filter((s) => s !== server);
  await server.stop(500);
}

function connect(server: XdsServer, kind: AdsKind): AdsClient {
  const client = new AdsClient(server.port, kind);
  clients.push(client);
  return client;
}


// --- SotW -------------------------------------------------------------------------

function sotwAck(client: AdsClient, reply: ResourceObject, resourceNames: string[] = []): void {
  client.send({ type_url: reply.type_url, resource_names: resourceNames, version_info: reply.version_info, response_nonce: reply.nonce });
}

/** Subscribes like Envoy (node on the first request only), ACKing each response; the responses by type. */
async function sotwStart(client: AdsClient): Promise<Map<string, ResourceObject>> {
  const got = new Map<string, ResourceObject>();
  for (const [typeUrl, names] of SUBSCRIPTIONS) {
    client.send({ ...(got.size === 0 ? { node: NODE } : {}), type_url: typeUrl, resource_names: names });
    const reply = await client.next();
    expect(reply.type_url).toBe(typeUrl);
    sotwAck(client, reply, names);
    got.set(typeUrl, reply);
  }
  return got;
}

describe('SotW ADS over gRPC', () => {
  it('ends a stream whose first request has no node with INVALID_ARGUMENT, sending nothing', async () => {
    const client = connect(await startServer(cacheWith(ingressSnapshot())), 'sotw');
    client.send({ type_url: CDS });
    const status = await client.status();
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toMatch(/node\.id/);
    await expect(client.next(100)).rejects.toThrow(/ended/);
  });

  it('ends a stream whose node.id changes', async () => {
    const client = connect(await startServer(cacheWith(ingressSnapshot())), 'sotw');
    await sotwStart(client);
    client.send({ node: { id: 'envoy-2' }, type_url: CDS });
    expect((await client.status()).code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('does not answer ACKs', async () => {
    const client = connect(await startServer(cacheWith(ingressSnapshot())), 'sotw');
    const got = await sotwStart(client);
    expect(got.get(CDS)!.control_plane).toEqual({ identifier: 'shadowplane-test' });
    await client.expectSilence();
  });

  it('sends a new cluster, then its endpoints, and only then the route to it', async () => {
    const cache = cacheWith(ingressSnapshot());
    const client = connect(await startServer(cache), 'sotw');
    const got = await sotwStart(client);
    cache.set(GROUP, snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta', web: 'web' }), service('api.beta', 9001), service('web', 9002)));
    const cds = await client.next();
    expect(cds.type_url).toBe(CDS);
    sotwAck(client, cds);
    client.send({ type_url: EDS, resource_names: ['api.beta', 'web'], version_info: got.get(EDS)!.version_info, response_nonce: got.get(EDS)!.nonce });
    const eds = await client.next();
    expect(eds.type_url).toBe(EDS);
    sotwAck(client, eds, ['api.beta', 'web']);
    const rds = await client.next();
    expect(rds.type_url).toBe(RDS);
  });

  it('records a NACK and does not send the rejected version again', async () => {
    const callbacks = recordingCallbacks();
    const cache = cacheWith(ingressSnapshot());
    const client = connect(await startServer(cache, { callbacks }), 'sotw');
    const got = await sotwStart(client);
    cache.set(GROUP, ingressSnapshot({ connectTimeoutSeconds: 2 }));
    const cds = await client.next();
    const eds = await client.next();
    expect([cds.type_url, eds.type_url]).toEqual([CDS, EDS]);
    client.send({
      type_url: CDS,
      version_info: got.get(CDS)!.version_info,
      response_nonce: cds.nonce,
      error_detail: { code: grpc.status.INVALID_ARGUMENT, message: 'bad cluster' },
    });
    sotwAck(client, eds, ['api.beta']);
    await client.expectSilence();
    expect(callbacks.of('onNack')).toEqual([
      expect.objectContaining({ node_id: 'envoy-1', type_url: CDS, version: cds.version_info, nonce: cds.nonce, error_message: 'bad cluster' }),
    ]);

    cache.set(GROUP, ingressSnapshot({ connectTimeoutSeconds: 3 }));
    const next = await client.next();
    expect(next.type_url).toBe(CDS);
    expect(next.version_info).not.toBe(cds.version_info);
  });

  it('after a server restart, serves the same versions and resends nothing to a client that has them', async () => {
    const first = await startServer(cacheWith(ingressSnapshot()));
    const port = first.port;
    const before = connect(first, 'sotw');
    const got = await sotwStart(before);
    before.close();
    await stopServer(first);

    const second = await startServer(cacheWith(ingressSnapshot()), { port });
    const reconnected = connect(second, 'sotw');
    SUBSCRIPTIONS.forEach(([typeUrl, names], i) => {
      reconnected.send({ ...(i === 0 ? { node: NODE } : {}), type_url: typeUrl, resource_names: names, version_info: got.get(typeUrl)!.version_info });
    });
    await reconnected.expectSilence();

    const fresh = connect(second, 'sotw');
    const again = await sotwStart(fresh);
    for (const [typeUrl] of SUBSCRIPTIONS) expect(again.get(typeUrl)!.version_info).toBe(got.get(typeUrl)!.version_info);
  });
});

// --- delta ------------------------------------------------------------------------

function deltaAck(client: AdsClient, reply: ResourceObject): void {
  client.send({ type_url: reply.type_url, response_nonce: reply.nonce });
}

const versionsIn = (reply: ResourceObject): Record<string, string> =>
  Object.fromEntries(((reply.resources as { name: string; version: string }[] | undefined) ?? []).map((r) => [r.name, r.version]));

async function deltaStart(client: AdsClient): Promise<Map<string, ResourceObject>> {
  const got = new Map<string, ResourceObject>();
  for (const [typeUrl, names] of SUBSCRIPTIONS) {
    client.send({ ...(got.size === 0 ? { node: NODE } : {}), type_url: typeUrl, resource_names_subscribe: names });
    const reply = await client.next();
    expect(reply.type_url).toBe(typeUrl);
    deltaAck(client, reply);
    got.set(typeUrl, reply);
  }
  return got;
}

describe('delta ADS over gRPC', () => {
  it('ends a stream whose first request has no node with INVALID_ARGUMENT, sending nothing', async () => {
    const client = connect(await startServer(cacheWith(ingressSnapshot())), 'delta');
    client.send({ type_url: CDS });
    expect((await client.status()).code).toBe(grpc.status.INVALID_ARGUMENT);
    await expect(client.next(100)).rejects.toThrow(/ended/);
  });

  it('does not answer ACKs', async () => {
    const client = connect(await startServer(cacheWith(ingressSnapshot())), 'delta');
    const got = await deltaStart(client);
    expect(versionsIn(got.get(CDS)!)).toEqual({ 'api.beta': expect.any(String) });
    await client.expectSilence();
  });

  it('records a NACK and does not send the rejected version again', async () => {
    const callbacks = recordingCallbacks();
    const cache = cacheWith(ingressSnapshot());
    const client = connect(await startServer(cache, { callbacks }), 'delta');
    await deltaStart(client);
    cache.set(GROUP, ingressSnapshot({ connectTimeoutSeconds: 2 }));
    const cds = await client.next();
    const eds = await client.next();
    expect([cds.type_url, eds.type_url]).toEqual([CDS, EDS]);
    client.send({ type_url: CDS, response_nonce: cds.nonce, error_detail: { code: grpc.status.INVALID_ARGUMENT, message: 'bad cluster' } });
    deltaAck(client, eds);
    await client.expectSilence();
    expect(callbacks.of('onNack')).toEqual([
      expect.objectContaining({ node_id: 'envoy-1', type_url: CDS, version: cds.system_version_info, nonce: cds.nonce, error_message: 'bad cluster' }),
    ]);

    cache.set(GROUP, ingressSnapshot({ connectTimeoutSeconds: 3 }));
    const next = await client.next();
    expect(next.type_url).toBe(CDS);
    expect(versionsIn(next)['api.beta']).not.toBe(versionsIn(cds)['api.beta']);
  });

  it('after a server restart, resends nothing to a client whose initial_resource_versions are current', async () => {
    const first = await startServer(cacheWith(ingressSnapshot()));
    const port = first.port;
    const before = connect(first, 'delta');
    const got = await deltaStart(before);
    before.close();
    await stopServer(first);

    const cache = cacheWith(ingressSnapshot());
    const second = await startServer(cache, { port });
    const reconnected = connect(second, 'delta');
    SUBSCRIPTIONS.forEach(([typeUrl, names], i) => {
      reconnected.send({
        ...(i === 0 ? { node: NODE } : {}),
        type_url: typeUrl,
        resource_names_subscribe: names,
        initial_resource_versions: versionsIn(got.get(typeUrl)!),
      });
    });
    await reconnected.expectSilence();

    cache.set(GROUP, ingressSnapshot({ apiPort: 9009 }));
    const eds = await reconnected.next();
    expect(eds.type_url).toBe(EDS);
    expect(Object.keys(versionsIn(eds))).toEqual(['api.beta']);
  });
});

// --- CSDS -------------------------------------------------------------------------

describe('CSDS over gRPC', () => {
  it('reports per node what was sent, ACKed and NACKed', async () => {
    const cache = cacheWith(ingressSnapshot());
    const server = await startServer(cache);
    const sotw = connect(server, 'sotw');
    const got = await sotwStart(sotw);
    const delta = connect(server, 'delta');
    delta.send({ node: { id: 'envoy-2', cluster: 'ingress' }, type_url: CDS });
    deltaAck(delta, await delta.next());

    cache.set(GROUP, ingressSnapshot({ connectTimeoutSeconds: 2 }));
    const cds = await sotw.next();
    const eds = await sotw.next();
    sotw.send({ type_url: CDS, version_info: got.get(CDS)!.version_info, response_nonce: cds.nonce, error_detail: { code: 3, message: 'bad cluster' } });
    sotwAck(sotw, eds, ['api.beta']);
    deltaAck(delta, await delta.next());

    type Config = { node: { id: string }; generic_xds_configs: ResourceObject[] };
    const entryIn = (config: Config, typeUrl: string, name: string): ResourceObject | undefined =>
      config.generic_xds_configs.find((g) => g.type_url === typeUrl && g.name === name);
    // The ACKs and NACK travel on the ADS connection, the question on another: wait until they have landed.
    const configs = await waitFor(
      async () => {
        const one = (await fetchClientStatus(server.port, { node_matchers: [{ node_id: { exact: 'envoy-1' } }] })).config as Config[];
        return entryIn(one[0]!, CDS, 'api.beta')?.client_status === 'NACKED' && entryIn(one[0]!, EDS, 'api.beta')?.client_status === 'ACKED' ? one : undefined;
      },
      { description: 'CSDS to show the NACK of envoy-1', timeoutMs: 5_000, intervalMs: 20 },
    );
    expect(configs.map((c) => c.node.id)).toEqual(['envoy-1']);
    const entry = (typeUrl: string, name: string): ResourceObject | undefined => entryIn(configs[0]!, typeUrl, name);
    expect(entry(CDS, 'api.beta')).toMatchObject({ client_status: 'NACKED', config_status: 'ERROR', error_state: { details: 'bad cluster' } });
    expect(entry(EDS, 'api.beta')).toMatchObject({ client_status: 'ACKED', config_status: 'SYNCED' });
    expect(entry(LDS, 'ingress')).toMatchObject({ client_status: 'ACKED', xds_config: { '@type': LDS, name: 'ingress' } });
    expect(entry(RDS, 'ingress')).toMatchObject({ client_status: 'ACKED', version_info: cache.get(GROUP)!.resources(RDS).get('ingress')!.version });

    const all = await fetchClientStatus(server.port, { exclude_resource_contents: true });
    const byNode = Object.fromEntries((all.config as { node: { id: string }; generic_xds_configs: ResourceObject[] }[]).map((c) => [c.node.id, c.generic_xds_configs]));
    expect(Object.keys(byNode).sort()).toEqual(['envoy-1', 'envoy-2']);
    expect(byNode['envoy-2']).toEqual([
      expect.objectContaining({ type_url: CDS, name: 'api.beta', client_status: 'ACKED', version_info: cache.get(GROUP)!.resources(CDS).get('api.beta')!.version }),
    ]);
    expect(byNode['envoy-2']![0]!.xds_config).toBeUndefined();
  });
});
