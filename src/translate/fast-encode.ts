// Encoders for the exact shapes the builders produce in bulk: clusters.ts's
// buildCluster, buildMirrorCluster and buildClusterLoadAssignment, and routes.ts's
// buildVirtualHost. Each writes the bytes protobufjs writes for the same object (fields
// in field-number order, a present field written even when zero) and checks, as it
// goes, every PGV rule on the fields it writes, and the rules an absent field or oneof
// would break. Anything else (a key it does not know, a value of another type, a value
// a rule refuses) makes it answer undefined: the caller then takes the generic path
// (validateResource, then protobufjs), which reports problems as it always has. The
// fast path is never the one that explains a refusal. A test holds the two paths to
// equal bytes, and what the fast path accepts to validateResource.
import { envoyRoot } from '../xds/protos.js';
import { ProtoWriter } from '../xds/proto-writer.js';
import { TypeUrl } from '../xds/resources.js';
import { buildCluster } from './clusters.js';

type Obj = Record<string, unknown>;

const writer = new ProtoWriter();

/**
 * The encoded message of a Cluster or ClusterLoadAssignment in a shape this module
 * knows, after its checks; undefined otherwise. A view valid until the next call.
 */
export function fastMessage(typeUrl: string, object: Obj): Uint8Array | undefined {
  const w = writer;
  w.reset();
  const done = typeUrl === TypeUrl.Cluster ? cluster(w, object) : typeUrl === TypeUrl.ClusterLoadAssignment ? loadAssignment(w, object) : false;
  return done && w.ok ? w.view() : undefined;
}

/**
 * A virtual host as a RouteConfiguration carries it (field 2, length-delimited), in a
 * shape this module knows, after its checks; undefined otherwise. A view valid until
 * the next call. `clusters` receives the names of the clusters its routes send to (or
 * mirror to), in the order references.ts lists a route configuration's references.
 */
export function fastVirtualHostEntry(object: Obj, clusters: string[] = []): Uint8Array | undefined {
  const w = writer;
  w.reset();
  return writeVirtualHostEntry(w, object, clusters) ? w.view() : undefined;
}

/**
 * fastVirtualHostEntry's bytes appended to `w`, for a message assembled in one writer:
 * false (and `w` as it was) when the shape or a check says the generic path must
 * take it. `clusters` may then hold names of the part written.
 */
export function writeVirtualHostEntry(w: ProtoWriter, object: Obj, clusters: string[]): boolean {
  const start = w.pos;
  const mark = w.begin(2);
  if (virtualHost(w, object, clusters) && w.ok) {
    w.end(mark);
    return true;
  }
  w.rewind(start);
  return false;
}

// ---------------------------------------------------------------------------------
// Checks, as PGV states them for the fields below

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** `string.min_len: 1`: one code point at least, which any non-empty string has. */
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isUint32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

function keyCount(o: Obj): number {
  let n = 0;
  for (const _ in o) n++;
  return n;
}

/** `well_known_regex: HTTP_HEADER_NAME/VALUE, strict: false`: no NUL, CR or LF. */
function looseHeader(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13) return false;
  }
  return true;
}

/** `string.max_bytes: 16384` (a UTF-16 unit is at most 3 UTF-8 bytes). */
const within16k = (s: string): boolean => s.length <= 5461 || Buffer.byteLength(s, 'utf8') <= 16384;

/** Enum values by name, from the loaded protos; a name that is not there fails `defined_only`. */
let enumTables: Record<'discoveryType' | 'apiVersion' | 'appendAction' | 'denominator', Map<string, number>> | undefined;
function enums(): NonNullable<typeof enumTables> {
  const table = (name: string): Map<string, number> => new Map(Object.entries(envoyRoot().lookupEnum(name).values));
  enumTables ??= {
    discoveryType: table('envoy.config.cluster.v3.Cluster.DiscoveryType'),
    apiVersion: table('envoy.config.core.v3.ApiVersion'),
    appendAction: table('envoy.config.core.v3.HeaderValueOption.HeaderAppendAction'),
    denominator: table('envoy.type.v3.FractionalPercent.DenominatorType'),
  };
  return enumTables;
}

