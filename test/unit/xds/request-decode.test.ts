// The hand-rolled request decoders, held to protobufjs' reflective decode + toObject,
// which is what the server used before them and what they must keep producing.
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { lookupMessage } from '../../../src/xds/protos.js';
import { adsServiceDefinition } from '../../../src/xds/server.js';
import { TO_OBJECT_OPTIONS, TypeUrl } from '../../../src/xds/resources.js';
import {
  decodeDeltaDiscoveryRequest,
  decodeDiscoveryRequest,
  sameResourceNameBytes,
  type DecodedDiscoveryRequest,
  type DeltaDiscoveryRequest,
  type DiscoveryRequest,
} from '../../../src/xds/wire.js';

const REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
const DELTA_REQUEST = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

const TO_OBJECT = { ...TO_OBJECT_OPTIONS, arrays: true, objects: true, defaults: true };
/** The Node fields the decoders read and keep (see readNode). */
const NODE_FIELDS_READ = ['id', 'cluster', 'metadata', 'user_agent_name', 'user_agent_version'];

/**
 * The decoder the server had before: reflective decode, toObject with defaults; but
 * the node has only the fields it reads.
 */
function reflective(name: string, bytes: Uint8Array): Record<string, unknown> {
  const type = lookupMessage(name);
  const object = type.toObject(type.decode(bytes), TO_OBJECT);
  for (const key of ['node', 'error_detail']) if (object[key] === null) delete object[key];
  const node = object.node as Record<string, unknown> | undefined;
  if (node) {
    node.metadata ??= {};
    for (const key of Object.keys(node)) if (!NODE_FIELDS_READ.includes(key)) delete node[key];
  }
  return object;
}

/** The interface's fields, as one plain object, so a class and a literal compare. */
const sotwFields = (r: DiscoveryRequest | Record<string, unknown>): Record<string, unknown> => {
  const { version_info, node, resource_names, type_url, response_nonce, error_detail } = r as DiscoveryRequest;
  return { version_info, node, resource_names, type_url, response_nonce, error_detail };
};
const deltaFields = (r: DeltaDiscoveryRequest | Record<string, unknown>): Record<string, unknown> => {
  const d = r as DeltaDiscoveryRequest;
  return {
    node: d.node,
    type_url: d.type_url,
    resource_names_subscribe: d.resource_names_subscribe,
    resource_names_unsubscribe: d.resource_names_unsubscribe,
    initial_resource_versions: { ...d.initial_resource_versions },
    response_nonce: d.response_nonce,
    error_detail: d.error_detail,
  };
};

function expectSotwAsBefore(bytes: Uint8Array): DecodedDiscoveryRequest {
  const decoded = decodeDiscoveryRequest(bytes);
  expect(sotwFields(decoded)).toStrictEqual(sotwFields(reflective(REQUEST, bytes)));
  return decoded;
}

function expectDeltaAsBefore(bytes: Uint8Array): DeltaDiscoveryRequest {
  const decoded = decodeDeltaDiscoveryRequest(bytes);
  expect(deltaFields(decoded)).toStrictEqual(deltaFields(reflective(DELTA_REQUEST, bytes)));
  return decoded;
}

const encode = (name: string, object: Record<string, unknown>): Buffer => {
  const type = lookupMessage(name);
  return type.encode(type.fromObject(object)).finish() as Buffer;
};
const sotw = (object: Record<string, unknown>): Buffer => encode(REQUEST, object);
const delta = (object: Record<string, unknown>): Buffer => encode(DELTA_REQUEST, object);

