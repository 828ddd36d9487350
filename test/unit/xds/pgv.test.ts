import { describe, expect, it } from 'vitest';
import { unsupportedRules, validateResource } from '../../../src/xds/pgv.js';
import { TypeUrl, encodeMessage, typeUrlOf, unpackAny, type ResourceObject } from '../../../src/xds/resources.js';
import { cluster, endpoints, listener, routes } from '../../helpers/xds-fixtures.js';

// Every case marked (envoy) was checked by hand against the real proxy: written into a
// static bootstrap, it was refused by `envoy --mode validate` (Envoy 1.40) for the
// field and rule the case expects, unless its name gives Envoy's own reason. The
// "accepts" cases were accepted.

type Obj = Record<string, unknown>;

const HCM = typeUrlOf('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
const ROUTER = typeUrlOf('envoy.extensions.filters.http.router.v3.Router');
const LOCAL_RATE_LIMIT = typeUrlOf('envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit');
const RBAC = typeUrlOf('envoy.extensions.filters.http.rbac.v3.RBAC');
const JWT_AUTHN = typeUrlOf('envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication');
const HEADER_MUTATION = typeUrlOf('envoy.extensions.filters.http.header_mutation.v3.HeaderMutation');
const FILE_ACCESS_LOG = typeUrlOf('envoy.extensions.access_loggers.file.v3.FileAccessLog');
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const ADS = { ads: {}, resource_api_version: 'V3' };

// Builders: a valid resource, with the one part a case changes given by name.

function clusterWith(fields: Obj = {}): Obj {
  return { name: 'api', type: 'EDS', eds_cluster_config: { eds_config: ADS }, connect_timeout: { seconds: 1 }, ...fields };
}

function protocolOptions(options: Obj): Obj {
  return { typed_extension_protocol_options: { [HTTP_PROTOCOL_OPTIONS]: { '@type': typeUrlOf(HTTP_PROTOCOL_OPTIONS), explicit_http_config: { http2_protocol_options: {} }, ...options } } };
}

function endpointsWith(lbEndpoint: Obj = {}): Obj {
  return { cluster_name: 'api', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.7', port_value: 8080 } } }, ...lbEndpoint }] }] };
}

function routeWith({ match = {}, action = { cluster: 'api' } }: { match?: Obj; action?: Obj } = {}): Obj {
  return { match: { prefix: '/', ...match }, route: action };
}

function routesWith({ route = routeWith(), host = {} }: { route?: Obj; host?: Obj } = {}): Obj {
  return { name: 'ingress', virtual_hosts: [{ name: 'api', domains: ['api'], routes: [route], ...host }] };
}

const router = { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } };
const httpFilter = (name: string, config: Obj): Obj => ({ name, typed_config: config });

function connectionManager(fields: Obj = {}): Obj {
  return { '@type': HCM, stat_prefix: 'ingress', rds: { route_config_name: 'ingress', config_source: ADS }, http_filters: [router], ...fields };
}

function listenerWith(manager: Obj = connectionManager()): Obj {
  return {
    name: 'ingress',
    address: { socket_address: { address: '127.0.0.1', port_value: 10000 } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: manager }] }],
  };
}

const withoutKey = (object: Obj, key: string): Obj => Object.fromEntries(Object.entries(object).filter(([k]) => k !== key));

const HOST = 'virtual_hosts[0]';
const ROUTE = `${HOST}.routes[0]`;
const MANAGER = 'filter_chains[0].filters[0].typed_config';
const FIRST_FILTER = `${MANAGER}.http_filters[0].typed_config`;

interface InvalidCase {
  name: string;
  typeUrl: string;
  object: Obj;
  expected: [path: string, rule: string][];
}