function enumField(w: ProtoWriter, field: number, table: Map<string, number>, v: unknown): boolean {
  const n = typeof v === 'string' ? table.get(v) : undefined;
  if (n === undefined) return false;
  w.uint(field, n);
  return true;
}

/** An empty message written as one (`ads: {}`, `locality: {}`). */
function emptyMessage(w: ProtoWriter, field: number, v: unknown): boolean {
  if (!isObj(v) || keyCount(v) !== 0) return false;
  w.end(w.begin(field));
  return true;
}

// ---------------------------------------------------------------------------------
// envoy.config.cluster.v3.Cluster

const MAX_DURATION_SECONDS = 315_576_000_000;

function cluster(w: ProtoWriter, c: Obj): boolean {
  let known = 0;
  // 1 name: min_len 1
  if (!nonEmpty(c.name)) return false;
  w.string(1, c.name);
  known++;
  // 2 type (oneof cluster_discovery_type): defined_only
  if (c.type !== undefined) {
    if (!enumField(w, 2, enums().discoveryType, c.type)) return false;
    known++;
  }
  // 3 eds_cluster_config
  if (c.eds_cluster_config !== undefined) {
    if (!edsClusterConfig(w, c.eds_cluster_config)) return false;
    known++;
  }
  // 4 connect_timeout: duration gt 0
  if (c.connect_timeout !== undefined) {
    if (!positiveDuration(w, 4, c.connect_timeout)) return false;
    known++;
  }
  // 36 typed_extension_protocol_options: map<string, Any>
  if (c.typed_extension_protocol_options !== undefined) {
    if (!protocolOptions(w, c.typed_extension_protocol_options)) return false;
    known++;
  }
  return known === keyCount(c);
}

function edsClusterConfig(w: ProtoWriter, v: unknown): boolean {
  if (!isObj(v)) return false;
  const mark = w.begin(3);
  let known = 1;
  if (!configSource(w, 1, v.eds_config)) return false;
  if (v.service_name !== undefined) {
    if (typeof v.service_name !== 'string') return false;
    w.string(2, v.service_name);
    known++;
  }
  w.end(mark);
  return known === keyCount(v);
}

/** A ConfigSource over ADS: `{ads: {}, resource_api_version}`; the oneof it sets is required. */
function configSource(w: ProtoWriter, field: number, v: unknown): boolean {
  if (!isObj(v)) return false;
  const mark = w.begin(field);
  let known = 1;
  if (!emptyMessage(w, 3, v.ads)) return false;
  if (v.resource_api_version !== undefined) {
    if (!enumField(w, 6, enums().apiVersion, v.resource_api_version)) return false;
    known++;
  }
  w.end(mark);
  return known === keyCount(v);
}

/** A google.protobuf.Duration of integer seconds and nanos, greater than zero. */
function positiveDuration(w: ProtoWriter, field: number, v: unknown): boolean {
  if (!isObj(v)) return false;
  const { seconds, nanos } = v;
  let known = 0;
  if (seconds !== undefined) {
    if (typeof seconds !== 'number' || !Number.isSafeInteger(seconds) || seconds < 0 || seconds > MAX_DURATION_SECONDS) return false;
    known++;
  }
  if (nanos !== undefined) {
    if (typeof nanos !== 'number' || !Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) return false;
    known++;
  }
  if (known !== keyCount(v) || (!seconds && !nanos)) return false;
  const mark = w.begin(field);
  if (seconds !== undefined) w.uint(1, seconds);
  if (nanos !== undefined) w.uint(2, nanos);
  w.end(mark);
  return true;
}

const HTTP_PROTOCOL_OPTIONS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HEADER_MUTATION = 'type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation';
const UPSTREAM_CODEC = 'type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec';

/** A mirror cluster's options: HttpProtocolOptions with upstream HTTP filters. */
function protocolOptions(w: ProtoWriter, v: unknown): boolean {
  if (!isObj(v)) return false;
  for (const key of Object.keys(v)) {
    const entry = w.begin(36);
    w.string(1, key);
    const any = w.begin(2);
    if (!httpProtocolOptions(w, v[key])) return false;
    w.end(any);
    w.end(entry);
  }
  return true;
}

