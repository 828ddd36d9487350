// What a simulated proxy reads and writes on its ADS stream. Requests are encoded with
// protobufjs from Envoy's own DiscoveryRequest type, as the parts they are made of
// (the bytes of a list of names are made once and written again on every ACK).
// Responses are read where they lie, in the chunks they arrived in, keeping only what a
// proxy needs to answer (version, nonce, type) and, for clusters, the names it must ask
// EDS for: every simulated proxy shares the control plane's two cores, so copying and
// decoding every resource in thousands of streams would measure the proxies instead of
// the server.
import protobuf from 'protobufjs';
import { lookupMessage } from '../../src/xds/protos.js';

const CLUSTER_TYPE_EDS = 3;

export interface ResponseHead {
  version: string;
  typeUrl: string;
  nonce: string;
  resources: number;
  /** Only when asked for: the EDS names of the clusters in a CDS response, in order. */
  edsNames?: string[];
  bytes: number;
}

/** `Cluster.name`, or `eds_cluster_config.service_name` when set, for EDS clusters. */
function edsNameOf(cluster: Uint8Array): string | undefined {
  const r = protobuf.Reader.create(cluster);
  let name = '';
  let serviceName = '';
  let type = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 1) name = r.string();
    else if (field === 2) type = r.int32();
    else if (field === 3) {
      const inner = protobuf.Reader.create(r.bytes());
      while (inner.pos < inner.len) {
        const t = inner.uint32();
        if (t >>> 3 === 2) serviceName = inner.string();
        else inner.skipType(t & 7);
      }
    } else r.skipType(tag & 7);
  }
  return type === CLUSTER_TYPE_EDS ? serviceName || name : undefined;
}

/** The `value` of a google.protobuf.Any. */
function anyValue(any: Uint8Array): Uint8Array {
  const r = protobuf.Reader.create(any);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 2) return r.bytes();
    r.skipType(tag & 7);
  }
  return new Uint8Array();
}

/** DiscoveryResponse: 1 version_info, 2 resources (Any), 4 type_url, 5 nonce. */
export function readResponse(bytes: Buffer, withEdsNames: boolean): ResponseHead {
  const r = protobuf.Reader.create(bytes);
  const head: ResponseHead = { version: '', typeUrl: '', nonce: '', resources: 0, bytes: bytes.length };
  const eds: string[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1:
        head.version = r.string();
        break;
      case 2:
        head.resources++;
        if (withEdsNames) {
          const name = edsNameOf(anyValue(r.bytes()));
          if (name !== undefined) eds.push(name);
        } else r.skipType(tag & 7);
        break;
      case 4:
        head.typeUrl = r.string();
        break;
      case 5:
        head.nonce = r.string();
        break;
      default:
        r.skipType(tag & 7);
    }
  }
  if (withEdsNames) head.edsNames = eds;
  return head;
}

/** A message as the chunks it arrived in, laid end to end (views, not copies). */
export type Parts = readonly Uint8Array[];

/** Reads protobuf's wire format across the parts of a message without joining them. */
class PartsReader {
  private part = 0;
  private at = 0;

  constructor(
    private readonly parts: Parts,
    /** Bytes not yet read. */
    public remaining: number,
  ) {}

  private byte(): number {
    let chunk = this.parts[this.part]!;
    while (this.at === chunk.length) {
      chunk = this.parts[++this.part]!;
      this.at = 0;
    }
    this.remaining--;
    return chunk[this.at++]!;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
  }

  skip(n: number): void {
    if (n > this.remaining) throw new Error(`truncated response: a field of ${n} bytes with ${this.remaining} left`);
    this.remaining -= n;
    while (n > 0) {
      const left = this.parts[this.part]!.length - this.at;
      if (n < left) {
        this.at += n;
        return;
      }
      n -= left;
      this.part++;
      this.at = 0;
    }
  }

