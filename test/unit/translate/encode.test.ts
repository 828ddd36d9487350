// The fast path of checkedResource (fast-encode.ts) against the generic one
// (validateResource, then protobufjs): equal bytes for what it accepts, everything it
// accepts passes validateResource, and what it does not know or would refuse goes the
// generic way, with the generic path's errors.
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import type { Mirror } from '../../../src/model/rules.js';
import type { Instance, Subset } from '../../../src/model/types.js';
import { buildCluster, buildClusterLoadAssignment, buildMirrorCluster } from '../../../src/translate/clusters.js';
import { EnvoyConstraintError, checkedResource, subsetResources } from '../../../src/translate/encode.js';
import { fastMessage, fastVirtualHostEntry } from '../../../src/translate/fast-encode.js';
import { translateForProxy, translateShared, type TypedObject } from '../../../src/translate/translate.js';
import { validateResource } from '../../../src/xds/pgv.js';
import { Resource } from '../../../src/xds/resource.js';
import { TypeUrl, decodeMessage, encodeMessage, unpackAny, type ResourceObject, type ResourceTypeUrl } from '../../../src/xds/resources.js';
import { casePaths, listGoldenCases, parseGoldenInput } from '../../helpers/golden.js';

const VIRTUAL_HOST = 'type.googleapis.com/envoy.config.route.v3.VirtualHost';

const hex = (b: Uint8Array | undefined): string | undefined => (b ? Buffer.from(b).toString('hex') : undefined);

/** The fast path's bytes equal protobufjs's, and validateResource has nothing against them. */
function expectFast(typeUrl: ResourceTypeUrl, object: ResourceObject): void {
  expect(hex(fastMessage(typeUrl, object))).toBe(hex(encodeMessage(typeUrl, object)));
  expect(validateResource(typeUrl, object)).toEqual([]);
  expect(hex(checkedResource(typeUrl, object).any)).toBe(hex(Resource.fromObject(typeUrl, object).any));
}

/** The fast path declines; checkedResource does what the generic path does. */
function expectGeneric(typeUrl: ResourceTypeUrl, object: ResourceObject): void {
  expect(fastMessage(typeUrl, object)).toBeUndefined();
  expectSameOutcome(typeUrl, object);
}

function expectSameOutcome(typeUrl: ResourceTypeUrl, object: ResourceObject): void {
  const violations = validateResource(typeUrl, object);
  if (violations.length > 0) {
    let problems: string[] = [];
    try {
      checkedResource(typeUrl, object);
    } catch (err) {
      expect(err).toBeInstanceOf(EnvoyConstraintError);
      problems = (err as EnvoyConstraintError).problems;
    }
    expect(problems).toHaveLength(violations.length);
    violations.forEach((v, i) => expect(problems[i]!.endsWith(`: ${v.path}: ${v.message} (${v.rule})`)).toBe(true));
    return;
  }
  let expected: string | undefined;
  try {
    expected = hex(Resource.fromObject(typeUrl, object).any);
  } catch (err) {
    expect(() => checkedResource(typeUrl, object)).toThrow((err as Error).message);
    return;
  }
  expect(hex(checkedResource(typeUrl, object).any)).toBe(expected);
}

const instance = (address: string, port: number): Instance => ({ id: `${address}:${port}`, address, port, tags: [], meta: {} });
const subset = (service: string, name: string, instances: Instance[] = []): Subset => ({ service, name, instances });

const mirror = (overrides: Partial<Mirror> = {}): Mirror => ({
  name: 'shadow-10',
  to: { service: 'api', subset: 'shadow' },
  percent: 10,
  methods: ['GET'],
  marker_header: 'x-shadowplane-mirror',
  remove_headers: [],
  ...overrides,
});

const NAMES = ['api', 'a', 'café', 'サービス', 'rocket-🚀', 'x'.repeat(127), 'y'.repeat(128), 'z'.repeat(300), 'dash-ed.dot_ted'];

