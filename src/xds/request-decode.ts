// ADS requests off the wire, read field by field with protobufjs' Reader.
//
// An Envoy repeats every resource name of a type in every request for it, ACKs
// included: an edge Envoy's EDS request names all its clusters (20,000 at 10,000
// services), and most of those requests repeat the previous one's names exactly. So a
// SotW request keeps its resource_names as the bytes they arrived in and decodes them
// only when asked; a stream that finds the same bytes as last time need not decode them.
//
// node and error_detail are rare (the first request of a stream; NACKs) and go through
// protobufjs' reflective decode and toObject, so they keep the shape the rest of the
// server knows: Struct metadata as plain JSON (json-wrappers.ts), absent metadata {}.
//
// Malformed input throws; grpc-js turns a throwing deserializer into a call that fails
// with INTERNAL "Error deserializing request".
import protobuf from 'protobufjs';
import { lookupMessage } from './protos.js';
import { TO_OBJECT_OPTIONS, TypeUrl } from './resources.js';

export interface Node {
  id: string;
  cluster: string;
  metadata?: Record<string, unknown>;
  user_agent_name?: string;
  user_agent_version?: string;
}

export interface RpcStatus {
  code?: number;
  message?: string;
}

export interface DiscoveryRequest {
  version_info: string;
  node?: Node;
  resource_names: string[];
  /**
   * The resource_names fields exactly as they arrived (tags, lengths and bytes). Set on
   * every decoded request, absent on requests built in code. Equal bytes mean equal
   * names; different bytes say nothing (see sameResourceNameBytes).
   */
  resource_names_raw?: Uint8Array;
  type_url: string;
  response_nonce: string;
  error_detail?: RpcStatus;
}

export interface DeltaDiscoveryRequest {
  node?: Node;
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  /** Has no prototype, so `name in initial_resource_versions` is true only for sent names. */
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail?: RpcStatus;
}

const REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
const DELTA_REQUEST = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
const decodeOptions: protobuf.IConversionOptions = { ...TO_OBJECT_OPTIONS, arrays: true, objects: true, defaults: true };

// Every field read here is length-delimited (wire type 2); its tag is
// (field number << 3) | 2. A known field number that arrives with another wire type is
// skipped like an unknown field, as protobuf's own parsers do.
const LD = 2;
const SOTW = {
  version_info: (1 << 3) | LD,
  node: (2 << 3) | LD,
  resource_names: (3 << 3) | LD,
  type_url: (4 << 3) | LD,
  response_nonce: (5 << 3) | LD,
  error_detail: (6 << 3) | LD,
} as const;
const DELTA = {
  node: (1 << 3) | LD,
  type_url: (2 << 3) | LD,
  resource_names_subscribe: (3 << 3) | LD,
  resource_names_unsubscribe: (4 << 3) | LD,
  initial_resource_versions: (5 << 3) | LD,
  response_nonce: (6 << 3) | LD,
  error_detail: (7 << 3) | LD,
} as const;
const MAP_KEY = (1 << 3) | LD;
const MAP_VALUE = (2 << 3) | LD;
const NO_BYTES = Buffer.alloc(0);

/** Node and Status the reflective way: decode the one sub-message, then toObject. */
function readReflective(type: protobuf.Type, reader: protobuf.Reader): Record<string, unknown> {
  return type.toObject(type.decode(reader, reader.uint32()), decodeOptions);
}

/**
 * The Node fields the server reads (id, cluster, metadata, user_agent_name and
 * user_agent_version), by tag. A real Envoy's node also lists every extension compiled
 * into it: Envoy 1.40 sends 516, 60 KB of its 61 KB first request, which decoded and
 * kept with the stream came to 212 KB of JS heap per stream, five times all else a
 * stream holds. Nothing here reads them, so they are stepped over unread, as are the
 * build version, locality, client features, listening addresses and dynamic parameters.
 */
