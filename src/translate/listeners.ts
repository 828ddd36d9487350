// The HTTP listener and its route configuration: a virtual host per service.
import type { Registry } from '../model/types.js';
import { STABLE_SUBSET } from '../model/types.js';
import { clusterName, ingressName } from './names.js';
import type { ProxyKey } from './proxy.js';
import type { ResourceObject } from '../xds/resources.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

export function buildHttpListener(key: ProxyKey): ResourceObject {
  const name = ingressName(key.listenerPort);
  return {
    name,
    address: { socket_address: { address: key.listenerAddress, port_value: key.listenerPort } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              rds: { route_config_name: name, config_source: { ads: {}, resource_api_version: 'V3' } },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
            },
          },
        ],
      },
    ],
  };
}

export function buildRouteConfiguration(key: ProxyKey, registry: Registry): ResourceObject {
  return {
    name: ingressName(key.listenerPort),
    virtual_hosts: [...registry.services.keys()].map((service) => ({
      name: service,
      domains: [service, `${service}:*`],
      routes: [{ match: { prefix: '/' }, route: { cluster: clusterName(service, STABLE_SUBSET) } }],
    })),
  };
}
