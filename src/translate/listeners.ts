// Listeners and route configurations, per proxy role.
import type { AccessGateway, RuleSet } from '../model/rules.js';
import { STABLE_SUBSET, type Registry } from '../model/types.js';
import type { ResourceObject } from '../xds/resources.js';
import {
  buildAuditLog,
  buildJwtFilter,
  buildLocalRateLimit,
  buildRateLimitFilter,
  buildRbacFilter,
  buildRouterFilter,
  buildStripFilter,
  claimHeaders,
} from './filters.js';
import { buildMethodMatcher } from './matchers.js';
import { clusterName, listenerName, localAppClusterName, routeName } from './names.js';
import { buildVirtualHost, type SubsetIndex } from './routes.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** An HTTP listener whose routes come over ADS under the listener's own name. */
export function buildHttpListener(name: string, address: string, port: number, httpFilters: ResourceObject[], accessLog?: ResourceObject): ResourceObject {
  return {
    name,
    address: { socket_address: { address, port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              rds: { route_config_name: name, config_source: { ads: {}, resource_api_version: 'V3' } },
              http_filters: [...httpFilters, buildRouterFilter()],
              ...(accessLog ? { access_log: [accessLog] } : {}),
            },
          },
        ],
      },
    ],
  };
}

/** Virtual hosts for every service of the registry, in name order. */
export function serviceVirtualHosts(registry: Registry, rules: RuleSet, subsets: SubsetIndex, readOnlyStandIn?: number): ResourceObject[] {
  return [...registry.services.keys()].sort().map((service) => buildVirtualHost(service, rules, subsets, { readOnlyStandIn }));
}

/** The edge: strip headers only our filters may set, verify JWTs where rules route on claims, route. */
export function edgeFilters(rules: RuleSet): ResourceObject[] {
  const internal = [...claimHeaders(rules).values()].flatMap((m) => [...m.values()]);
  const marker = new Set(Object.values(rules.services).flatMap((s) => s.mirrors.map((m) => m.marker_header)));
  return [buildStripFilter([...new Set([...internal, ...marker])]), buildJwtFilter(rules)].filter((f): f is ResourceObject => f !== undefined);
}

/** A sidecar's inbound side: everything to its local application. */
export function inboundRouteConfiguration(port: number, appPort: number): ResourceObject {
  return {
    name: listenerName('inbound', port),
    virtual_hosts: [{ name: 'local_app', domains: ['*'], routes: [{ name: 'local_app', match: { prefix: '/' }, route: { cluster: localAppClusterName(appPort) } }] }],
  };
}

/**
 * The access gateway's routes: to each service's stable instances; allow rules with a
 * rate limit of their own get routes carrying that limit.
 */
export function accessVirtualHosts(registry: Registry, gateway: AccessGateway | undefined): ResourceObject[] {
  return [...registry.services.keys()].sort().map((service) => {
    const routes: ResourceObject[] = [];
    (gateway?.allow ?? []).forEach((rule, i) => {
      if (rule.service !== service || !rule.rate_limit) return;
      const headers = rule.methods.length > 0 ? [buildMethodMatcher(rule.methods)] : [];
      const paths = rule.paths.length > 0 ? rule.paths : [{ kind: 'prefix' as const, value: '/' }];
      paths.forEach((p, j) => {
        const match = p.kind === 'exact' ? { path: p.value } : p.kind === 'prefix' ? { prefix: p.value } : { safe_regex: { regex: p.value } };
        routes.push({
          name: routeName(service, `allow-${i}-${j}`),
          match: { ...match, ...(headers.length > 0 ? { headers } : {}) },
          route: { cluster: clusterName(service, STABLE_SUBSET) },
          typed_per_filter_config: { 'envoy.filters.http.local_ratelimit': buildLocalRateLimit(`access_gateway_${service}_${i}`, rule.rate_limit) },
        });
      });
    });
    routes.push({ name: routeName(service, STABLE_SUBSET), match: { prefix: '/' }, route: { cluster: clusterName(service, STABLE_SUBSET) } });
    return { name: service, domains: [service, `${service}:*`], routes };
  });
}

export function accessFilters(rules: RuleSet): ResourceObject[] {
  return [buildRbacFilter(rules.access_gateway), buildRateLimitFilter(rules.access_gateway)];
}

export { buildAuditLog };