describe('fast Cluster encoding', () => {
  it.each(NAMES.flatMap((service) => ['stable', 'beta', 'dev-ünï'].map((name) => [service, name] as const)))('buildCluster(%s, %s)', (service, name) => {
    expectFast(TypeUrl.Cluster, buildCluster(subset(service, name)));
  });

  const EDS = { eds_config: { ads: {}, resource_api_version: 'V3' } };
  const variants: [string, ResourceObject][] = [
    ['no type', { name: 'a', eds_cluster_config: EDS, connect_timeout: { seconds: 1 } }],
    ['STATIC (enum zero)', { name: 'a', type: 'STATIC' }],
    ['only a name', { name: 'a' }],
    ['a service name', { name: 'a', type: 'EDS', eds_cluster_config: { ...EDS, service_name: 'b' } }],
    ['an empty service name', { name: 'a', type: 'EDS', eds_cluster_config: { ...EDS, service_name: '' } }],
    ['no API version', { name: 'a', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } }],
    ['API version AUTO', { name: 'a', type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'AUTO' } } }],
    ['nanos only', { name: 'a', connect_timeout: { nanos: 1 } }],
    ['seconds and nanos', { name: 'a', connect_timeout: { seconds: 2, nanos: 999_999_999 } }],
    ['zero seconds, some nanos', { name: 'a', connect_timeout: { seconds: 0, nanos: 5 } }],
    ['seconds above 2^32', { name: 'a', connect_timeout: { seconds: 315_576_000_000 } }],
    ['seconds of 128', { name: 'a', connect_timeout: { seconds: 128 } }],
  ];
  it.each(variants)('%s', (_, object) => expectFast(TypeUrl.Cluster, object));

  const mirrors: [string, Mirror][] = [
    ['no headers removed', mirror()],
    ['one header removed', mirror({ remove_headers: ['authorization'] })],
    ['many headers removed', mirror({ remove_headers: ['authorization', 'cookie', 'x-ünïcode', 'x'.repeat(200)] })],
    ['a unicode mirror name', mirror({ name: 'spiegel-ü-🚀' })],
    ['another target', mirror({ to: { service: 'replay', subset: 'stable' }, marker_header: 'x-replay' })],
  ];
  it.each(mirrors)('buildMirrorCluster: %s', (_, m) => expectFast(TypeUrl.Cluster, buildMirrorCluster(m)));

  const fallbacks: [string, ResourceObject][] = [
    ['an unknown key', { name: 'a', type: 'EDS', lb_policy: 'ROUND_ROBIN' }],
    ['a key set to undefined', { name: 'a', type: undefined }],
    ['a null field', { name: 'a', type: null }],
    ['an empty name', { name: '', type: 'EDS' }],
    ['no name', { type: 'EDS' }],
    ['a numeric name', { name: 5 }],
    ['a lone surrogate in the name', { name: 'a\uD800b' }],
    ['a lone low surrogate in the service name', { name: 'a', eds_cluster_config: { ...EDS, service_name: '\uDC00' } }],
    ['an enum name that is not one', { name: 'a', type: 'EDSX' }],
    ['an enum by number', { name: 'a', type: 3 }],
    ['a zero timeout', { name: 'a', connect_timeout: { seconds: 0 } }],
    ['an empty timeout', { name: 'a', connect_timeout: {} }],
    ['a negative timeout', { name: 'a', connect_timeout: { seconds: -1 } }],
    ['a fractional timeout', { name: 'a', connect_timeout: { seconds: 1.5 } }],
    ['a timeout as a string', { name: 'a', connect_timeout: { seconds: '1' } }],
    ['a timeout in proto JSON', { name: 'a', connect_timeout: '1s' }],
    ['nanos out of range', { name: 'a', connect_timeout: { nanos: 1_000_000_000 } }],
    ['a config source by path', { name: 'a', type: 'EDS', eds_cluster_config: { eds_config: { path: '/x' } } }],
    ['an ads with fields', { name: 'a', type: 'EDS', eds_cluster_config: { eds_config: { ads: { x: 1 } } } }],
    ['an unknown API version', { name: 'a', type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V4' } } }],
    ['no config source', { name: 'a', type: 'EDS', eds_cluster_config: {} }],
    ['a JWKS cluster', { name: 'a', type: 'LOGICAL_DNS', load_assignment: { cluster_name: 'a' } }],
  ];
  it.each(fallbacks)('declines %s', (_, object) => expectGeneric(TypeUrl.Cluster, object));

  const protocolOptions = (cluster: ResourceObject, change: (options: ResourceObject) => void): ResourceObject => {
    const copy = structuredClone(cluster);
    const options = Object.values(copy.typed_extension_protocol_options as Record<string, ResourceObject>)[0]!;
    change(options);
    return copy;
  };
  const mutations = (options: ResourceObject): ResourceObject[] =>
    ((options.http_filters as ResourceObject[])[0]!.typed_config as { mutations: { request_mutations: ResourceObject[] } }).mutations.request_mutations;
  const base = buildMirrorCluster(mirror({ remove_headers: ['cookie'] }));
  const mirrorFallbacks: [string, ResourceObject][] = [
    ['a marker header with a newline', buildMirrorCluster(mirror({ marker_header: 'x-a\nb' }))],
    ['an empty marker header', buildMirrorCluster(mirror({ marker_header: '' }))],
    ['a marker value with NUL', buildMirrorCluster(mirror({ name: 'a\u0000b' }))],
    ['a removed header with CR', buildMirrorCluster(mirror({ remove_headers: ['a\rb'] }))],
    ['a marker header over 16 KiB', buildMirrorCluster(mirror({ marker_header: 'é'.repeat(8193) }))],
    ['an unknown append action', protocolOptions(base, (o) => ((mutations(o)[0]!.append as ResourceObject).append_action = 'APPEND_SOMETIMES'))],
    ['a mutation with both actions', protocolOptions(base, (o) => (mutations(o)[1]!.append = mutations(o)[0]!.append))],
    ['an empty mutation', protocolOptions(base, (o) => mutations(o).push({}))],
    ['an unknown filter type', protocolOptions(base, (o) => (((o.http_filters as ResourceObject[])[1]!.typed_config as ResourceObject)['@type'] = 'type.googleapis.com/x.Y'))],
    ['a filter with no name', protocolOptions(base, (o) => ((o.http_filters as ResourceObject[])[0]!.name = ''))],
    ['no protocol selection', protocolOptions(base, (o) => delete o.use_downstream_protocol_config)],
    ['explicit HTTP/2', protocolOptions(base, (o) => ((o.use_downstream_protocol_config as ResourceObject).http2_protocol_options = {}))],
  ];
  it.each(mirrorFallbacks)('declines a mirror cluster with %s', (_, object) => expectGeneric(TypeUrl.Cluster, object));
});