const invalidCases: InvalidCase[] = [
  {
    name: 'an empty header name in a route header matcher (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ route: routeWith({ match: { headers: [{ name: '', string_match: { exact: 'true' } }] } }) }),
    expected: [[`${ROUTE}.match.headers[0].name`, 'string.min_len']],
  },
  {
    name: 'a header matcher name with a line feed (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ route: routeWith({ match: { headers: [{ name: 'x\nbeta', present_match: true }] } }) }),
    expected: [[`${ROUTE}.match.headers[0].name`, 'string.well_known_regex']],
  },
  {
    name: 'a header name with a space where a strict header name is required (envoy)',
    typeUrl: TypeUrl.Cluster,
    object: clusterWith(protocolOptions({ upstream_http_protocol_options: { auto_sni: true, override_auto_sni_header: 'x sni' } })),
    expected: [[`typed_extension_protocol_options["${HTTP_PROTOCOL_OPTIONS}"].upstream_http_protocol_options.override_auto_sni_header`, 'string.well_known_regex']],
  },
  {
    name: 'a zero connect_timeout (envoy)',
    typeUrl: TypeUrl.Cluster,
    object: clusterWith({ connect_timeout: { seconds: 0 } }),
    expected: [['connect_timeout', 'duration.gt']],
  },
  {
    name: 'a negative connect_timeout (envoy: refuses any negative duration)',
    typeUrl: TypeUrl.Cluster,
    object: clusterWith({ connect_timeout: { seconds: '-1' } }),
    expected: [['connect_timeout', 'duration.gt']],
  },
  {
    name: 'a route without any cluster specifier (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ route: routeWith({ action: { timeout: { seconds: 5 } } }) }),
    expected: [[`${ROUTE}.route.cluster_specifier`, 'oneof.required']],
  },
  {
    name: 'a route to an empty cluster name (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ route: routeWith({ action: { cluster: '' } }) }),
    expected: [[`${ROUTE}.route.cluster`, 'string.min_len']],
  },
  {
    name: 'weighted clusters with no cluster (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ route: routeWith({ action: { weighted_clusters: { clusters: [] } } }) }),
    expected: [[`${ROUTE}.route.weighted_clusters.clusters`, 'repeated.min_items']],
  },
  {
    name: 'an endpoint port above 65535 (envoy)',
    typeUrl: TypeUrl.ClusterLoadAssignment,
    object: { cluster_name: 'api', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.7', port_value: 70000 } } } }] }] },
    expected: [['endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value', 'uint32.lte']],
  },
  {
    name: 'an endpoint weight of 0, in a UInt32Value (envoy)',
    typeUrl: TypeUrl.ClusterLoadAssignment,
    object: endpointsWith({ load_balancing_weight: { value: 0 } }),
    expected: [['endpoints[0].lb_endpoints[0].load_balancing_weight', 'uint32.gte']],
  },
  {
    name: 'a healthy panic threshold above 100 percent (envoy)',
    typeUrl: TypeUrl.Cluster,
    object: clusterWith({ common_lb_config: { healthy_panic_threshold: { value: 150 } } }),
    expected: [['common_lb_config.healthy_panic_threshold.value', 'double.lte']],
  },
  {
    name: 'a direct response status of 700 (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ route: { match: { prefix: '/' }, direct_response: { status: 700 } } }),
    expected: [[`${ROUTE}.direct_response.status`, 'uint32.lt']],
  },
  {
    name: 'a ring hash minimum ring size above 8M, a 64-bit wrapper written as a string (envoy)',
    typeUrl: TypeUrl.Cluster,
    object: clusterWith({ lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: { value: '8388609' } } }),
    expected: [['ring_hash_lb_config.minimum_ring_size', 'uint64.lte']],
  },
  {
    name: 'a cluster type number the enum does not define (envoy; protobufjs verify refuses it too)',
    typeUrl: TypeUrl.Cluster,
    object: clusterWith({ type: 99 }),
    expected: [['type', 'enum.defined_only']],
  },
  {
    name: 'a cluster type name the enum does not have, which protobufjs would encode as STATIC (envoy, from YAML)',
    typeUrl: TypeUrl.Cluster,
    object: clusterWith({ type: 'EDSX' }),
    expected: [['type', 'enum.defined_only']],
  },
  {
    name: 'a mirror fraction with an undefined denominator (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ route: routeWith({ action: { cluster: 'api', request_mirror_policies: [{ cluster: 'shadow', runtime_fraction: { default_value: { numerator: 10, denominator: 7 } } }] } }) }),
    expected: [[`${ROUTE}.route.request_mirror_policies[0].runtime_fraction.default_value.denominator`, 'enum.defined_only']],
  },
  {
    name: 'a virtual host without domains (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ host: { domains: [] } }),
    expected: [[`${HOST}.domains`, 'repeated.min_items']],
  },
  {
    name: 'a domain with a line feed, a rule on each item (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ host: { domains: ['api', 'a\nb'] } }),
    expected: [[`${HOST}.domains[1]`, 'repeated.items.string.well_known_regex']],
  },
  {
    name: 'an empty header name to remove (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ route: { ...routeWith(), request_headers_to_remove: [''] } }),
    expected: [[`${ROUTE}.request_headers_to_remove[0]`, 'repeated.items.string.min_len']],
  },
  {
    name: 'a header to copy twice on internal redirect (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ route: routeWith({ action: { cluster: 'api', internal_redirect_policy: { response_headers_to_copy: ['x-a', 'x-a'] } } }) }),
    expected: [[`${ROUTE}.route.internal_redirect_policy.response_headers_to_copy`, 'repeated.unique']],
  },
  {
    name: 'an empty filter metadata key, a rule on map keys (envoy)',
    typeUrl: TypeUrl.Cluster,
    object: clusterWith({ metadata: { filter_metadata: { '': { owner: 'team' } } } }),
    expected: [['metadata.filter_metadata[""]', 'map.keys.string.min_len']],
  },
  {
    name: 'a virtual host with an empty name (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ host: { name: '' } }),
    expected: [[`${HOST}.name`, 'string.min_len']],
  },
  {
    name: 'a request header value with CR LF (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ host: { request_headers_to_add: [{ header: { key: 'x-env', value: 'a\r\nb' } }] } }),
    expected: [[`${HOST}.request_headers_to_add[0].header.value`, 'string.well_known_regex']],
  },
  {
    name: 'a request header value over 16384 bytes (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ host: { request_headers_to_add: [{ header: { key: 'x-env', value: 'v'.repeat(16385) } }] } }),
    expected: [[`${HOST}.request_headers_to_add[0].header.value`, 'string.max_bytes']],
  },
  {
    name: 'more than 1000 request headers to add (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ host: { request_headers_to_add: Array.from({ length: 1001 }, (_, i) => ({ header: { key: `x-${i}`, value: 'v' } })) } }),
    expected: [[`${HOST}.request_headers_to_add`, 'repeated.max_items']],
  },
  {
    name: 'a header to add without its header (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ host: { request_headers_to_add: [{ append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }] } }),
    expected: [[`${HOST}.request_headers_to_add[0].header`, 'message.required']],
  },
  {
    name: 'a path_separated_prefix ending in a slash (envoy)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ route: { match: { path_separated_prefix: '/api/' }, route: { cluster: 'api' } } }),
    expected: [[`${ROUTE}.match.path_separated_prefix`, 'string.pattern']],
  },
  {
    name: 'a cluster without a name (envoy)',
    typeUrl: TypeUrl.Cluster,
    object: withoutKey(clusterWith(), 'name'),
    expected: [['name', 'string.min_len']],
  },
  {
    name: 'a connection manager without stat_prefix, inside an Any (envoy)',
    typeUrl: TypeUrl.Listener,
    object: listenerWith(withoutKey(connectionManager(), 'stat_prefix')),
    expected: [[`${MANAGER}.stat_prefix`, 'string.min_len']],
  },
  {
    name: 'an http filter without a name (envoy)',
    typeUrl: TypeUrl.Listener,
    object: listenerWith(connectionManager({ http_filters: [{ typed_config: { '@type': ROUTER } }] })),
    expected: [[`${MANAGER}.http_filters[0].name`, 'string.min_len']],
  },
  {
    name: 'a local rate limit with a zero fill interval, an Any inside an Any (envoy)',
    typeUrl: TypeUrl.Listener,
    object: listenerWith(connectionManager({ http_filters: [httpFilter('lrl', { '@type': LOCAL_RATE_LIMIT, stat_prefix: 'lrl', token_bucket: { max_tokens: 5, fill_interval: {} } }), router] })),
    expected: [[`${FIRST_FILTER}.token_bucket.fill_interval`, 'duration.gt']],
  },
  {
    name: 'a local rate limit without stat_prefix (envoy)',
    typeUrl: TypeUrl.Listener,
    object: listenerWith(connectionManager({ http_filters: [httpFilter('lrl', { '@type': LOCAL_RATE_LIMIT }), router] })),
    expected: [[`${FIRST_FILTER}.stat_prefix`, 'string.min_len']],
  },
  {
    name: 'an RBAC permission without a rule, under a map key (envoy)',
    typeUrl: TypeUrl.Listener,
    object: listenerWith(connectionManager({ http_filters: [httpFilter('rbac', { '@type': RBAC, rules: { action: 'ALLOW', policies: { p: { permissions: [{}], principals: [{ any: true }] } } } }), router] })),
    expected: [[`${FIRST_FILTER}.rules.policies["p"].permissions[0].rule`, 'oneof.required']],
  },
  {
    name: 'a JWT provider with an empty JWKS uri (envoy)',
    typeUrl: TypeUrl.Listener,
    object: listenerWith(
      connectionManager({ http_filters: [httpFilter('jwt', { '@type': JWT_AUTHN, providers: { p: { issuer: 'i', remote_jwks: { http_uri: { uri: '', cluster: 'jwks', timeout: { seconds: 1 } } } } } }), router] }),
    ),
    expected: [[`${FIRST_FILTER}.providers["p"].remote_jwks.http_uri.uri`, 'string.min_len']],
  },
  {
    name: 'a header mutation value with a line feed (envoy)',
    typeUrl: TypeUrl.Listener,
    object: listenerWith(
      connectionManager({ http_filters: [httpFilter('hm', { '@type': HEADER_MUTATION, mutations: { request_mutations: [{ append: { header: { key: 'x-a', value: 'a\nb' } } }] } }), router] }),
    ),
    expected: [[`${FIRST_FILTER}.mutations.request_mutations[0].append.header.value`, 'string.well_known_regex']],
  },
  {
    name: 'a typed_config of a type we do not load, which protobufjs would encode as an empty Any (envoy)',
    typeUrl: TypeUrl.Listener,
    object: listenerWith(connectionManager({ http_filters: [httpFilter('x', { '@type': typeUrlOf('example.Unknown'), anything: 1 }), router] })),
    expected: [[`${MANAGER}.http_filters[0].typed_config`, 'any.type']],
  },
  {
    name: 'a file access log without a path (envoy)',
    typeUrl: TypeUrl.Listener,
    object: listenerWith(connectionManager({ access_log: [{ name: 'file', typed_config: { '@type': FILE_ACCESS_LOG, path: '' } }] })),
    expected: [[`${MANAGER}.access_log[0].typed_config.path`, 'string.min_len']],
  },
];