/** An Any's `@type` (field 1); the payload's own fields follow in field 2. */
function anyPayload(w: ProtoWriter, typeUrl: string): number {
  w.string(1, typeUrl);
  return w.begin(2);
}

function httpProtocolOptions(w: ProtoWriter, v: unknown): boolean {
  if (!isObj(v) || v['@type'] !== HTTP_PROTOCOL_OPTIONS) return false;
  const payload = anyPayload(w, HTTP_PROTOCOL_OPTIONS);
  let known = 2;
  // 4 use_downstream_protocol_config (the required oneof upstream_protocol_options)
  if (!emptyMessage(w, 4, v.use_downstream_protocol_config)) return false;
  // 6 http_filters
  if (v.http_filters !== undefined) {
    if (!Array.isArray(v.http_filters)) return false;
    for (const filter of v.http_filters) if (!upstreamHttpFilter(w, filter)) return false;
    known++;
  }
  w.end(payload);
  return known === keyCount(v);
}

function upstreamHttpFilter(w: ProtoWriter, v: unknown): boolean {
  if (!isObj(v) || !nonEmpty(v.name) || !isObj(v.typed_config) || keyCount(v) !== 2) return false;
  const mark = w.begin(6);
  w.string(1, v.name);
  const config = v.typed_config;
  const any = w.begin(4);
  if (config['@type'] === UPSTREAM_CODEC) {
    if (keyCount(config) !== 1) return false;
    w.end(anyPayload(w, UPSTREAM_CODEC));
  } else if (config['@type'] === HEADER_MUTATION) {
    if (!headerMutationFilter(w, config)) return false;
  } else return false;
  w.end(any);
  w.end(mark);
  return true;
}

function headerMutationFilter(w: ProtoWriter, config: Obj): boolean {
  const payload = anyPayload(w, HEADER_MUTATION);
  let known = 1;
  // 1 mutations: { 1 request_mutations }
  if (config.mutations !== undefined) {
    const mutations = config.mutations;
    if (!isObj(mutations) || !Array.isArray(mutations.request_mutations) || keyCount(mutations) !== 1) return false;
    const mark = w.begin(1);
    for (const m of mutations.request_mutations) if (!headerMutation(w, m)) return false;
    w.end(mark);
    known++;
  }
  w.end(payload);
  return known === keyCount(config);
}

/** mutation_rules.v3.HeaderMutation: `remove` or `append`, one of them required. */
function headerMutation(w: ProtoWriter, v: unknown): boolean {
  if (!isObj(v) || keyCount(v) !== 1) return false;
  const mark = w.begin(1);
  if (v.remove !== undefined) {
    if (typeof v.remove !== 'string' || !looseHeader(v.remove)) return false;
    w.string(1, v.remove);
  } else if (v.append !== undefined) {
    if (!headerValueOption(w, 2, v.append)) return false;
  } else return false;
  w.end(mark);
  return true;
}

function headerValueOption(w: ProtoWriter, field: number, v: unknown): boolean {
  if (!isObj(v) || !isObj(v.header)) return false;
  const mark = w.begin(field);
  let known = 1;
  // 1 header: required; { 1 key: min_len 1, max_bytes, loose; 2 value: max_bytes, loose }
  const { key, value } = v.header;
  if (!nonEmpty(key) || !within16k(key) || !looseHeader(key)) return false;
  const header = w.begin(1);
  w.string(1, key);
  if (value !== undefined) {
    if (typeof value !== 'string' || !within16k(value) || !looseHeader(value)) return false;
    w.string(2, value);
  }
  if (keyCount(v.header) !== (value === undefined ? 1 : 2)) return false;
  w.end(header);
  // 3 append_action: defined_only
  if (v.append_action !== undefined) {
    if (!enumField(w, 3, enums().appendAction, v.append_action)) return false;
    known++;
  }
  w.end(mark);
  return known === keyCount(v);
}

// ---------------------------------------------------------------------------------
// envoy.config.endpoint.v3.ClusterLoadAssignment