describe('fast ClusterLoadAssignment encoding', () => {
  const ADDRESSES = ['10.0.0.1', '::1', '2001:db8::ff00:42:8329', 'fe80::1%eth0', 'host.example', 'ünï.example'];
  const PORTS = [0, 1, 80, 127, 128, 8080, 16_383, 16_384, 65_535];
  it.each([0, 1, 2, 7])('buildClusterLoadAssignment with %i instances', (count) => {
    const instances = Array.from({ length: count }, (_, i) => instance(ADDRESSES[i % ADDRESSES.length]!, PORTS[i % PORTS.length]!));
    expectFast(TypeUrl.ClusterLoadAssignment, buildClusterLoadAssignment(subset('api', 'beta', instances)));
  });
  it.each(PORTS)('port %i', (port) => expectFast(TypeUrl.ClusterLoadAssignment, buildClusterLoadAssignment(subset('api', 'stable', [instance('::1', port)]))));
  it.each(NAMES)('cluster %s', (service) => expectFast(TypeUrl.ClusterLoadAssignment, buildClusterLoadAssignment(subset(service, 'stable', [instance('10.1.2.3', 80)]))));

  const endpoint = (socket: ResourceObject): ResourceObject => ({ endpoint: { address: { socket_address: socket } } });
  const group = (fields: ResourceObject): ResourceObject => ({ cluster_name: 'a', endpoints: [fields] });
  const variants: [string, ResourceObject][] = [
    ['no endpoints field', { cluster_name: 'a' }],
    ['a group without locality or weight', group({ lb_endpoints: [endpoint({ address: 'h', port_value: 1 })] })],
    ['a group without endpoints', group({ locality: {} })],
    ['an empty group', group({})],
    ['a weight of 7', group({ load_balancing_weight: { value: 7 }, lb_endpoints: [] })],
    ['a large weight', group({ load_balancing_weight: { value: 0xffffffff } })],
    ['several groups', { cluster_name: 'a', endpoints: [{ locality: {} }, { lb_endpoints: [endpoint({ address: 'x', port_value: 2 })] }] }],
  ];
  it.each(variants)('%s', (_, object) => expectFast(TypeUrl.ClusterLoadAssignment, object));

  const fallbacks: [string, ResourceObject][] = [
    ['port 65536', group({ lb_endpoints: [endpoint({ address: 'h', port_value: 65_536 })] })],
    ['a negative port', group({ lb_endpoints: [endpoint({ address: 'h', port_value: -1 })] })],
    ['a fractional port', group({ lb_endpoints: [endpoint({ address: 'h', port_value: 1.5 })] })],
    ['a port as a string', group({ lb_endpoints: [endpoint({ address: 'h', port_value: '80' })] })],
    ['no port', group({ lb_endpoints: [endpoint({ address: 'h' })] })],
    ['a named port', group({ lb_endpoints: [endpoint({ address: 'h', named_port: 'http' })] })],
    ['an empty address', group({ lb_endpoints: [endpoint({ address: '', port_value: 1 })] })],
    ['a protocol', group({ lb_endpoints: [endpoint({ address: 'h', port_value: 1, protocol: 'UDP' })] })],
    ['a weight of 0', group({ load_balancing_weight: { value: 0 } })],
    ['a bare weight', group({ load_balancing_weight: 3 })],
    ['a priority', group({ priority: 1 })],
    ['a locality with a zone', group({ locality: { zone: 'z' } })],
    ['an endpoint name', group({ lb_endpoints: [{ endpoint_name: 'e' }] })],
    ['a health status', group({ lb_endpoints: [{ ...endpoint({ address: 'h', port_value: 1 }), health_status: 'HEALTHY' }] })],
    ['a pipe', group({ lb_endpoints: [{ endpoint: { address: { pipe: { path: '/p' } } } }] })],
    ['endpoints that are not a list', { cluster_name: 'a', endpoints: {} }],
    ['a null group', { cluster_name: 'a', endpoints: [null] }],
    ['no cluster name', { endpoints: [] }],
  ];
  it.each(fallbacks)('declines %s', (_, object) => expectGeneric(TypeUrl.ClusterLoadAssignment, object));
});

