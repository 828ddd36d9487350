// The simulated proxies' wire code (bench/proxy/wire.ts): responses read in place from
// the chunks they arrived in must read as a whole decode reads them, and requests
// written as parts must be the DiscoveryRequest a decoder expects.
import { describe, expect, it } from 'vitest';
import { lookupMessage } from '../../../src/xds/protos.js';
import { Resource } from '../../../src/xds/resource.js';
import { TypeUrl } from '../../../src/xds/resources.js';
import { encodeDiscoveryResponse } from '../../../src/xds/wire.js';
import { ENVOY_EXTENSIONS, encodeRequest, encodeRequestParts, readClusters, readResponse, readResponseHead } from '../../../bench/proxy/wire.js';

const edsCluster = (name: string, serviceName?: string): Resource =>
  Resource.fromObject(TypeUrl.Cluster, {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, ...(serviceName ? { service_name: serviceName } : {}) },
    connect_timeout: { seconds: 1 },
  });

const staticCluster = Resource.fromObject(TypeUrl.Cluster, { name: 'jwks', type: 'STATIC', connect_timeout: { seconds: 1 } });

/** A cluster response as the server encodes it: a version, the resources, the type, a nonce and the control plane. */
function clusterResponse(count: number, nonce: string): Buffer {
  const resources = [...Array.from({ length: count }, (_, i) => edsCluster(`svc-${i}.stable`, i % 2 ? `svc-${i}` : undefined)), staticCluster];
  return encodeDiscoveryResponse({ versionInfo: 'v-ä1', typeUrl: TypeUrl.Cluster, nonce, resources, controlPlaneId: 'shadowplane/test' });
}

/** `bytes` cut into chunks of `size`, as views. */
const cut = (bytes: Buffer, size: number): Buffer[] => {
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) parts.push(bytes.subarray(at, at + size));
  return parts;
};

describe('readResponseHead', () => {
  const response = clusterResponse(300, 'n-1');

  it('reads what readResponse reads, wherever the chunks are cut', () => {
    const whole = readResponse(response, false);
    expect(whole).toMatchObject({ version: 'v-ä1', typeUrl: TypeUrl.Cluster, nonce: 'n-1', resources: 301 });
    for (const size of [1, 2, 3, 7, 100, 16_384, response.length]) {
      expect(readResponseHead(cut(response, size), response.length), `chunks of ${size}`).toEqual(whole);
    }
  });

  it('says so when a response ends inside a field', () => {
    const short = response.subarray(0, response.length - 3);
    expect(() => readResponseHead([short], short.length)).toThrow(/truncated response/);
  });
});

describe('readClusters', () => {
  it("gives the EDS names a whole decode gives, from parts, and the same reading again for equal bytes however they are cut", () => {
    const response = clusterResponse(50, 'n-2');
    const whole = readResponse(response, true);
    expect(whole.edsNames).toHaveLength(50);
    expect(whole.edsNames!.slice(0, 2)).toEqual(['svc-0.stable', 'svc-1']);
    const first = readClusters(cut(response, 333), response.length);
    expect(first).toEqual(whole);
    expect(readClusters(cut(response, 1000), response.length)).toBe(first);
  });

  it('reads a response that differs anew', () => {
    const a = clusterResponse(10, 'n-3');
    const b = clusterResponse(11, 'n-4');
    const first = readClusters([a], a.length);
    const second = readClusters(cut(b, 64), b.length);
    expect(second).not.toBe(first);
    expect(second.edsNames).toHaveLength(11);
    expect(second.nonce).toBe('n-4');
  });
});

describe('encodeRequestParts', () => {
  const requestType = lookupMessage('envoy.service.discovery.v3.DiscoveryRequest');

  it("joined, is the request: an ACK's version, names, type and nonce", () => {
    const request = { version_info: 'v1', resource_names: ['a', 'b'], type_url: TypeUrl.ClusterLoadAssignment, response_nonce: 'n1' };
    const bytes = Buffer.concat(encodeRequestParts(request));
    expect(bytes.equals(encodeRequest(request))).toBe(true);
    expect(requestType.toObject(requestType.decode(bytes))).toEqual(request);
  });

  it("joined, is a first request with the node, Envoy's build and its extensions", () => {
    const node = { id: 'proxy-1', cluster: 'gateway', metadata: { role: 'edge' }, user_agent_name: 'envoy' };
    const decoded = requestType.toObject(requestType.decode(Buffer.concat(encodeRequestParts({ type_url: TypeUrl.Cluster, node }))), { defaults: false }) as {
      type_url: string;
      node: { id: string; cluster: string; user_agent_name: string; extensions: unknown[]; user_agent_build_version: { version: { major_number: number } } };
    };
    expect(decoded.type_url).toBe(TypeUrl.Cluster);
    expect(decoded.node).toMatchObject({ id: 'proxy-1', cluster: 'gateway', user_agent_name: 'envoy' });
    expect(decoded.node.extensions).toHaveLength(ENVOY_EXTENSIONS);
    expect(decoded.node.user_agent_build_version.version.major_number).toBe(1);
  });
});
