// The xDS server over TLS, with client certificates required when a CA is configured:
// a client with a certificate from that CA gets its configuration; one without a
// certificate, or with one from another CA, gets nothing.
import { rmSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { SnapshotCache } from '../../src/xds/cache.js';
import { noopCallbacks } from '../../src/xds/callbacks.js';
import { lookupMessage } from '../../src/xds/protos.js';
import { TypeUrl, decodeMessage, typeUrlOf } from '../../src/xds/resources.js';
import { XdsServer } from '../../src/xds/server.js';
import { makeTestPki, type TestPki } from '../helpers/certs.js';
import { service, snapshot } from '../helpers/xds-fixtures.js';

const requestType = lookupMessage('envoy.service.discovery.v3.DiscoveryRequest');
const AdsClient = grpc.makeGenericClientConstructor(
  {
    StreamAggregatedResources: {
      path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
      requestStream: true,
      responseStream: true,
      requestSerialize: (r: object) => Buffer.from(requestType.encode(requestType.fromObject(r)).finish()),
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => decodeMessage(typeUrlOf('envoy.service.discovery.v3.DiscoveryResponse'), b),
    },
  },
  'Ads',
);

/** Opens a stream, asks for clusters, and resolves with the first response or the error. */
function fetchClusters(port: number, credentials: grpc.ChannelCredentials): Promise<{ response?: Record<string, unknown>; error?: grpc.ServiceError }> {
  const client = new AdsClient(`127.0.0.1:${port}`, credentials);
  return new Promise((resolve) => {
    const call = (client as unknown as { StreamAggregatedResources(): grpc.ClientDuplexStream<object, Record<string, unknown>> }).StreamAggregatedResources();
    const done = (result: { response?: Record<string, unknown>; error?: grpc.ServiceError }): void => {
      call.cancel();
      client.close();
      resolve(result);
    };
    call.on('data', (response: Record<string, unknown>) => done({ response }));
    call.on('error', (error: grpc.ServiceError) => done({ error }));
    call.write({ node: { id: 'tls-client' }, type_url: TypeUrl.Cluster });
  });
}

describe('xDS over TLS', () => {
  let pki: TestPki;
  let server: XdsServer;
  let port: number;

  beforeAll(async () => {
    pki = makeTestPki();
    const cache = new SnapshotCache();
    cache.set('g', snapshot(service('api', 9001)));
    server = new XdsServer({
      address: '127.0.0.1:0',
      watcher: cache,
      callbacks: noopCallbacks,
      logger: silentLogger(),
      groupOf: () => 'g',
      controlPlaneId: 'tls-test',
      tls: { cert_file: pki.serverCertFile, key_file: pki.serverKeyFile, ca_file: pki.caFile },
    });
    port = await server.start();
  });

  afterAll(async () => {
    await server?.stop();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  it('serves a client whose certificate the configured CA signed', async () => {
    const creds = grpc.credentials.createSsl(pki.read(pki.caFile), pki.read(pki.clientKeyFile), pki.read(pki.clientCertFile));
    const { response, error } = await fetchClusters(port, creds);
    expect(error).toBeUndefined();
    expect(response?.resources).toEqual([expect.objectContaining({ name: 'api' })]);
  });

  it('refuses a client without a certificate', async () => {
    const { response, error } = await fetchClusters(port, grpc.credentials.createSsl(pki.read(pki.caFile)));
    expect(response).toBeUndefined();
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('refuses a client whose certificate another CA signed', async () => {
    const creds = grpc.credentials.createSsl(pki.read(pki.caFile), pki.read(pki.otherClientKeyFile), pki.read(pki.otherClientCertFile));
    const { response, error } = await fetchClusters(port, creds);
    expect(response).toBeUndefined();
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('refuses a plaintext client', async () => {
    const { response, error } = await fetchClusters(port, grpc.credentials.createInsecure());
    expect(response).toBeUndefined();
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
  });
});