const NODE_FIELDS_READ = new Set([1, 2, 3, 6, 7].map((field) => (field << 3) | LD));

/** The node's fields in NODE_FIELDS_READ, copied as they are and decoded the reflective way; the result has those fields only. */
function readNode(reader: protobuf.Reader): Node {
  const end = reader.uint32() + reader.pos;
  if (end > reader.len) throw new RangeError(`index out of range: node ends at ${end}, message at ${reader.len}`);
  const read: Uint8Array[] = [];
  while (reader.pos < end) {
    const start = reader.pos;
    const t = reader.uint32();
    reader.skipType(t & 7);
    if (NODE_FIELDS_READ.has(t)) read.push(reader.buf.subarray(start, reader.pos));
  }
  if (reader.pos !== end) throw new RangeError(`index out of range: node overran its length by ${reader.pos - end} bytes`);
  const type = lookupMessage('envoy.config.core.v3.Node');
  const all = type.toObject(type.decode(read.length === 1 ? read[0]! : Buffer.concat(read)), decodeOptions) as unknown as Node;
  // Only the fields read: a stream keeps its node, and toObject's defaults for the
  // others (empty lists, null locality) would cost every stream a few hundred bytes.
  const node: Node = { id: all.id, cluster: all.cluster, metadata: all.metadata ?? {}, user_agent_name: all.user_agent_name };
  if (all.user_agent_version !== undefined) node.user_agent_version = all.user_agent_version;
  return node;
}

const readStatus = (reader: protobuf.Reader): RpcStatus => readReflective(lookupMessage('google.rpc.Status'), reader);

/**
 * reader.string(), except that a string running past the end of the message throws:
 * protobufjs' BufferReader cuts it short and returns what is there.
 */
function readString(reader: protobuf.Reader): string {
  const start = reader.pos;
  const length = reader.uint32();
  if (reader.pos + length > reader.len) throw new RangeError(`index out of range: a string of ${length} bytes at offset ${reader.pos} runs past the end (${reader.len})`);
  reader.pos = start;
  return reader.string();
}

/** The type URLs the server serves, with their bytes. */
const SERVED_TYPE_URLS = Object.values(TypeUrl).map((url) => ({ url, bytes: Buffer.from(url, 'utf8') }));

/**
 * A type_url: one the server serves is read as the module's own string, not as a new
 * one. Every request names its type, and a string decoded afresh is looked up as a key
 * (`isResourceTypeUrl`, the per-type tables) only after V8 has hashed it or looked it up
 * in its string table: about 3 µs a request in a profile of B3's thousand ACKs.
 */
function readTypeUrl(reader: protobuf.Reader): string {
  const start = reader.pos;
  const length = reader.uint32();
  const at = reader.pos;
  const buf = reader.buf;
  if (at + length <= reader.len) {
    for (const served of SERVED_TYPE_URLS) {
      const bytes = served.bytes;
      if (bytes.length !== length) continue;
      // From the end: the URLs share their first 26 bytes.
      let i = length - 1;
      while (i >= 0 && buf[at + i] === bytes[i]) i--;
      if (i < 0) {
        reader.pos = at + length;
        return served.url;
      }
    }
  }
  reader.pos = start;
  return readString(reader);
}

/**
 * Strings decode with Node's UTF-8 decoder, which protobufjs uses for a Buffer (and
 * grpc-js hands over Buffers); any other Uint8Array is viewed as one, not copied.
 */
const asBuffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