function loadAssignment(w: ProtoWriter, c: Obj): boolean {
  let known = 1;
  // 1 cluster_name: min_len 1
  if (!nonEmpty(c.cluster_name)) return false;
  w.string(1, c.cluster_name);
  // 2 endpoints
  if (c.endpoints !== undefined) {
    if (!Array.isArray(c.endpoints)) return false;
    for (const group of c.endpoints) if (!localityEndpoints(w, group)) return false;
    known++;
  }
  return known === keyCount(c);
}

function localityEndpoints(w: ProtoWriter, v: unknown): boolean {
  if (!isObj(v)) return false;
  const mark = w.begin(2);
  let known = 0;
  // 1 locality: only the empty one
  if (v.locality !== undefined) {
    if (!emptyMessage(w, 1, v.locality)) return false;
    known++;
  }
  // 2 lb_endpoints
  if (v.lb_endpoints !== undefined) {
    if (!Array.isArray(v.lb_endpoints)) return false;
    for (const e of v.lb_endpoints) if (!lbEndpoint(w, e)) return false;
    known++;
  }
  // 3 load_balancing_weight: UInt32Value, gte 1
  if (v.load_balancing_weight !== undefined) {
    const weight = v.load_balancing_weight;
    if (!isObj(weight) || !isUint32(weight.value) || weight.value < 1 || keyCount(weight) !== 1) return false;
    const wrapper = w.begin(3);
    w.uint(1, weight.value);
    w.end(wrapper);
    known++;
  }
  w.end(mark);
  return known === keyCount(v);
}

/** `{endpoint: {address: {socket_address: {address, port_value}}}}`, each level's oneof set. */
function lbEndpoint(w: ProtoWriter, v: unknown): boolean {
  if (!isObj(v) || !isObj(v.endpoint) || keyCount(v) !== 1) return false;
  const endpoint = v.endpoint;
  if (!isObj(endpoint.address) || keyCount(endpoint) !== 1) return false;
  const address = endpoint.address;
  if (!isObj(address.socket_address) || keyCount(address) !== 1) return false;
  const socket = address.socket_address;
  // 2 address: min_len 1; 3 port_value (the required oneof port_specifier): lte 65535
  if (!nonEmpty(socket.address) || !isUint32(socket.port_value) || socket.port_value > 65535 || keyCount(socket) !== 2) return false;
  socketEndpoint(w, socket.address, socket.port_value);
  return true;
}

/** LocalityLbEndpoints.lb_endpoints entry: { endpoint { address { socket_address { address, port_value } } } }. */
function socketEndpoint(w: ProtoWriter, address: string, port: number): void {
  const lbEndpoint = w.begin(2);
  const endpoint = w.begin(1);
  const addressField = w.begin(1);
  const socketAddress = w.begin(1);
  w.string(2, address);
  w.uint(3, port);
  w.end(socketAddress);
  w.end(addressField);
  w.end(endpoint);
  w.end(lbEndpoint);
}

// ---------------------------------------------------------------------------------
// envoy.config.route.v3.VirtualHost

function virtualHost(w: ProtoWriter, v: Obj, clusters: string[]): boolean {
  let known = 2;
  // 1 name: min_len 1
  if (!nonEmpty(v.name)) return false;
  w.string(1, v.name);
  // 2 domains: min_items 1, each a loose header value
  const domains = v.domains;
  if (!Array.isArray(domains) || domains.length === 0) return false;
  for (const d of domains) {
    if (typeof d !== 'string' || !looseHeader(d)) return false;
    w.string(2, d);
  }
  // 3 routes
  if (v.routes !== undefined) {
    if (!Array.isArray(v.routes)) return false;
    for (const r of v.routes) if (!route(w, r, clusters)) return false;
    known++;
  }
  return known === keyCount(v);
}

function route(w: ProtoWriter, v: unknown, clusters: string[]): boolean {
  if (!isObj(v)) return false;
  const mark = w.begin(3);
  let known = 2;
  // 1 match: required
  if (!routeMatch(w, v.match)) return false;
  // 2 route | 7 direct_response: the required oneof action
  if (v.route !== undefined && v.direct_response === undefined) {
    if (!routeAction(w, v.route, clusters)) return false;
  } else if (v.direct_response !== undefined && v.route === undefined) {
    if (!directResponse(w, v.direct_response)) return false;
  } else return false;
  // 14 name
  if (v.name !== undefined) {
    if (typeof v.name !== 'string') return false;
    w.string(14, v.name);
    known++;
  }
  w.end(mark);
  return known === keyCount(v);
}

