// @grpc/grpc-js-xds as a second, independent xDS client. A proxyless gRPC channel on
// `xds:///echo` takes its listener, routes, clusters and endpoints from our server over
// ADS and validates each one (gRFC A27/A28): a resource it cannot use is NACKed. Real
// calls then go to real gRPC backends, routed by request metadata through the routes
// we sent, and follow the snapshot when it changes.
//
// grpc-js-xds reads its bootstrap once per process and keeps one xDS client for every
// xds: channel, so one xDS server and one channel serve the whole file; each test starts
// from the baseline snapshot, acknowledged by the client.
import type * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SnapshotCache, type Snapshot } from '../../src/xds/cache.js';
import type { XdsCallbacks } from '../../src/xds/callbacks.js';
import type { Resource } from '../../src/xds/resource.js';
import { TypeUrl } from '../../src/xds/resources.js';
import { XdsServer } from '../../src/xds/server.js';
import { silentLogger } from '../../src/log.js';
import { echoClient, say, sayTimes, startGrpcBackend, type GrpcBackend } from '../helpers/grpc-backend.js';
import { apiListener, defaultRoute, grpcBootstrap, grpcRoutes, grpcService, headerRoute } from '../helpers/grpc-xds-snapshot.js';
import { cluster, endpoints, recordingCallbacks, snapshot } from '../helpers/xds-fixtures.js';
import { waitFor } from '../helpers/wait.js';

const GROUP = 'grpc';
/** The channel target; gRPC asks for the listener named after it. */
const TARGET = 'xds:///echo';
const BETA = { 'x-beta': 'true' };

/** Listener `echo` → routes `echo`: `x-beta: true` → `echo.beta`, the rest → `defaultCluster`. */
function echoFront(defaultCluster = 'echo'): Resource[] {
  return [apiListener('echo', 'echo'), grpcRoutes('echo', 'echo', [headerRoute('x-beta', 'true', 'echo.beta'), defaultRoute(defaultCluster)])];
}

interface EchoConfig {
  stable: readonly number[];
  beta: readonly number[];
  /** Where calls without `x-beta: true` go. */
  defaultCluster?: string;
}

/** The front, and the clusters `echo` and `echo.beta` with their backends' ports. */
function echoSnapshot({ stable, beta, defaultCluster }: EchoConfig): Snapshot {
  return snapshot(echoFront(defaultCluster), grpcService('echo', stable), grpcService('echo.beta', beta));
}

const times = (count: number, name: string): string[] => Array.from({ length: count }, () => name);