  string(n: number): string {
    if (n > this.remaining) throw new Error(`truncated response: a string of ${n} bytes with ${this.remaining} left`);
    const chunk = this.parts[this.part]!;
    if (this.at + n <= chunk.length) {
      const text = Buffer.from(chunk.buffer, chunk.byteOffset + this.at, n).toString('utf8');
      this.at += n;
      this.remaining -= n;
      return text;
    }
    const bytes = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) bytes[i] = this.byte();
    return bytes.toString('utf8');
  }

  /** Steps over a field's value of the given wire type. */
  skipValue(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.skip(8);
    else if (wireType === 2) this.skip(this.varint());
    else if (wireType === 5) this.skip(4);
    else throw new Error(`wire type ${wireType} in a DiscoveryResponse`);
  }
}

/**
 * readResponse(bytes, false) for a message given as its parts, of `length` bytes in
 * all: the head of a DiscoveryResponse, read without joining the parts.
 */
export function readResponseHead(parts: Parts, length: number): ResponseHead {
  const r = new PartsReader(parts, length);
  const head: ResponseHead = { version: '', typeUrl: '', nonce: '', resources: 0, bytes: length };
  while (r.remaining > 0) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (wireType !== 2 || (field !== 1 && field !== 2 && field !== 4 && field !== 5)) {
      r.skipValue(wireType);
      continue;
    }
    const n = r.varint();
    if (field === 2) {
      head.resources++;
      r.skip(n);
    } else if (field === 1) head.version = r.string(n);
    else if (field === 4) head.typeUrl = r.string(n);
    else head.nonce = r.string(n);
  }
  return head;
}

/** The parts joined: a view when there is one part. */
export function joinParts(parts: Parts, length: number): Buffer {
  if (parts.length === 1) {
    const only = parts[0]!;
    return Buffer.isBuffer(only) ? only : Buffer.from(only.buffer, only.byteOffset, only.length);
  }
  return Buffer.concat(parts, length);
}

const requestType = lookupMessage('envoy.service.discovery.v3.DiscoveryRequest');
const nodeType = lookupMessage('envoy.config.core.v3.Node');
const buildVersionType = lookupMessage('envoy.config.core.v3.BuildVersion');

export interface RequestFields {
  version_info?: string;
  node?: { id: string; cluster: string; metadata: Record<string, unknown>; user_agent_name: string };
  resource_names?: readonly string[];
  type_url: string;
  response_nonce?: string;
}

/** The encoded resource_names fields of a list: proxies repeat one list on every ACK. */
const encodedNames = new WeakMap<readonly string[], Uint8Array>();

function namesField(names: readonly string[]): Uint8Array {
  let bytes = encodedNames.get(names);
  if (!bytes) {
    const w = protobuf.Writer.create();
    for (const name of names) w.uint32((3 << 3) | 2).string(name);
    encodedNames.set(names, (bytes = w.finish()));
  }
  return bytes;
}

/**
 * What a real Envoy adds to its node, besides id, cluster and metadata: its build and
 * every extension compiled into it. Envoy 1.40's first ADS request is 61,141 bytes, of
 * which 59,657 are 516 `extensions` entries (name, category, type URLs) and 150 the
 * `user_agent_build_version`. The simulated proxies send as many entries of the same
 * size (made-up names), so the server decodes and holds what it would with real
 * proxies. Encoded once per process, as a Node message's fields 8 and 9.
 */
export const ENVOY_EXTENSIONS = 516;
const ENVOY_CATEGORIES = ['envoy.filters.http', 'envoy.filters.network', 'envoy.filters.listener', 'envoy.transport_sockets.upstream', 'envoy.access_loggers', 'envoy.clusters', 'envoy.matching.http.input'];
let envoyNodeTail: Uint8Array | undefined;