const validCases: { name: string; typeUrl: string; object: ResourceObject }[] = [
  { name: 'the fixture cluster, decoded', typeUrl: TypeUrl.Cluster, object: unpackAny(cluster('api.beta').any).object },
  { name: 'the fixture endpoints, decoded', typeUrl: TypeUrl.ClusterLoadAssignment, object: unpackAny(endpoints('api.beta', [['127.0.0.1', 9001]]).any).object },
  { name: 'no endpoints at all', typeUrl: TypeUrl.ClusterLoadAssignment, object: unpackAny(endpoints('api.beta', []).any).object },
  { name: 'the fixture routes, decoded', typeUrl: TypeUrl.RouteConfiguration, object: unpackAny(routes('ingress', { api: 'api.beta' }).any).object },
  { name: 'the fixture listener, decoded', typeUrl: TypeUrl.Listener, object: unpackAny(listener('ingress', 10000, 'ingress').any).object },
  {
    name: 'routes with header matches, mirrors, weights and headers to add',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({
      route: routeWith({
        match: { headers: [{ name: 'x-beta', string_match: { exact: 'true' } }] },
        action: {
          weighted_clusters: { clusters: [{ name: 'api', weight: { value: 90 } }, { name: 'api.beta', weight: { value: 10 } }] },
          request_mirror_policies: [{ cluster: 'api.shadow', runtime_fraction: { default_value: { numerator: 10, denominator: 'HUNDRED' } } }],
        },
      }),
      host: { request_headers_to_add: [{ header: { key: 'x-env', value: 'beta' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }] },
    }),
  },
  {
    name: 'a header matcher name with a space: its rule is strict: false (envoy accepts it)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ route: routeWith({ match: { headers: [{ name: 'x beta', present_match: true }] } }) }),
  },
  {
    name: 'a header value with a control character other than NUL, CR, LF (envoy accepts it)',
    typeUrl: TypeUrl.RouteConfiguration,
    object: routesWith({ host: { request_headers_to_add: [{ header: { key: 'x-env', value: 'a\u0007b' } }] } }),
  },
  {
    name: 'a connection manager with jwt_authn, rbac, local rate limit, header mutation and an access log',
    typeUrl: TypeUrl.Listener,
    object: listenerWith(
      connectionManager({
        access_log: [{ name: 'file', typed_config: { '@type': FILE_ACCESS_LOG, path: '/dev/null' } }],
        http_filters: [
          httpFilter('jwt', { '@type': JWT_AUTHN, providers: { p: { issuer: 'i', remote_jwks: { http_uri: { uri: 'https://idp/jwks', cluster: 'jwks', timeout: { seconds: 1 } } } } }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }] }),
          httpFilter('rbac', { '@type': RBAC, rules: { action: 'ALLOW', policies: { p: { permissions: [{ any: true }], principals: [{ any: true }] } } } }),
          httpFilter('lrl', { '@type': LOCAL_RATE_LIMIT, stat_prefix: 'lrl', token_bucket: { max_tokens: 5, fill_interval: { seconds: 1 } } }),
          httpFilter('hm', { '@type': HEADER_MUTATION, mutations: { request_mutations: [{ append: { header: { key: 'x-a', value: 'b' } } }] } }),
          router,
        ],
      }),
    ),
  },
  {
    name: 'a cluster with protocol options; an empty override_auto_sni_header is ignore_empty',
    typeUrl: TypeUrl.Cluster,
    object: clusterWith(protocolOptions({ upstream_http_protocol_options: { auto_sni: true, override_auto_sni_header: '' } })),
  },
  {
    name: 'an absent wrapper (load_balancing_weight) and an absent optional message',
    typeUrl: TypeUrl.ClusterLoadAssignment,
    object: endpointsWith(),
  },
];

