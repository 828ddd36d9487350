import { describe, expect, it } from 'vitest';
import {
  TypeUrl,
  decodeAny,
  decodeMessage,
  encodeAny,
  encodeMessage,
  resourceName,
  typeUrlOf,
  unpackAny,
} from '../../../src/xds/resources.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

const listener = {
  name: 'outbound_http',
  address: { socket_address: { address: '127.0.0.1', port_value: 15001 } },
  filter_chains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': HCM,
            stat_prefix: 'outbound_http',
            rds: { route_config_name: 'outbound', config_source: { ads: {}, resource_api_version: 'V3' } },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
          },
        },
      ],
    },
  ],
};

const routeConfiguration = {
  name: 'outbound',
  virtual_hosts: [
    {
      name: 'api',
      domains: ['api'],
      routes: [
        {
          match: { prefix: '/', headers: [{ name: 'x-beta', string_match: { exact: 'true' } }] },
          route: {
            cluster: 'api.beta',
            request_mirror_policies: [
              { cluster: 'api.shadow', runtime_fraction: { default_value: { numerator: 10, denominator: 'HUNDRED' } } },
            ],
          },
        },
        { match: { prefix: '/' }, route: { cluster: 'api' } },
      ],
    },
  ],
};

const cluster = {
  name: 'api.beta',
  type: 'EDS',
  eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
  connect_timeout: { seconds: '1' },
};

const clusterLoadAssignment = {
  cluster_name: 'api.beta',
  endpoints: [
    {
      lb_endpoints: [
        { endpoint: { address: { socket_address: { address: '10.0.0.7', port_value: 8080 } } } },
      ],
    },
  ],
};

describe('resource encoding round-trips', () => {
  const table = [
    { name: 'Listener', typeUrl: TypeUrl.Listener, object: listener, resourceName: 'outbound_http' },
    { name: 'RouteConfiguration', typeUrl: TypeUrl.RouteConfiguration, object: routeConfiguration, resourceName: 'outbound' },
    { name: 'Cluster', typeUrl: TypeUrl.Cluster, object: cluster, resourceName: 'api.beta' },
    { name: 'ClusterLoadAssignment', typeUrl: TypeUrl.ClusterLoadAssignment, object: clusterLoadAssignment, resourceName: 'api.beta' },
  ];

  it.each(table)('$name survives encode → Any → decode unchanged', ({ typeUrl, object, resourceName: expectedName }) => {
    const any = encodeAny(typeUrl, encodeMessage(typeUrl, object));
    const unpacked = unpackAny(any);
    expect(unpacked.typeUrl).toBe(typeUrl);
    expect(unpacked.object).toEqual(object);
    expect(resourceName(typeUrl, unpacked.object)).toBe(expectedName);
  });

  it.each(table)('$name encodes to the same bytes every time', ({ typeUrl, object }) => {
    expect(encodeMessage(typeUrl, object)).toEqual(encodeMessage(typeUrl, structuredClone(object)));
  });

  it('a DiscoveryResponse carrying pre-encoded resources decodes to those resources', () => {
    const responseType = typeUrlOf('envoy.service.discovery.v3.DiscoveryResponse');
    const resources = [encodeAny(TypeUrl.Cluster, encodeMessage(TypeUrl.Cluster, cluster))];
    const bytes = encodeMessage(responseType, {
      version_info: 'v1',
      type_url: TypeUrl.Cluster,
      nonce: '1',
      resources: resources.map((r) => ({ type_url: decodeAny(r).typeUrl, value: decodeAny(r).value })),
      control_plane: { identifier: 'shadowplane-test' },
    });
    const response = decodeMessage(responseType, bytes);
    expect(response).toMatchObject({ version_info: 'v1', type_url: TypeUrl.Cluster, nonce: '1' });
    expect(response.resources).toEqual([{ '@type': TypeUrl.Cluster, ...cluster }]);
  });

  it('refuses a field of the wrong type, naming the message', () => {
    expect(() => encodeMessage(TypeUrl.Cluster, { name: 'x', connect_timeout: 'soon' })).toThrow(/Cluster/);
  });

  it('refuses a resource without a name', () => {
    expect(() => resourceName(TypeUrl.Cluster, {})).toThrow(/Cluster has no name/);
    expect(() => resourceName(TypeUrl.ClusterLoadAssignment, { cluster_name: '' })).toThrow(/cluster_name/);
  });
});

describe('references', () => {
  it("follow an API listener's connection manager to its route configuration", async () => {
    const { Resource } = await import('../../../src/xds/resource.js');
    const api = Resource.fromObject(TypeUrl.Listener, {
      name: 'echo',
      api_listener: { api_listener: { '@type': HCM, rds: { route_config_name: 'echo-routes', config_source: { ads: {} } } } },
    });
    expect(api.references).toEqual([{ typeUrl: TypeUrl.RouteConfiguration, name: 'echo-routes' }]);
  });
});