/** Every golden case's translation: shared resources and each proxy's own. */
function goldenObjects(): [string, TypedObject][] {
  const out: [string, TypedObject][] = [];
  for (const name of listGoldenCases().cases) {
    const golden = parseGoldenInput(name, readFileSync(casePaths(name).input, 'utf8'));
    for (const o of translateShared(golden.model)) out.push([name, o]);
    for (const p of golden.proxies) for (const o of translateForProxy(golden.model, p.key)) out.push([`${name} ${p.cluster}`, o]);
  }
  return out;
}

describe('the translator through checkedResource', () => {
  const objects = goldenObjects();

  it('gives the bytes of the generic path for every golden case', () => {
    for (const [, o] of objects) {
      const fast = checkedResource(o.typeUrl, o.object);
      const generic = Resource.fromObject(o.typeUrl, o.object);
      expect(hex(fast.any)).toBe(hex(generic.any));
      expect(fast.references).toEqual(generic.references);
    }
  });

  it('takes the fast path for every cluster, endpoint set and virtual host the builders make in bulk', () => {
    for (const [where, { typeUrl, object }] of objects) {
      if (typeUrl === TypeUrl.ClusterLoadAssignment || (typeUrl === TypeUrl.Cluster && object.type === 'EDS')) {
        expect(fastMessage(typeUrl, object), `${where}: ${String(object.name ?? object.cluster_name)}`).toBeDefined();
      }
      if (typeUrl === TypeUrl.RouteConfiguration && !where.includes('access')) {
        for (const vhost of object.virtual_hosts as ResourceObject[]) {
          const entry = fastVirtualHostEntry(vhost);
          expect(entry, `${where}: ${String(vhost.name)}`).toBeDefined();
          expect(validateResource(VIRTUAL_HOST, vhost)).toEqual([]);
          expect(hex(entry)).toBe(hex(protobuf.Writer.create().uint32((2 << 3) | 2).bytes(encodeMessage(VIRTUAL_HOST, vhost)).finish()));
        }
      }
    }
  });
});