// Fields by hand, for what protobufjs' encoder never writes: other orders, split
// repeated fields, unknown fields, other wire types.
const w = (): protobuf.Writer => protobuf.Writer.create();
const str = (field: number, s: string): Uint8Array => w().uint32((field << 3) | 2).string(s).finish();
const sub = (field: number, bytes: Uint8Array): Uint8Array => w().uint32((field << 3) | 2).bytes(bytes).finish();
const varint = (field: number, v: number): Uint8Array => w().uint32(field << 3).uint64(v).finish();
const fixed64 = (field: number): Uint8Array => w().uint32((field << 3) | 1).fixed64(0x01020304).finish();
const fixed32 = (field: number): Uint8Array => w().uint32((field << 3) | 5).fixed32(0xdeadbeef).finish();
const group = (field: number, ...inner: Uint8Array[]): Uint8Array => cat(w().uint32((field << 3) | 3).finish(), ...inner, w().uint32((field << 3) | 4).finish());
const cat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts);
/** Field 99 in each of the wire types a parser must skip. */
const unknowns = (): Uint8Array[] => [varint(99, 2 ** 40), fixed64(99), str(99, 'opaque'), fixed32(99), group(99, varint(1, 7), str(2, 'x'))];

const names = (n: number, prefix = 'cluster'): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}.default.svc`);
const node = (metadata?: Record<string, unknown>): Record<string, unknown> => ({
  id: 'envoy-1',
  cluster: 'edge',
  user_agent_name: 'envoy',
  user_agent_version: '1.36.0',
  locality: { region: 'eu-west-1', zone: 'a' },
  client_features: ['envoy.lb.does_not_support_overprovisioning'],
  ...(metadata ? { metadata } : {}),
});
const everyJsonKind = {
  port: 10001,
  ratio: -0.25,
  role: 'gateway',
  empty: '',
  tls: false,
  on: true,
  nothing: null,
  tags: ['a', 1, true, null, { deep: ['x'] }, []],
  nested: { k: 'v', inner: { list: [1, 2], empty: {} } },
  none: {},
};
const nack = { code: 3, message: 'ClusterLoadAssignment rejected: überlastet ✗' };
const encodeNode = (object: Record<string, unknown>): Uint8Array => encode('envoy.config.core.v3.Node', object);
const encodeStatus = (object: Record<string, unknown>): Uint8Array => encode('google.rpc.Status', object);

describe('decodeDiscoveryRequest', () => {
  it.each<[string, Record<string, unknown>]>([
    ['an empty message', {}],
    ['a first request with a node and no metadata', { type_url: EDS, node: node(), resource_names: ['api'] }],
    ['a node whose metadata holds every JSON kind', { type_url: EDS, node: node(everyJsonKind), resource_names: ['api'] }],
    ['an ACK with one name', { version_info: 'v1', type_url: EDS, response_nonce: 'n1', resource_names: ['api'] }],
    ['an ACK with 2,000 names', { version_info: 'v1', type_url: EDS, response_nonce: 'n1', resource_names: names(2_000) }],
    ['an ACK with 20,000 names', { version_info: 'v1', type_url: EDS, response_nonce: 'n1', resource_names: names(20_000) }],
    ['a NACK', { version_info: 'v1', type_url: EDS, response_nonce: 'n2', resource_names: ['api'], error_detail: nack }],
    ['a NACK with an empty status', { type_url: EDS, response_nonce: 'n2', error_detail: {} }],
    ['a node and a NACK', { type_url: EDS, node: node({ a: 1 }), response_nonce: 'n', error_detail: nack }],
    ['unicode names', { type_url: EDS, resource_names: ['café', '服务-β', '🚀.svc', 'a\u0000b'] }],
    ['names whose lengths take one, two and three bytes', { type_url: EDS, resource_names: ['a'.repeat(127), 'b'.repeat(128), 'c'.repeat(16_383), 'd'.repeat(16_384), 'e', 'f'.repeat(70_000), 'g'] }],
    ['empty names', { type_url: EDS, resource_names: ['', 'api', '', ''] }],
    ['empty strings everywhere', { version_info: '', type_url: '', response_nonce: '', resource_names: [''] }],
  ])('decodes %s as before', (_, object) => {
    expectSotwAsBefore(sotw(object));
  });

  it('skips unknown fields of every wire type, wherever they are', () => {
    const [v, f64, s, f32, g] = unknowns();
    const bytes = cat(v!, str(1, 'v1'), f64!, str(3, 'a'), s!, str(3, 'b'), f32!, str(4, EDS), g!, str(5, 'n'), ...unknowns());
    expect(sotwFields(expectSotwAsBefore(bytes))).toMatchObject({ version_info: 'v1', resource_names: ['a', 'b'], type_url: EDS, response_nonce: 'n' });
  });

  it('reads fields in any order, the last of a repeated scalar winning', () => {
    const bytes = cat(str(3, 'a'), str(5, 'n1'), sub(6, encodeStatus(nack)), str(4, EDS), sub(2, encodeNode(node({ x: 1 }))), str(1, 'v0'), str(1, 'v1'), str(5, 'n2'));
    expect(sotwFields(expectSotwAsBefore(bytes))).toMatchObject({ version_info: 'v1', response_nonce: 'n2', resource_names: ['a'] });
  });

  it("steps over what a real Envoy's node adds and nothing here reads: its extensions, build, locality and client features", () => {
    // Envoy 1.40 lists 516 extensions: 60 KB of its first request, 212 KB of heap a stream when kept.
    const extensions = Array.from({ length: 516 }, (_, i) => ({ name: `envoy.filters.http.ext_${i}`, category: 'envoy.filters.http', type_urls: [`envoy.extensions.filters.http.ext_${i}.v3.Ext`] }));
    const envoy = {
      id: 'edge-1',
      cluster: 'edge',
      metadata: { shadowplane: { role: 'gateway' } },
      user_agent_name: 'envoy',
      user_agent_build_version: { version: { major_number: 1, minor_number: 40 }, metadata: { 'build.type': 'RELEASE' } },
      locality: { zone: 'a' },
      client_features: ['envoy.lb.does_not_support_overprovisioning'],
      extensions,
      listening_addresses: [{ socket_address: { address: '127.0.0.1', port_value: 10000 } }],
    };
    const decoded = expectSotwAsBefore(sotw({ type_url: EDS, node: envoy }));
    expect(decoded.node).toMatchObject({ id: 'edge-1', cluster: 'edge', metadata: { shadowplane: { role: 'gateway' } }, user_agent_name: 'envoy' });
    expect(Object.keys(decoded.node!).sort()).toEqual(['cluster', 'id', 'metadata', 'user_agent_name']);
    expect(expectDeltaAsBefore(delta({ type_url: EDS, node: envoy })).node).toStrictEqual(decoded.node);
  });

  it('takes the last node, as protobufjs did', () => {
    const bytes = cat(sub(2, encodeNode(node({ first: true }))), sub(2, encodeNode({ id: 'second' })));
    expect(expectSotwAsBefore(bytes).node).toMatchObject({ id: 'second', metadata: {} });
  });

  it('keeps resource_names split by other fields, in order, and their bytes as if they were not', () => {
    const list = ['a', 'b', 'c', 'd'];
    const split = cat(str(3, 'a'), str(1, 'v1'), str(3, 'b'), str(3, 'c'), ...unknowns(), str(3, 'd'), str(4, EDS));
    const decoded = expectSotwAsBefore(split);
    expect(decoded.resource_names).toEqual(list);
    expect(Buffer.from(decoded.resource_names_raw)).toEqual(Buffer.from(decodeDiscoveryRequest(sotw({ resource_names: list })).resource_names_raw));
  });

  it('decodes a Uint8Array that is not a Buffer the same way', () => {
    const bytes = cat(str(3, 'ü'), str(1, 'v1'), str(3, '🚀'), sub(2, encodeNode(node(everyJsonKind))));
    expectSotwAsBefore(new Uint8Array(bytes));
    expect(decodeDiscoveryRequest(new Uint8Array(bytes)).resource_names).toEqual(['ü', '🚀']);
  });

  it('skips a known field number that arrives with another wire type, as an unknown field', () => {
    const bytes = cat(varint(1, 5), fixed32(3), varint(4, 300), str(5, 'n'));
    expect(sotwFields(decodeDiscoveryRequest(bytes))).toMatchObject({ version_info: '', resource_names: [], type_url: '', response_nonce: 'n' });
  });

  it('decodes names once', () => {
    const decoded = decodeDiscoveryRequest(sotw({ type_url: EDS, resource_names: names(3) }));
    expect(decoded.resource_names).toBe(decoded.resource_names);
  });

  it.each<[string, Buffer]>([
    ['a large message, names contiguous', sotw({ version_info: 'v1', type_url: EDS, resource_names: names(2_000), response_nonce: 'n' })],
    ['a small message in a pool slab', sotw({ type_url: EDS, resource_names: ['a', 'b'] })],
    ['a message that is mostly a node', sotw({ node: node(everyJsonKind), resource_names: ['a', 'b'] })],
  ])("views the names' bytes in the message, uncopied, for %s", (_, bytes) => {
    const raw = decodeDiscoveryRequest(bytes).resource_names_raw;
    expect(raw.buffer).toBe(bytes.buffer);
  });

  it('joins names split by other fields into memory of their own, exactly their size', () => {
    const raw = decodeDiscoveryRequest(cat(str(3, 'a'), str(1, 'v1'), str(3, 'b'))).resource_names_raw;
    expect(raw.buffer.byteLength).toBe(raw.length);
    expect(Buffer.from(raw).equals(cat(str(3, 'a'), str(3, 'b')))).toBe(true);
  });

  it('writes the decoded names to JSON', () => {
    const decoded = decodeDiscoveryRequest(sotw({ type_url: EDS, resource_names: ['a', 'b'] }));
    expect(JSON.parse(JSON.stringify(decoded))).toEqual({ version_info: '', resource_names: ['a', 'b'], type_url: EDS, response_nonce: '' });
  });

  describe('resource_names_raw', () => {
    const raw = (list: string[], rest: Record<string, unknown> = {}): DecodedDiscoveryRequest => decodeDiscoveryRequest(sotw({ ...rest, resource_names: list }));

    it('is equal for equal names, whatever else the requests say', () => {
      const a = raw(names(2_000), { version_info: 'v1', response_nonce: 'n1' });
      const b = raw(names(2_000), { version_info: 'v2', response_nonce: 'n2', node: node(everyJsonKind), error_detail: nack });
      expect(Buffer.from(a.resource_names_raw)).toEqual(Buffer.from(b.resource_names_raw));
      expect(sameResourceNameBytes(a, b)).toBe(true);
      expect(sameResourceNameBytes(raw([]), raw([]))).toBe(true);
    });

    it.each<[string, string[], string[]]>([
      ['one name more', ['a', 'b'], ['a', 'b', 'c']],
      ['one name less', ['a', 'b'], ['a']],
      ['another order', ['a', 'b'], ['b', 'a']],
      ['one character changed', names(2_000), [...names(1_999), 'cluster-1999.default.svd']],
      ['an empty name added', ['a'], ['a', '']],
      ['names joined', ['ab', 'c'], ['a', 'bc']],
    ])('differs for %s', (_, x, y) => {
      expect(Buffer.from(raw(x).resource_names_raw)).not.toEqual(Buffer.from(raw(y).resource_names_raw));
      expect(sameResourceNameBytes(raw(x), raw(y))).toBe(false);
    });

    it('is unknown on requests built in code, which never match', () => {
      const built: DiscoveryRequest = { version_info: '', type_url: EDS, response_nonce: '', resource_names: ['a'] };
      expect(sameResourceNameBytes(built, raw(['a']))).toBe(false);
      expect(sameResourceNameBytes(built, built)).toBe(false);
    });
  });

  it('reads every served type URL, and any other as it came: a byte off, a prefix, longer, a type not served', () => {
    for (const url of Object.values(TypeUrl)) {
      expect(decodeDiscoveryRequest(sotw({ type_url: url })).type_url).toBe(url);
      expect(decodeDeltaDiscoveryRequest(delta({ type_url: url })).type_url).toBe(url);
    }
    const lastByteOff = `${EDS.slice(0, -1)}x`;
    for (const other of [lastByteOff, `X${EDS.slice(1)}`, EDS.slice(0, -1), `${EDS}s`, 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret']) {
      expect(expectSotwAsBefore(sotw({ type_url: other })).type_url).toBe(other);
      expect(expectDeltaAsBefore(delta({ type_url: other })).type_url).toBe(other);
    }
  });

  describe('malformed input', () => {
    const fields = [str(1, 'v1'), sub(2, encodeNode(node(everyJsonKind))), str(3, 'a'), str(3, 'bc'), str(3, 'é'), str(4, EDS), str(5, 'n'), sub(6, encodeStatus(nack))];
    const message = cat(...fields);
    const boundaries = new Set(fields.map((_, i) => cat(...fields.slice(0, i + 1)).length));

    // protobufjs decoded a Buffer whose last string was cut short, keeping what was there.
    it('throws for every truncation inside a field, and decodes as before at every field boundary', () => {
      for (let end = 0; end < message.length; end++) {
        const prefix = message.subarray(0, end);
        if (end === 0 || boundaries.has(end)) expectSotwAsBefore(prefix);
        else expect(() => decodeDiscoveryRequest(prefix), `prefix of ${end} bytes`).toThrow(/^malformed envoy\.service\.discovery\.v3\.DiscoveryRequest \(\d+ bytes\): index out of range/);
      }
    });

    // true: protobufjs threw too; false: it kept what was there of a string cut short.
    it.each<[string, Uint8Array, RegExp, boolean]>([
      ['a name cut short', cat(str(3, 'a'), Buffer.from([0x1a, 0x05, 0x61])), /index out of range/, false],
      ['a name run that ends in a tag', cat(str(3, 'a'), Buffer.from([0x1a])), /index out of range/, true],
      ['wire type 6', Buffer.from([(9 << 3) | 6, 0]), /invalid wire type 6/, true],
      ['wire type 7', cat(str(1, 'v'), Buffer.from([(9 << 3) | 7])), /invalid wire type 7/, true],
      ['an end group with no start', Buffer.from([(9 << 3) | 4]), /invalid wire type 4/, true],
      ['a version cut short', str(1, 'v1').subarray(0, 3), /a string of 2 bytes at offset 2 runs past the end \(3\)/, false],
      ['an unknown varint cut short', cat(w().uint32(99 << 3).finish(), Buffer.from([0xff])), /index out of range/, true],
      ['a node longer than the message', cat(Buffer.from([0x12, 0x7f]), encodeNode({ id: 'x' })), /index out of range/, true],
    ])('throws on %s', (_, bytes, reason, threwBefore) => {
      expect(() => decodeDiscoveryRequest(bytes)).toThrow(reason);
      if (threwBefore) expect(() => reflective(REQUEST, bytes)).toThrow();
      else expect(() => reflective(REQUEST, bytes)).not.toThrow();
    });
  });
});

describe('decodeDeltaDiscoveryRequest', () => {
  it.each<[string, Record<string, unknown>]>([
    ['an empty message', {}],
    ['a first request with a node whose metadata holds every JSON kind', { type_url: EDS, node: node(everyJsonKind), resource_names_subscribe: ['api'] }],
    ['a reconnect with initial versions', { type_url: EDS, resource_names_subscribe: names(2_000), initial_resource_versions: { 'cluster-1.default.svc': 'h1', 'cluster-2.default.svc': 'h2', '1': 'numeric', '': '' } }],
    ['subscribes and unsubscribes', { type_url: EDS, response_nonce: 'n1', resource_names_subscribe: ['café', ''], resource_names_unsubscribe: ['🚀', 'old'] }],
    ['a NACK', { type_url: EDS, response_nonce: 'n2', error_detail: nack }],
  ])('decodes %s as before', (_, object) => {
    expectDeltaAsBefore(delta(object));
  });

  it('skips unknown fields, resource locators and unknown map entry fields', () => {
    const entry = (...parts: Uint8Array[]): Uint8Array => sub(5, cat(...parts));
    const bytes = cat(
      ...unknowns(),
      str(3, 'a'),
      sub(8, cat(str(1, 'xdstp://locator'))),
      entry(str(1, 'a'), ...unknowns(), str(2, 'h1')),
      entry(str(2, 'only-value')),
      entry(str(1, 'only-key')),
      entry(str(1, 'a'), str(2, 'h2')),
      str(4, 'b'),
      str(2, EDS),
      sub(1, encodeNode(node({ n: 1 }))),
      str(6, 'n'),
      ...unknowns(),
    );
    expect(deltaFields(expectDeltaAsBefore(bytes))).toMatchObject({
      resource_names_subscribe: ['a'],
      resource_names_unsubscribe: ['b'],
      initial_resource_versions: { a: 'h2', '': 'only-value', 'only-key': '' },
    });
  });

  it('answers `in` only for names the client sent', () => {
    const entry = (key: string, value: string): Uint8Array => sub(5, cat(str(1, key), str(2, value)));
    const decoded = decodeDeltaDiscoveryRequest(cat(entry('__proto__', 'h0'), entry('api', 'h1')));
    expect('api' in decoded.initial_resource_versions).toBe(true);
    expect('toString' in decoded.initial_resource_versions).toBe(false);
    expect(Object.entries(decoded.initial_resource_versions)).toEqual([
      ['__proto__', 'h0'],
      ['api', 'h1'],
    ]);
  });

  it.each<[string, Uint8Array, RegExp, boolean]>([
    ['a name cut short', delta({ resource_names_subscribe: ['abc'] }).subarray(0, 4), /index out of range/, false],
    ['a map entry longer than the message', Buffer.from([0x2a, 0x10, 0x0a, 0x01, 0x61]), /index out of range/, true],
    ['a map entry whose key overruns it', cat(Buffer.from([0x2a, 0x02]), str(1, 'abc')), /index out of range/, true],
    ['wire type 7', Buffer.from([(9 << 3) | 7]), /invalid wire type 7/, true],
  ])('throws on %s', (_, bytes, reason, threwBefore) => {
    expect(() => decodeDeltaDiscoveryRequest(bytes)).toThrow(reason);
    if (threwBefore) expect(() => reflective(DELTA_REQUEST, bytes)).toThrow();
    else expect(() => reflective(DELTA_REQUEST, bytes)).not.toThrow();
  });
});

describe('as the ADS deserializer', () => {
  const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
  const bytesOut = (b: Buffer): Buffer => b;
  let server: grpc.Server | undefined;
  let client: grpc.Client | undefined;
  afterEach(() => {
    client?.close();
    server?.forceShutdown();
  });

  /** A server whose handler records what it is given, and a raw stream that sends bytes. */
  async function open(): Promise<{ received: DiscoveryRequest[]; call: grpc.ClientDuplexStream<Buffer, Buffer> }> {
    const received: DiscoveryRequest[] = [];
    server = new grpc.Server();
    server.addService(adsServiceDefinition, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) => call.on('data', (r: DiscoveryRequest) => received.push(r)),
      DeltaAggregatedResources: () => {},
    });
    const port = await new Promise<number>((resolve, reject) =>
      server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    return { received, call: client.makeBidiStreamRequest(ADS, bytesOut, bytesOut) };
  }

  const status = (call: grpc.ClientDuplexStream<Buffer, Buffer>): Promise<grpc.StatusObject> =>
    new Promise((resolve) => {
      call.on('error', () => {});
      call.on('status', resolve);
    });

  it('hands the handler a request, and fails the call with INTERNAL on a malformed one', async () => {
    const { received, call } = await open();
    const ended = status(call);
    call.write(sotw({ type_url: EDS, resource_names: ['a', 'b'] }));
    call.write(Buffer.from([(9 << 3) | 7]));
    expect(await ended).toMatchObject({ code: grpc.status.INTERNAL, details: expect.stringMatching(/^Error deserializing request/) as unknown });
    expect(received.map((r) => r.resource_names)).toEqual([['a', 'b']]);
  });
});