describe('validateResource', () => {
  it.each(invalidCases)('refuses $name', ({ typeUrl, object, expected }) => {
    expect(validateResource(typeUrl, object).map((v) => [v.path, v.rule])).toEqual(expected);
  });

  it.each(validCases)('accepts $name', ({ typeUrl, object }) => {
    expect(validateResource(typeUrl, object)).toEqual([]);
  });
});

describe('violations', () => {
  it('say what the value must be', () => {
    expect(validateResource(TypeUrl.Cluster, clusterWith({ connect_timeout: { nanos: 0 } }))).toEqual([
      { path: 'connect_timeout', rule: 'duration.gt', message: 'must be greater than 0s (got 0s)' },
    ]);
    expect(validateResource(TypeUrl.RouteConfiguration, routesWith({ host: { name: '' } }))[0]?.message).toBe('must be at least 1 character');
  });

  it('are all collected, not just the first', () => {
    const object = routesWith({ route: routeWith({ match: { headers: [{ name: '' }] }, action: {} }), host: { domains: [] } });
    expect(validateResource(TypeUrl.RouteConfiguration, object).map((v) => v.rule).sort()).toEqual(['oneof.required', 'repeated.min_items', 'string.min_len']);
  });

  it('are found in an Any given as type_url and encoded value', () => {
    const manager = withoutKey(connectionManager(), '@type');
    const value = encodeMessage(HCM, { ...manager, stat_prefix: '' });
    const object = listenerWith({ type_url: HCM, value });
    expect(validateResource(TypeUrl.Listener, object).map((v) => [v.path, v.rule])).toEqual([[`${MANAGER}.stat_prefix`, 'string.min_len']]);
  });

  it('are not invented for an enum given by a known name or number', () => {
    expect(validateResource(TypeUrl.Cluster, clusterWith({ type: 3 }))).toEqual([]);
    expect(validateResource(TypeUrl.Cluster, clusterWith({ type: 'STRICT_DNS' }))).toEqual([]);
  });
});

describe('coverage', () => {
  it('every rule in the loaded Envoy protos is one this module checks', () => {
    expect(unsupportedRules()).toEqual([]);
  });

  it('an unknown resource type is a programming error', () => {
    expect(() => validateResource(typeUrlOf('example.Nothing'), {})).toThrow(/unknown message type/);
  });
});