describe('route configurations', () => {
  const vhost = (name: string, routes: ResourceObject[]): ResourceObject => ({ name, domains: [name, `${name}:*`], routes });
  const toCluster = (cluster: string, extra: ResourceObject = {}): ResourceObject => ({ name: cluster, match: { prefix: '/' }, route: { cluster }, ...extra });
  const config = (...vhosts: ResourceObject[]): ResourceObject => ({ name: 'edge_10000', virtual_hosts: vhosts });

  const accepted: [string, ResourceObject][] = [
    ['no virtual hosts', config()],
    ['one route', config(vhost('api', [toCluster('api.stable')]))],
    ['no routes field', config({ name: 'api', domains: ['*'] })],
    [
      'every matcher and action the builders write',
      config(
        vhost('api', [
          {
            name: 'r1',
            match: {
              prefix: '/v1/',
              headers: [
                { name: 'x-a', string_match: { exact: '' }, invert_match: false },
                { name: 'x-b', string_match: { prefix: 'p' }, invert_match: true },
                { name: ':method', string_match: { safe_regex: { regex: '^(GET|HEAD)$' } }, invert_match: false },
                { name: 'x-c', present_match: true },
                { name: 'x-d', present_match: false },
              ],
            },
            route: {
              weighted_clusters: { clusters: [{ name: 'api.a', weight: { value: 1 } }, { name: 'api.b', weight: { value: 99 } }] },
              request_mirror_policies: [
                { cluster: 'api.shadow', runtime_fraction: { default_value: { numerator: 50_000, denominator: 'MILLION' } } },
                { cluster: 'replay', runtime_fraction: { default_value: { numerator: 1, denominator: 'HUNDRED' } } },
              ],
            },
          },
          { name: 'stand-in', match: { prefix: '/', headers: [{ name: ':method', string_match: { safe_regex: { regex: '^(GET)$' } }, invert_match: true }] }, direct_response: { status: 405 } },
          toCluster('api.stable'),
        ]),
        vhost('ünï-🚀', [toCluster('ünï-🚀.stable')]),
      ),
    ],
    ['a long virtual host (multi-byte lengths)', config(vhost('big', Array.from({ length: 300 }, (_, i) => toCluster(`big.c${i}`))))],
  ];
  it.each(accepted)('%s: the assembled bytes are the generic bytes', (_, object) => {
    expect(validateResource(TypeUrl.RouteConfiguration, object)).toEqual([]);
    const resource = checkedResource(TypeUrl.RouteConfiguration, object);
    const generic = Resource.fromObject(TypeUrl.RouteConfiguration, object);
    expect(hex(resource.any)).toBe(hex(generic.any));
    expect(resource.version).toBe(generic.version);
    expect(resource.references).toEqual(generic.references);
    expect(unpackAny(resource.any).object).toEqual(decodeMessage(TypeUrl.RouteConfiguration, encodeMessage(TypeUrl.RouteConfiguration, object)));
  });

  it('takes shapes the fast path does not know through the generic path, host by host', () => {
    const object = config(vhost('api', [toCluster('api.stable')]), { ...vhost('web', [toCluster('web.stable')]), include_request_attempt_count: true });
    expect(fastVirtualHostEntry((object.virtual_hosts as ResourceObject[])[1]!)).toBeUndefined();
    expect(hex(checkedResource(TypeUrl.RouteConfiguration, object).any)).toBe(hex(Resource.fromObject(TypeUrl.RouteConfiguration, object).any));
  });

  it('reports a bad virtual host with its full path, every time it is given', () => {
    const bad = { name: 'web', domains: [], routes: [toCluster('web.stable', { direct_response: { status: 600 } })] };
    const object = config(vhost('api', [toCluster('api.stable')]), bad);
    for (let i = 0; i < 2; i++) {
      expect(() => checkedResource(TypeUrl.RouteConfiguration, object)).toThrow(
        [
          'translation produced configuration Envoy would reject:',
          '  - RouteConfiguration "edge_10000", "web": virtual_hosts[1].domains: must have at least 1 item (repeated.min_items)',
          '  - RouteConfiguration "edge_10000", "web.stable": virtual_hosts[1].routes[0].direct_response.status: must be in range [200, 600) (got 600) (uint32.lt)',
        ].join('\n'),
      );
    }
  });

  const declined: [string, ResourceObject][] = [
    ['an empty domain list', { name: 'a', domains: [], routes: [] }],
    ['a domain with a newline', { name: 'a', domains: ['a\nb'] }],
    ['no name', { domains: ['a'] }],
    ['no match', { name: 'a', domains: ['a'], routes: [{ route: { cluster: 'c' } }] }],
    ['a path match', { name: 'a', domains: ['a'], routes: [{ match: { path: '/x' }, route: { cluster: 'c' } }] }],
    ['no action', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/' } }] }],
    ['two actions', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' }, direct_response: { status: 200 } }] }],
    ['an empty cluster', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/' }, route: { cluster: '' } }] }],
    ['a cluster and a split', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', weighted_clusters: { clusters: [{ name: 'c', weight: { value: 1 } }] } } }] }],
    ['an empty split', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [] } } }] }],
    ['status 600', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/' }, direct_response: { status: 600 } }] }],
    ['status 199', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/' }, direct_response: { status: 199 } }] }],
    ['a header name with CR', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/', headers: [{ name: 'x\r', present_match: true }] }, route: { cluster: 'c' } }] }],
    ['an empty header prefix', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/', headers: [{ name: 'x', string_match: { prefix: '' } }] }, route: { cluster: 'c' } }] }],
    ['an empty regex', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/', headers: [{ name: 'x', string_match: { safe_regex: { regex: '' } } }] }, route: { cluster: 'c' } }] }],
    ['two matchers in one', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/', headers: [{ name: 'x', present_match: true, string_match: { exact: 'y' } }] }, route: { cluster: 'c' } }] }],
    ['an unknown denominator', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', request_mirror_policies: [{ cluster: 'm', runtime_fraction: { default_value: { numerator: 1, denominator: 'BILLION' } } }] } }] }],
    ['a mirror without fraction', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', request_mirror_policies: [{ cluster: 'm' }] } }] }],
    ['a weight as a number', { name: 'a', domains: ['a'], routes: [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'c', weight: 1 }] } } }] }],
    ['a lone surrogate', { name: 'a\uDBFF', domains: ['a'] }],
  ];
  it.each(declined)('declines a virtual host with %s, and checkedResource does what the generic path does', (_, bad) => {
    expect(fastVirtualHostEntry(bad)).toBeUndefined();
    expectSameOutcome(TypeUrl.RouteConfiguration, config(vhost('api', [toCluster('api.stable')]), bad));
  });

  it('takes a configuration with more than a name and virtual hosts through the generic path', () => {
    const object = { ...config(vhost('api', [toCluster('api.stable')])), validate_clusters: { value: false } };
    expectSameOutcome(TypeUrl.RouteConfiguration, object);
    expect(() => checkedResource(TypeUrl.RouteConfiguration, { name: '', virtual_hosts: [] })).toThrow(/has no name/);
  });
});

describe('generated inputs', () => {
  // A small deterministic generator: strings from a mix of ASCII, multi-byte characters,
  // surrogate pairs, lone surrogates and control characters; numbers around the edges.
  let seed = 42;
  /** An integer in [0, n), from a 32-bit xorshift. */
  const next = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const GOOD = ['a', 'z', '-', '.', ':', '/', 'é', 'ß', '中', '🚀', '\t', ' '];
  const BAD = ['\uD800', '\uDFFF', '\n', '\r', '\u0000'];
  const char = (): string => (next(40) === 0 ? BAD[next(BAD.length)]! : GOOD[next(GOOD.length)]!);
  const text = (): string => Array.from({ length: next(4) === 0 ? next(200) : next(6) }, char).join('');
  const NUMBERS = [-1, 0, 1, 2, 127, 128, 199, 200, 599, 600, 65_535, 65_536, 0xffffffff, 2 ** 32, 1.5, Number.NaN];
  const number = (): number => NUMBERS[next(NUMBERS.length)]!;
  const maybe = <T>(v: () => T): T | undefined => (next(3) === 0 ? undefined : v());

  it('Cluster and ClusterLoadAssignment: fast bytes equal generic bytes; otherwise the outcome is the generic one', () => {
    let fast = 0;
    for (let i = 0; i < 1500; i++) {
      const cluster: ResourceObject = { name: text(), type: maybe(() => ['EDS', 'STATIC', 'NOPE'][next(3)]), connect_timeout: maybe(() => ({ seconds: number() })) };
      for (const k of Object.keys(cluster)) if (cluster[k] === undefined) delete cluster[k];
      const cla: ResourceObject = {
        cluster_name: text(),
        endpoints: Array.from({ length: next(3) }, () => ({
          lb_endpoints: Array.from({ length: next(3) }, () => ({ endpoint: { address: { socket_address: { address: text(), port_value: number() } } } })),
        })),
      };
      for (const [typeUrl, object] of [[TypeUrl.Cluster, cluster], [TypeUrl.ClusterLoadAssignment, cla]] as const) {
        if (fastMessage(typeUrl, object)) {
          fast++;
          expectFast(typeUrl, object);
        } else expectSameOutcome(typeUrl, object);
      }
    }
    // Both paths see a fair share of the inputs.
    expect(fast).toBeGreaterThan(300);
    expect(fast).toBeLessThan(2700);
  });

  it('virtual hosts: fast entries pass validateResource and equal the generic encoding', () => {
    let fast = 0;
    for (let i = 0; i < 3000; i++) {
      const vhost: ResourceObject = {
        name: text(),
        domains: Array.from({ length: next(5) === 0 ? 0 : 1 }, text),
        routes: Array.from({ length: next(3) }, () => ({
          name: text(),
          match: { prefix: text(), headers: Array.from({ length: next(2) }, () => ({ name: text(), string_match: { exact: text() }, invert_match: next(2) === 0 })) },
          ...[
            () => ({ route: { cluster: text() } }),
            () => ({ route: { weighted_clusters: { clusters: Array.from({ length: next(3) }, () => ({ name: text(), weight: { value: number() } })) } } }),
            () => ({
              route: {
                cluster: text(),
                request_mirror_policies: Array.from({ length: next(3) }, () => ({ cluster: text(), runtime_fraction: { default_value: { numerator: number(), denominator: 'MILLION' } } })),
              },
            }),
            () => ({ direct_response: { status: number() } }),
          ][next(4)]!(),
        })),
      };
      const object = { name: 'rc', virtual_hosts: [vhost] };
      const entry = fastVirtualHostEntry(vhost);
      if (entry) {
        fast++;
        expect(validateResource(VIRTUAL_HOST, vhost)).toEqual([]);
        const resource = checkedResource(TypeUrl.RouteConfiguration, object);
        expect(hex(resource.any)).toBe(hex(Resource.fromObject(TypeUrl.RouteConfiguration, object).any));
        expect(resource.references).toEqual(Resource.fromObject(TypeUrl.RouteConfiguration, object).references);
      } else expectSameOutcome(TypeUrl.RouteConfiguration, object);
    }
    expect(fast).toBeGreaterThan(300);
    expect(fast).toBeLessThan(2700);
  });
});

describe('subsets written straight to bytes', () => {
  const inst = (id: string, address: string, port: number): Instance => ({ id, address, port, tags: [], meta: {} });
  const cases: Subset[] = [
    { service: 'api', name: 'stable', instances: [] },
    { service: 'api', name: 'beta', instances: [inst('a', '10.0.0.1', 8080)] },
    { service: 'ünïcode-svc', name: 'dev-laptop-1', instances: [inst('a', '::1', 0), inst('b', 'fe80::1', 65535), inst('c', 'host.example', 1)] },
    { service: 's'.repeat(300), name: 'canary', instances: Array.from({ length: 40 }, (_, i) => inst(`i${i}`, `10.0.${i}.1`, 1000 + i)) },
  ];

  it.each(cases.map((c) => [`${c.service.slice(0, 20)}.${c.name}`, c] as const))('%s: the bytes, names and references of the builders\' path', (_, subset) => {
    const [cluster, endpoints] = subsetResources(subset);
    const viaBuilders = [checkedResource(TypeUrl.Cluster, buildCluster(subset)), checkedResource(TypeUrl.ClusterLoadAssignment, buildClusterLoadAssignment(subset))];
    for (const [fast, slow] of [[cluster, viaBuilders[0]!], [endpoints, viaBuilders[1]!]] as const) {
      expect(Buffer.from(fast.any)).toEqual(Buffer.from(slow.any));
      expect(fast.name).toBe(slow.name);
      expect(fast.version).toBe(slow.version);
      expect(fast.references).toEqual(slow.references);
    }
  });

  it('takes the builders\' path for a value the checks refuse, and reports it as before', () => {
    const bad: Subset = { service: 'api', name: 'stable', instances: [inst('a', '', 8080)] };
    expect(() => subsetResources(bad)).toThrow(/ClusterLoadAssignment "api".*address/);
    const badPort: Subset = { service: 'api', name: 'stable', instances: [inst('a', '10.0.0.1', 70000)] };
    expect(() => subsetResources(badPort)).toThrow(/port_value/);
  });
});