describe('grpc-js-xds client against the xDS server', () => {
  const cache = new SnapshotCache();
  const callbacks = recordingCallbacks();
  const saved = { file: process.env.GRPC_XDS_BOOTSTRAP, config: process.env.GRPC_XDS_BOOTSTRAP_CONFIG };
  const clients: grpc.Client[] = [];
  let server: XdsServer | undefined;
  let stable: GrpcBackend;
  let beta: GrpcBackend;
  let stable2: GrpcBackend;
  let client: grpc.Client;
  /** Where this test's callback events start. */
  let mark = 0;

  const baseline = (): Snapshot => echoSnapshot({ stable: [stable.port], beta: [beta.port] });

  /** The events of one hook recorded since `since` (by default, since this test began). */
  const eventsOf = <K extends keyof XdsCallbacks>(hook: K, since = mark): Parameters<XdsCallbacks[K]>[0][] =>
    callbacks.events
      .slice(since)
      .filter((e) => e.hook === hook)
      .map((e) => e.event as Parameters<XdsCallbacks[K]>[0]);

  /**
   * Waits until the client's latest ACK of every type is `published`'s version of it.
   * Holds while the client subscribes to every resource of the snapshot (the SotW
   * version of a named subscription hashes the resources sent).
   */
  async function waitForAcked(published: Snapshot): Promise<void> {
    await waitFor(
      () =>
        Object.values(TypeUrl).every((typeUrl) => {
          const acks = callbacks.of('onAck').filter((e) => e.type_url === typeUrl);
          return acks.at(-1)?.version === published.version(typeUrl);
        }),
      { description: 'the client to acknowledge the published snapshot' },
    );
  }

  function connect(): grpc.Client {
    const created = echoClient(TARGET);
    clients.push(created);
    return created;
  }

  beforeAll(async () => {
    [stable, beta, stable2] = await Promise.all([startGrpcBackend('stable'), startGrpcBackend('beta'), startGrpcBackend('stable-2')]);
    server = new XdsServer({
      address: '127.0.0.1:0',
      watcher: cache,
      callbacks,
      logger: silentLogger(),
      groupOf: () => GROUP,
      controlPlaneId: 'shadowplane-grpc-xds-test',
    });
    const port = await server.start();
    cache.set(GROUP, baseline());
    // Read when the first xds: channel resolves; the file variable would win over it.
    delete process.env.GRPC_XDS_BOOTSTRAP;
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = grpcBootstrap(`127.0.0.1:${port}`, { id: 'grpc-xds-test', cluster: 'echo-client' });
    xds.register();
    client = connect();
    // Leave IDLE now: resolution (the ADS stream) starts without waiting for a call.
    client.getChannel().getConnectivityState(true);
  });

  beforeEach(async () => {
    cache.set(GROUP, baseline());
    await waitForAcked(baseline());
    mark = callbacks.events.length;
  });

  afterAll(async () => {
    // Closing the channels cancels grpc-js-xds's watches, which ends its ADS stream;
    // with a watch left, it would keep reconnecting (and the worker alive) once the
    // server is gone.
    for (const c of clients.splice(0)) c.close();
    // grpc-js-xds never closes its own channel to the xDS server, so a graceful stop
    // would only wait out the grace period.
    await server?.stop(100);
    await Promise.all([stable, beta, stable2].map((b) => b?.close()));
    for (const [key, value] of [['GRPC_XDS_BOOTSTRAP', saved.file], ['GRPC_XDS_BOOTSTRAP_CONFIG', saved.config]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('routes calls by the x-beta header through the routes the server sent', async () => {
    expect(await sayTimes(client, 5)).toEqual(times(5, 'stable'));
    expect(await sayTimes(client, 5, { headers: BETA })).toEqual(times(5, 'beta'));
    expect(await sayTimes(client, 3, { headers: { 'x-beta': 'false' } })).toEqual(times(3, 'stable'));
    expect(beta.calls.length).toBeGreaterThanOrEqual(5);
    expect(beta.calls.every((metadata) => metadata.get('x-beta')[0] === 'true')).toBe(true);

    // grpc-js-xds speaks state-of-the-world ADS, and took every resource type.
    expect(new Set(callbacks.of('onStreamOpen').map((s) => s.kind))).toEqual(new Set(['sotw']));
    expect(new Set(callbacks.of('onAck').map((e) => e.type_url))).toEqual(new Set(Object.values(TypeUrl)));
    expect(callbacks.of('onNack')).toEqual([]);
  });

  it('follows new endpoints of a cluster (EDS update)', async () => {
    expect(await sayTimes(client, 3)).toEqual(times(3, 'stable'));

    cache.set(GROUP, echoSnapshot({ stable: [stable.port, stable2.port], beta: [beta.port] }));
    await waitFor(async () => (await sayTimes(client, 4)).includes('stable-2'), { description: 'a call to reach the added endpoint stable-2' });
    // Both endpoints are connected now: round robin alternates between them.
    expect(new Set(await sayTimes(client, 6))).toEqual(new Set(['stable', 'stable-2']));
    expect(await sayTimes(client, 3, { headers: BETA })).toEqual(times(3, 'beta'));
    expect(eventsOf('onNack')).toEqual([]);
  });

  it('follows a changed route (RDS update), and back', async () => {
    expect(await sayTimes(client, 3)).toEqual(times(3, 'stable'));

    cache.set(GROUP, echoSnapshot({ stable: [stable.port], beta: [beta.port], defaultCluster: 'echo.beta' }));
    await waitFor(async () => (await say(client)) === 'beta', { description: 'calls without x-beta to reach the beta backend' });
    expect(await sayTimes(client, 5)).toEqual(times(5, 'beta'));

    cache.set(GROUP, baseline());
    await waitFor(async () => (await say(client)) === 'stable', { description: 'calls without x-beta to return to the stable backend' });
    expect(await sayTimes(client, 3)).toEqual(times(3, 'stable'));
    expect(await sayTimes(client, 3, { headers: BETA })).toEqual(times(3, 'beta'));
    expect(eventsOf('onNack')).toEqual([]);
  });

  it('NACKs a resource gRPC cannot use, keeps serving the last good one, and ACKs the fix', async () => {
    // Proves the no-NACK checks above can fail. Envoy takes endpoints without a
    // locality (xds-fixtures' `endpoints`); gRPC rejects them.
    cache.set(GROUP, snapshot(echoFront(), cluster('echo'), endpoints('echo', [['127.0.0.1', stable2.port]]), grpcService('echo.beta', [beta.port])));
    const nack = await waitFor(() => eventsOf('onNack').find((e) => e.type_url === TypeUrl.ClusterLoadAssignment), {
      description: 'a NACK of the endpoints without a locality',
    });
    expect(nack.error_message).toMatch(/locality unset/);
    expect(await sayTimes(client, 3)).toEqual(times(3, 'stable'));

    const afterNack = callbacks.events.length;
    cache.set(GROUP, baseline());
    await waitFor(() => eventsOf('onAck', afterNack).some((e) => e.type_url === TypeUrl.ClusterLoadAssignment), {
      description: 'an ACK of the repaired endpoints',
    });
    expect(await sayTimes(client, 3)).toEqual(times(3, 'stable'));
  });

  // Closing the last xds: channel drops grpc-js-xds's cached resources and ends its ADS
  // stream, but not its per-type version_info: the server must still answer the named
  // types on the next stream, or the new channel never resolves.
  it('serves a channel opened after every earlier one closed (a new ADS stream)', async () => {
    const streamsClosed = callbacks.of('onStreamClose').length;
    for (const c of clients.splice(0)) c.close();
    await waitFor(() => callbacks.of('onStreamClose').length > streamsClosed, { description: 'grpc-js-xds to end its ADS stream' });

    const fresh = connect();
    expect(await say(fresh, { timeoutMs: 3_000 })).toBe('stable');
  });
});