/** `{prefix, headers?}`: the prefix sets the required oneof path_specifier. */
function routeMatch(w: ProtoWriter, v: unknown): boolean {
  if (!isObj(v) || typeof v.prefix !== 'string') return false;
  const mark = w.begin(1);
  let known = 1;
  w.string(1, v.prefix);
  if (v.headers !== undefined) {
    if (!Array.isArray(v.headers)) return false;
    for (const h of v.headers) if (!headerMatcher(w, h)) return false;
    known++;
  }
  w.end(mark);
  return known === keyCount(v);
}

function headerMatcher(w: ProtoWriter, v: unknown): boolean {
  if (!isObj(v)) return false;
  const mark = w.begin(6);
  let known = 1;
  // 1 name: min_len 1, loose header name
  if (!nonEmpty(v.name) || !looseHeader(v.name)) return false;
  w.string(1, v.name);
  // 7 present_match | 13 string_match: at most one (the oneof is not required)
  if (v.present_match !== undefined && v.string_match !== undefined) return false;
  if (v.present_match !== undefined) {
    if (typeof v.present_match !== 'boolean') return false;
    w.bool(7, v.present_match);
    known++;
  }
  // 8 invert_match
  if (v.invert_match !== undefined) {
    if (typeof v.invert_match !== 'boolean') return false;
    w.bool(8, v.invert_match);
    known++;
  }
  if (v.string_match !== undefined) {
    if (!stringMatcher(w, 13, v.string_match)) return false;
    known++;
  }
  w.end(mark);
  return known === keyCount(v);
}

/** One of `exact`, `prefix` (min_len 1) or `safe_regex` (`regex` min_len 1): the required oneof. */
function stringMatcher(w: ProtoWriter, field: number, v: unknown): boolean {
  if (!isObj(v) || keyCount(v) !== 1) return false;
  const mark = w.begin(field);
  if (v.exact !== undefined) {
    if (typeof v.exact !== 'string') return false;
    w.string(1, v.exact);
  } else if (v.prefix !== undefined) {
    if (!nonEmpty(v.prefix)) return false;
    w.string(2, v.prefix);
  } else if (v.safe_regex !== undefined) {
    const regex = v.safe_regex;
    if (!isObj(regex) || !nonEmpty(regex.regex) || keyCount(regex) !== 1) return false;
    const inner = w.begin(5);
    w.string(2, regex.regex);
    w.end(inner);
  } else return false;
  w.end(mark);
  return true;
}

function routeAction(w: ProtoWriter, v: unknown, clusters: string[]): boolean {
  if (!isObj(v)) return false;
  const mark = w.begin(2);
  let known = 1;
  // 1 cluster (min_len 1) | 3 weighted_clusters: the required oneof cluster_specifier
  if (v.cluster !== undefined && v.weighted_clusters === undefined) {
    if (!nonEmpty(v.cluster)) return false;
    w.string(1, v.cluster);
    clusters.push(v.cluster);
  } else if (v.weighted_clusters !== undefined && v.cluster === undefined) {
    if (!weightedClusters(w, v.weighted_clusters, clusters)) return false;
  } else return false;
  // 30 request_mirror_policies
  if (v.request_mirror_policies !== undefined) {
    if (!Array.isArray(v.request_mirror_policies)) return false;
    for (const p of v.request_mirror_policies) if (!mirrorPolicy(w, p, clusters)) return false;
    known++;
  }
  w.end(mark);
  return known === keyCount(v);
}

/** `{clusters: [{name, weight: {value}}]}`: clusters min_items 1. */
function weightedClusters(w: ProtoWriter, v: unknown, clusters: string[]): boolean {
  if (!isObj(v) || !Array.isArray(v.clusters) || v.clusters.length === 0 || keyCount(v) !== 1) return false;
  const mark = w.begin(3);
  for (const c of v.clusters) {
    if (!isObj(c) || typeof c.name !== 'string' || !isObj(c.weight) || keyCount(c) !== 2) return false;
    const { value } = c.weight;
    if (!isUint32(value) || keyCount(c.weight) !== 1) return false;
    const entry = w.begin(1);
    w.string(1, c.name);
    if (c.name !== '') clusters.push(c.name);
    const weight = w.begin(2);
    w.uint(1, value);
    w.end(weight);
    w.end(entry);
  }
  w.end(mark);
  return true;
}