/** Runs errors from protobufjs' Reader ("index out of range", "invalid wire type 7") through one message. */
function decodeOrThrow<T>(what: string, bytes: Uint8Array, decode: (reader: protobuf.Reader, message: Buffer) => T): T {
  try {
    const message = asBuffer(bytes);
    return decode(protobuf.Reader.create(message), message);
  } catch (err) {
    throw new Error(`malformed ${what} (${bytes.length} bytes): ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Where the resource_names fields lie in the message: usually one run, since every
 * mainstream encoder writes a repeated field's elements one after the other.
 */
class Runs {
  private readonly bounds: number[] = [];

  add(start: number, end: number): void {
    const b = this.bounds;
    if (b.length > 0 && b[b.length - 1] === start) b[b.length - 1] = end;
    else b.push(start, end);
  }

  /**
   * The runs' bytes end to end: a view of the message when they are one run (as every
   * mainstream encoder writes them), joined otherwise. A view may keep a larger buffer
   * alive (a small message from grpc-js is a view of an 8 KiB pool slab), so whatever
   * outlives the request copies the bytes it keeps (subscriptionOf in sotw-stream.ts);
   * most requests are ACKs whose names are compared and dropped, and a copy for each
   * was an allocation per ACK (about 5 % of the server's CPU in a B3 fan-out).
   */
  bytes(message: Buffer): Buffer {
    const b = this.bounds;
    if (b.length === 0) return NO_BYTES;
    if (b.length === 2) return message.subarray(b[0], b[1]);
    let length = 0;
    for (let i = 0; i < b.length; i += 2) length += b[i + 1]! - b[i]!;
    const out = Buffer.allocUnsafeSlow(length);
    let offset = 0;
    for (let i = 0; i < b.length; i += 2) offset += message.copy(out, offset, b[i], b[i + 1]);
    return out;
  }
}

/**
 * The names in a run of resource_names fields, which the decoder has already
 * bounds-checked. Each name is a string of its own: names cut from one string of the
 * whole run would cost a third as much, but each would keep the whole run alive, and a
 * subscription keeps names for as long as the stream lives.
 */
function decodeNames(raw: Uint8Array): string[] {
  const names: string[] = [];
  const reader = protobuf.Reader.create(asBuffer(raw));
  while (reader.pos < reader.len) {
    reader.uint32();
    names.push(reader.string());
  }
  return names;
}

/**
 * Steps over a resource_names field (its tag read) and every one right after it, unread.
 * An edge Envoy's EDS ACK names every cluster (20,000 at 10,000 services), so the usual
 * case, a name shorter than 16 KiB in the message, is stepped over here byte by byte;
 * anything else goes through the reader, which throws as it does for every field.
 */
function skipNameRun(reader: protobuf.Reader, message: Buffer): void {
  const len = reader.len;
  let pos = reader.pos;
  for (;;) {
    const b0 = message[pos] ?? 128;
    const b1 = message[pos + 1] ?? 128;
    let end: number;
    if (b0 < 128) end = pos + 1 + b0;
    else if (b1 < 128) end = pos + 2 + ((b0 & 127) | (b1 << 7));
    else end = len + 1;
    if (end > len) {
      // A longer length, or one that runs past the end: the reader's way.
      reader.pos = pos;
      reader.skip(reader.uint32());
      end = reader.pos;
    }
    if (end < len && message[end] === SOTW.resource_names) pos = end + 1;
    else {
      reader.pos = end;
      return;
    }
  }
}

/** A decoded SotW request: resource_names decode from resource_names_raw on first read. */
export class DecodedDiscoveryRequest implements DiscoveryRequest {
  #names: string[] | undefined;

  constructor(
    readonly version_info: string,
    readonly type_url: string,
    readonly response_nonce: string,
    readonly resource_names_raw: Uint8Array,
    readonly node: Node | undefined,
    readonly error_detail: RpcStatus | undefined,
  ) {}

  get resource_names(): string[] {
    return (this.#names ??= decodeNames(this.resource_names_raw));
  }

  /** What logs and snapshots see: the request's fields, names decoded. */
  toJSON(): DiscoveryRequest {
    const { version_info, node, resource_names, type_url, response_nonce, error_detail } = this;
    return { version_info, node, resource_names, type_url, response_nonce, error_detail };
  }
}

/** What carries a request's resource_names bytes: the request, or what kept them. */
export type ResourceNameBytes = Pick<DiscoveryRequest, 'resource_names_raw'>;

/**
 * True when both carry their resource_names bytes and those are equal, so their names
 * are equal without decoding either. False says nothing: compare names.
 */
export function sameResourceNameBytes(a: ResourceNameBytes, b: ResourceNameBytes): boolean {
  const x = a.resource_names_raw;
  const y = b.resource_names_raw;
  return x !== undefined && y !== undefined && x.length === y.length && Buffer.compare(x, y) === 0;
}

export function decodeDiscoveryRequest(bytes: Uint8Array): DecodedDiscoveryRequest {
  return decodeOrThrow(REQUEST, bytes, (reader, message) => {
    let version = '';
    let typeUrl = '';
    let nonce = '';
    let node: Node | undefined;
    let error: RpcStatus | undefined;
    const names = new Runs();
    while (reader.pos < reader.len) {
      const start = reader.pos;
      const t = reader.uint32();
      switch (t) {
        case SOTW.version_info:
          version = readString(reader);
          break;
        case SOTW.node:
          node = readNode(reader);
          break;
        case SOTW.resource_names:
          skipNameRun(reader, message);
          names.add(start, reader.pos);
          break;
        case SOTW.type_url:
          typeUrl = readTypeUrl(reader);
          break;
        case SOTW.response_nonce:
          nonce = readString(reader);
          break;
        case SOTW.error_detail:
          error = readStatus(reader);
          break;
        default:
          reader.skipType(t & 7);
      }
    }
    return new DecodedDiscoveryRequest(version, typeUrl, nonce, names.bytes(message), node, error);
  });
}

/** One initial_resource_versions entry: a message of key (1) and value (2), both strings. */
function readMapEntry(reader: protobuf.Reader, into: Record<string, string>): void {
  const end = reader.uint32() + reader.pos;
  if (end > reader.len) throw new RangeError(`index out of range: map entry ends at ${end}, message at ${reader.len}`);
  let key = '';
  let value = '';
  while (reader.pos < end) {
    const t = reader.uint32();
    if (t === MAP_KEY) key = readString(reader);
    else if (t === MAP_VALUE) value = readString(reader);
    else reader.skipType(t & 7);
  }
  if (reader.pos !== end) throw new RangeError(`index out of range: map entry overran its length by ${reader.pos - end} bytes`);
  into[key] = value;
}

/** Delta requests carry names once, on subscribe and unsubscribe: decoded eagerly. */
export function decodeDeltaDiscoveryRequest(bytes: Uint8Array): DeltaDiscoveryRequest {
  return decodeOrThrow(DELTA_REQUEST, bytes, (reader) => {
    const request: DeltaDiscoveryRequest = {
      node: undefined,
      type_url: '',
      resource_names_subscribe: [],
      resource_names_unsubscribe: [],
      initial_resource_versions: Object.create(null) as Record<string, string>,
      response_nonce: '',
      error_detail: undefined,
    };
    while (reader.pos < reader.len) {
      const t = reader.uint32();
      switch (t) {
        case DELTA.node:
          request.node = readNode(reader);
          break;
        case DELTA.type_url:
          request.type_url = readTypeUrl(reader);
          break;
        case DELTA.resource_names_subscribe:
          request.resource_names_subscribe.push(readString(reader));
          break;
        case DELTA.resource_names_unsubscribe:
          request.resource_names_unsubscribe.push(readString(reader));
          break;
        case DELTA.initial_resource_versions:
          readMapEntry(reader, request.initial_resource_versions);
          break;
        case DELTA.response_nonce:
          request.response_nonce = readString(reader);
          break;
        case DELTA.error_detail:
          request.error_detail = readStatus(reader);
          break;
        default:
          reader.skipType(t & 7);
      }
    }
    return request;
  });
}
