// Listeners and route configurations, per proxy role.
import type { AccessGateway, RuleSet } from '../model/rules.js';
import { STABLE_SUBSET, type Registry } from '../model/types.js';
import type { ResourceObject } from '../xds/resources.js';
import {
  buildJwtFilter,
  buildLocalRateLimit,
  buildRateLimitFilter,
  buildRbacFilter,
  buildRouterFilter,
  buildStripExtension,
  claimHeaders,
} from './filters.js';
import { buildMethodMatcher } from './matchers.js';
import { clusterName, listenerName, localAppClusterName, routeName } from './names.js';
import { buildVirtualHost, type SubsetIndex } from './routes.js';
import { serviceNames } from '../model/service-names.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** An HTTP listener whose routes come over ADS under the listener's own name. */
export interface ListenerExtras {
  accessLog?: ResourceObject;
  /** Applied to request headers before routing (see buildStripExtension). */
  earlyHeaderMutation?: ResourceObject;
}

export function buildHttpListener(name: string, address: string, port: number, httpFilters: ResourceObject[], extras: ListenerExtras = {}): ResourceObject {
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
              // Match and authorise the path the upstream will see: `/v1/../admin` must
              // not pass a rule for `/v1/` (GHSA-xcx5-93pw-jw2w).
              normalize_path: { value: true },
              merge_slashes: true,
              path_with_escaped_slashes_action: 'UNESCAPE_AND_REDIRECT',
              rds: { route_config_name: name, config_source: { ads: {}, resource_api_version: 'V3' } },
              http_filters: [...httpFilters, buildRouterFilter()],
              ...(extras.accessLog ? { access_log: [extras.accessLog] } : {}),
              ...(extras.earlyHeaderMutation ? { early_header_mutation_extensions: [extras.earlyHeaderMutation] } : {}),
            },
          },
        ],
      },
    ],
  };
}

/** Virtual hosts for every service of the registry, in name order. */
export function serviceVirtualHosts(registry: Registry, rules: RuleSet, subsets: SubsetIndex, readOnlyStandIn?: number): ResourceObject[] {
  return serviceNames(registry).map((service) => buildVirtualHost(service, rules, subsets, { readOnlyStandIn }));
}

/** The edge verifies JWTs where rules route on claims. */
export function edgeFilters(rules: RuleSet): ResourceObject[] {
  const jwt = buildJwtFilter(rules);
  return jwt ? [jwt] : [];
}

/** What the edge removes from outside requests: claim headers and mirror markers. */
export function edgeStrip(rules: RuleSet): ResourceObject | undefined {
  const internal = [...claimHeaders(rules).values()].flatMap((m) => [...m.values()]);
  const markers = Object.values(rules.services).flatMap((s) => s.mirrors.map((m) => m.marker_header));
  return buildStripExtension([...new Set([...internal, ...markers])]);
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
  return serviceNames(registry).map((service) => {
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