/** `{cluster, runtime_fraction: {default_value: {numerator, denominator}}}`. */
function mirrorPolicy(w: ProtoWriter, v: unknown, clusters: string[]): boolean {
  if (!isObj(v) || typeof v.cluster !== 'string' || !isObj(v.runtime_fraction) || keyCount(v) !== 2) return false;
  const fraction = v.runtime_fraction;
  // default_value: required
  const value = fraction.default_value;
  if (!isObj(value) || keyCount(fraction) !== 1) return false;
  const { numerator, denominator } = value;
  if ((numerator !== undefined ? 1 : 0) + (denominator !== undefined ? 1 : 0) !== keyCount(value)) return false;
  if (numerator !== undefined && !isUint32(numerator)) return false;
  const mark = w.begin(30);
  w.string(1, v.cluster);
  if (v.cluster !== '') clusters.push(v.cluster);
  const runtime = w.begin(3);
  const percent = w.begin(1);
  if (numerator !== undefined) w.uint(1, numerator);
  // denominator: defined_only
  if (denominator !== undefined && !enumField(w, 2, enums().denominator, denominator)) return false;
  w.end(percent);
  w.end(runtime);
  w.end(mark);
  return true;
}

/** `{status}`: gte 200, lt 600. */
function directResponse(w: ProtoWriter, v: unknown): boolean {
  if (!isObj(v) || !isUint32(v.status) || v.status < 200 || v.status >= 600 || keyCount(v) !== 1) return false;
  const mark = w.begin(7);
  w.uint(1, v.status);
  w.end(mark);
  return true;
}

// ---------------------------------------------------------------------------------
// A subset's cluster and endpoints, straight from the subset: no objects are built for
// the 20,000 of each a 10,000-service registry makes. The bytes are those the shapes
// above give for buildCluster(subset) and buildClusterLoadAssignment(subset) (a test
// holds them equal), with the same checks.

/** Everything of buildCluster's message after its name: the same for every subset. */
let clusterTail: Uint8Array | undefined;

function subsetClusterTail(): Uint8Array {
  if (!clusterTail) {
    const bytes = fastMessage(TypeUrl.Cluster, { ...buildCluster({ service: 'x', name: 'stable', instances: [] }), name: 'x' });
    if (!bytes) throw new Error('the subset cluster template does not encode');
    clusterTail = Uint8Array.from(bytes.subarray(3)); // after field 1: tag, length 1, "x"
  }
  return clusterTail;
}

/** The Cluster message of a subset's cluster named `name`; a view valid until the next call. */
export function subsetClusterMessage(name: string): Uint8Array | undefined {
  if (name.length === 0) return undefined;
  const tail = subsetClusterTail(); // first: making it uses the writer
  const w = writer;
  w.reset();
  w.string(1, name);
  w.raw(tail);
  return w.ok ? w.view() : undefined;
}

interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * The ClusterLoadAssignment message of a subset's endpoints: one locality group (empty
 * locality, weight 1) with every instance, or no group without instances; undefined
 * when an address is empty or a port out of range. A view valid until the next call.
 */
export function subsetEndpointsMessage(name: string, endpoints: readonly Endpoint[]): Uint8Array | undefined {
  if (name.length === 0) return undefined;
  const w = writer;
  w.reset();
  w.string(1, name);
  if (endpoints.length > 0) {
    const group = w.begin(2);
    const locality = w.begin(1);
    w.end(locality);
    for (const e of endpoints) {
      if (!nonEmpty(e.address) || !isUint32(e.port) || e.port > 65535) return undefined;
      socketEndpoint(w, e.address, e.port);
    }
    const weight = w.begin(3);
    w.uint(1, 1);
    w.end(weight);
    w.end(group);
  }
  return w.ok ? w.view() : undefined;
}
