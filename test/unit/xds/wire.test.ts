import { describe, expect, it } from 'vitest';
import { lookupMessage } from '../../../src/xds/protos.js';
import { TypeUrl, decodeMessage, typeUrlOf } from '../../../src/xds/resources.js';
import { Resource } from '../../../src/xds/resource.js';
import { decodeDiscoveryRequest, encodeDeltaDiscoveryResponse, encodeDiscoveryResponse } from '../../../src/xds/wire.js';

const requestType = lookupMessage('envoy.service.discovery.v3.DiscoveryRequest');
const cluster = Resource.fromObject(TypeUrl.Cluster, { name: 'api', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } });

describe('wire', () => {
  it('decodes node metadata (a Struct) into plain JSON values', () => {
    const bytes = requestType
      .encode(
        requestType.fromObject({
          type_url: TypeUrl.Cluster,
          node: {
            id: 'n1',
            cluster: 'gateway',
            // Struct as plain JSON, as Envoy's YAML writes it (json-wrappers.ts).
            metadata: { listener_port: 10001, role: 'gateway', tls: false, tags: ['a'], nested: { k: 'v' } },
          },
        }),
      )
      .finish();
    const request = decodeDiscoveryRequest(bytes);
    expect(request.node?.metadata).toEqual({ listener_port: 10001, role: 'gateway', tls: false, tags: ['a'], nested: { k: 'v' } });
    expect(request.resource_names).toEqual([]);
    expect(request.response_nonce).toBe('');
    expect(request.error_detail).toBeUndefined();
  });

  it('assembles a SotW response that decodes as protobuf would encode it', () => {
    const bytes = encodeDiscoveryResponse({ versionInfo: 'v1', typeUrl: TypeUrl.Cluster, nonce: 'n', resources: [cluster], controlPlaneId: 'cp' });
    expect(decodeMessage(typeUrlOf('envoy.service.discovery.v3.DiscoveryResponse'), bytes)).toEqual({
      version_info: 'v1',
      type_url: TypeUrl.Cluster,
      nonce: 'n',
      control_plane: { identifier: 'cp' },
      resources: [{ '@type': TypeUrl.Cluster, name: 'api', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } }],
    });
  });

  it('assembles a delta response with resources, versions and removals', () => {
    const bytes = encodeDeltaDiscoveryResponse({
      systemVersionInfo: 's',
      typeUrl: TypeUrl.Cluster,
      nonce: 'n',
      resources: [cluster],
      removed: ['old', 'older'],
      controlPlaneId: 'cp',
    });
    const decoded = decodeMessage(typeUrlOf('envoy.service.discovery.v3.DeltaDiscoveryResponse'), bytes);
    expect(decoded).toMatchObject({ system_version_info: 's', nonce: 'n', removed_resources: ['old', 'older'], control_plane: { identifier: 'cp' } });
    expect(decoded.resources).toEqual([{ name: 'api', version: cluster.version, resource: expect.objectContaining({ name: 'api' }) }]);
  });

  it('shares one encoding of a resource between all responses', () => {
    expect(cluster.sotwEntry()).toBe(cluster.sotwEntry());
    expect(cluster.deltaEntry()).toBe(cluster.deltaEntry());
  });
});
