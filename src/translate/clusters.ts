// Clusters and endpoints. One EDS cluster per service subset (the same for every
// proxy); per mirror, a copy of its target's cluster that marks the requests it
// carries; per JWT issuer with a remote key set, a cluster to fetch it through.
import type { JwtIssuer, Mirror, RuleSet } from '../model/rules.js';
import type { Registry, Subset } from '../model/types.js';
import { DEFAULT_ROUTING_TAGS, subsetsOf } from '../model/subsets.js';
import { clusterName, jwksClusterName, localAppClusterName, mirrorClusterName } from './names.js';
import type { ResourceObject } from '../xds/resources.js';

const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };
/** Debian's and most distributions' CA bundle, as Envoy's images carry it. */
const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HEADER_MUTATION = 'type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation';
const UPSTREAM_CODEC = 'type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec';

export function buildCluster(subset: Subset): ResourceObject {
  return {
    name: clusterName(subset.service, subset.name),
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE },
    connect_timeout: { seconds: 1 },
  };
}

export function buildClusterLoadAssignment(subset: Subset): ResourceObject {
  return {
    cluster_name: clusterName(subset.service, subset.name),
    endpoints:
      subset.instances.length === 0
        ? []
        : [
            {
              // Envoy needs neither, but gRPC's xDS client refuses a locality-less group
              // and ignores one without weight.
              locality: {},
              load_balancing_weight: { value: 1 },
              lb_endpoints: subset.instances.map((i) => ({
                endpoint: { address: { socket_address: { address: i.address, port_value: i.port } } },
              })),
            },
          ],
  };
}

/**
 * The cluster a mirror sends its copies to: the target subset's endpoints, with an
 * upstream filter that adds the marker header (value: the mirror's name) and removes
 * the headers the mirror strips. Only the copies pass through it; the primary request
 * is untouched.
 */
export function buildMirrorCluster(mirror: Mirror): ResourceObject {
  const mutations: ResourceObject[] = [
    { append: { header: { key: mirror.marker_header, value: mirror.name }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' } },
    ...mirror.remove_headers.map((h) => ({ remove: h })),
  ];
  return {
    name: mirrorClusterName(mirror.to.service, mirror.to.subset, mirror.name),
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE, service_name: clusterName(mirror.to.service, mirror.to.subset) },
    connect_timeout: { seconds: 1 },
    typed_extension_protocol_options: {
      [HTTP_PROTOCOL_OPTIONS]: {
        '@type': `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`,
        use_downstream_protocol_config: {},
        http_filters: [
          { name: 'envoy.filters.http.header_mutation', typed_config: { '@type': HEADER_MUTATION, mutations: { request_mutations: mutations } } },
          { name: 'envoy.filters.http.upstream_codec', typed_config: { '@type': UPSTREAM_CODEC } },
        ],
      },
    },
  };
}

/** A cluster to a remote JWKS host: DNS-resolved, TLS for https. */
export function buildJwksCluster(name: string, issuer: JwtIssuer & { jwks_uri: string }): ResourceObject {
  const url = new URL(issuer.jwks_uri);
  const tls = url.protocol === 'https:';
  const port = Number(url.port || (tls ? 443 : 80));
  return {
    name: jwksClusterName(name),
    type: 'LOGICAL_DNS',
    connect_timeout: { seconds: 2 },
    load_assignment: {
      cluster_name: jwksClusterName(name),
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: url.hostname, port_value: port } } } }] }],
    },
    ...(tls
      ? {
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
              sni: url.hostname,
              // Without a validation context Envoy would take keys from anyone in the middle.
              common_tls_context: {
                validation_context: {
                  trusted_ca: { filename: SYSTEM_CA_BUNDLE },
                  match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: url.hostname } }],
                },
              },
            },
          },
        }
      : {}),
  };
}

/** A sidecar's own application, reached through its inbound listener. */
export function buildLocalAppCluster(port: number): ResourceObject {
  return {
    name: localAppClusterName(port),
    type: 'STATIC',
    connect_timeout: { seconds: 1 },
    load_assignment: {
      cluster_name: localAppClusterName(port),
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
    },
  };
}

/**
 * A service's routing tags: the defaults, plus every subset of it that rules name, so
 * an instance tagged `tenant-acme` leaves `stable` once a rule routes to
 * `api.tenant-acme`; another service's `tenant-acme` instances stay where they were.
 */
export function routingTags(rules: RuleSet, service: string, defaults: readonly string[] = DEFAULT_ROUTING_TAGS): readonly string[] {
  const ruled = namedSubsets(rules).get(service);
  // Most services are named by no rule: they share one list of the defaults.
  if (!ruled) return defaultRoutingTags(defaults);
  // Only rules that send to this service's subsets make tags of it.
  const named = new Set(defaults);
  for (const subset of ruled) named.add(subset);
  named.delete('stable');
  return [...named].sort();
}

const defaultTags = new WeakMap<readonly string[], string[]>();

/** The routing tags of every service no rule sends to: one list per list of defaults. */
export function defaultRoutingTags(defaults: readonly string[] = DEFAULT_ROUTING_TAGS): readonly string[] {
  let tags = defaultTags.get(defaults);
  if (!tags) defaultTags.set(defaults, (tags = [...new Set(defaults)].filter((t) => t !== 'stable').sort()));
  return tags;
}

/** The services some rule sends to a subset of: the only ones whose routing tags may differ from defaultRoutingTags. */
export const servicesRulesSendTo = (rules: RuleSet): { has(service: string): boolean } => namedSubsets(rules);

const namedSubsetsOf = new WeakMap<RuleSet, Map<string, Set<string>>>();

/** Per service, the subsets rules send to: one walk of the rules per rule set. */
function namedSubsets(rules: RuleSet): Map<string, Set<string>> {
  let byService = namedSubsetsOf.get(rules);
  if (byService) return byService;
  byService = new Map();
  for (const r of Object.values(rules.services)) {
    const targets = [
      ...r.routes.flatMap((route) => ('to' in route ? [route.to] : route.split.map((s) => s.to))),
      ...r.mirrors.map((m) => m.to),
      ...r.dev_routes.map((d) => d.to),
      ...r.tenant_routes.map((t) => t.to),
    ];
    for (const t of targets) {
      const set = byService.get(t.service) ?? new Set<string>();
      set.add(t.subset);
      byService.set(t.service, set);
    }
  }
  namedSubsetsOf.set(rules, byService);
  return byService;
}

/** Every service's subsets, by its routing tags. */
export function allSubsets(registry: Registry, rules: RuleSet): Subset[] {
  return [...registry.services.values()].flatMap((s) => subsetsOf(s, routingTags(rules, s.name, registry.routingTags)));
}