function envoyNodeFields(): Uint8Array {
  if (envoyNodeTail) return envoyNodeTail;
  const w = protobuf.Writer.create();
  // user_agent_build_version, as Envoy 1.40 fills it in (150 bytes).
  const build = buildVersionType.fromObject({
    version: { major_number: 1, minor_number: 40, patch: 0 },
    metadata: { 'revision.sha': '0'.repeat(40), 'revision.status': 'Clean', 'build.type': 'RELEASE', 'ssl.version': 'BoringSSL' },
  });
  w.uint32((8 << 3) | 2).bytes(buildVersionType.encode(build).finish());
  for (let i = 0; i < ENVOY_EXTENSIONS; i++) {
    const category = ENVOY_CATEGORIES[i % ENVOY_CATEGORIES.length]!;
    const name = `${category}.bench_ext_${String(i).padStart(3, '0')}`;
    const ext = protobuf.Writer.create().uint32((1 << 3) | 2).string(name).uint32((2 << 3) | 2).string(category);
    ext.uint32((6 << 3) | 2).string(`envoy.extensions.${category.slice(6)}.bench_ext_${String(i).padStart(3, '0')}.v3.Ext`);
    w.uint32((9 << 3) | 2).bytes(ext.finish());
  }
  return (envoyNodeTail = w.finish());
}

/**
 * The request's bytes, as protobufjs encodes them from Envoy's DiscoveryRequest type,
 * as parts to be written one after the other: for a request with a node (the first),
 * the node's own fields, then Envoy's build and extensions after them
 * (envoyNodeFields, the same bytes for every proxy); otherwise field by field with the
 * names' bytes made once per list (in field-number order; unlike protobufjs, empty
 * strings are left out, which a proto3 decoder reads the same).
 */
export function encodeRequestParts(request: RequestFields): Uint8Array[] {
  if (request.node) {
    const own = nodeType.encode(nodeType.fromObject(request.node)).finish();
    const tail = envoyNodeFields();
    const rest = requestType.encode(requestType.fromObject({ ...request, node: undefined })).finish();
    const field = protobuf.Writer.create().uint32((2 << 3) | 2).uint32(own.length + tail.length).finish();
    // Field order does not matter to a decoder; the node goes first, as Envoy sends it.
    return [field, own, tail, rest];
  }
  const w = protobuf.Writer.create();
  if (request.version_info) w.uint32((1 << 3) | 2).string(request.version_info);
  const head = w.finish();
  const tail = protobuf.Writer.create();
  tail.uint32((4 << 3) | 2).string(request.type_url);
  if (request.response_nonce) tail.uint32((5 << 3) | 2).string(request.response_nonce);
  return [head, namesField(request.resource_names ?? []), tail.finish()];
}

/** encodeRequestParts, joined. */
export function encodeRequest(request: RequestFields): Buffer {
  return Buffer.concat(encodeRequestParts(request));
}

/** The last CDS response read in full, and what was read: the proxies of a process get the same bytes. */
let lastClusters: { bytes: Buffer; head: ResponseHead } | undefined;

/** Whether `parts`, laid end to end, are `bytes`. */
function partsEqual(parts: Parts, length: number, bytes: Buffer): boolean {
  if (length !== bytes.length) return false;
  let at = 0;
  for (const part of parts) {
    if (bytes.compare(part, 0, part.length, at, at + part.length) !== 0) return false;
    at += part.length;
  }
  return true;
}

/**
 * readResponse(bytes, true), remembered for the last bytes read: a thousand proxies
 * sent the same cluster response need not each parse its thousands of clusters (the
 * proxies share the control plane's cores). Compared by content, part by part, not by
 * anything the server says.
 */
export function readClusters(parts: Parts, length: number): ResponseHead {
  if (lastClusters && partsEqual(parts, length, lastClusters.bytes)) return lastClusters.head;
  const joined = joinParts(parts, length);
  // Kept: a copy, not a view of a chunk that may hold more than this message.
  const bytes = parts.length === 1 ? Buffer.from(joined) : joined;
  const head = readResponse(bytes, true);
  lastClusters = { bytes, head };
  return head;
}
