// The one place that knows xDS type URLs and how a resource becomes bytes and back.
// Everything above this module handles plain objects with Envoy's snake_case field
// names; everything below it handles encoded `google.protobuf.Any` bytes.
import protobuf from 'protobufjs';
import { lookupMessage } from './protos.js';

const PREFIX = 'type.googleapis.com/';

export const TypeUrl = {
  Listener: `${PREFIX}envoy.config.listener.v3.Listener`,
  RouteConfiguration: `${PREFIX}envoy.config.route.v3.RouteConfiguration`,
  Cluster: `${PREFIX}envoy.config.cluster.v3.Cluster`,
  ClusterLoadAssignment: `${PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`,
} as const;
export type ResourceTypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

/** Short names used in logs, metrics and the CLI. */
export const TYPE_SHORT_NAMES: Record<ResourceTypeUrl, string> = {
  [TypeUrl.Listener]: 'lds',
  [TypeUrl.RouteConfiguration]: 'rds',
  [TypeUrl.Cluster]: 'cds',
  [TypeUrl.ClusterLoadAssignment]: 'eds',
};

/** The order in which a change reaches a proxy: make before break (xDS spec). */
export const PUSH_ORDER: readonly ResourceTypeUrl[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
];

export const isResourceTypeUrl = (url: string): url is ResourceTypeUrl => url in TYPE_SHORT_NAMES;

/** `type.googleapis.com/a.b.C` → `a.b.C`. */
export function messageNameOf(typeUrl: string): string {
  const slash = typeUrl.lastIndexOf('/');
  return slash === -1 ? typeUrl : typeUrl.slice(slash + 1);
}

export function typeUrlOf(messageName: string): string {
  return PREFIX + messageName;
}

/** A plain object in Envoy's field names; nested `Any` values carry an `@type` key. */
export type ResourceObject = Record<string, unknown>;

const typeCache = new Map<string, protobuf.Type>();
function typeFor(typeUrl: string): protobuf.Type {
  let type = typeCache.get(typeUrl);
  if (!type) {
    type = lookupMessage(messageNameOf(typeUrl));
    typeCache.set(typeUrl, type);
  }
  return type;
}

/**
 * Encodes a message. `verify` catches wrong field types before they turn into silently
 * dropped fields; the error names the message type.
 */
export function encodeMessage(typeUrl: string, object: ResourceObject): Uint8Array {
  const type = typeFor(typeUrl);
  const message = type.fromObject(object);
  const problem = type.verify(message);
  if (problem) throw new Error(`invalid ${messageNameOf(typeUrl)}: ${problem}`);
  return type.encode(message).finish();
}

export function decodeMessage(typeUrl: string, bytes: Uint8Array): ResourceObject {
  const type = typeFor(typeUrl);
  return type.toObject(type.decode(bytes), TO_OBJECT_OPTIONS);
}

/** Readable objects: enums by name, 64-bit numbers as strings, Any as `@type` + fields. */
export const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  enums: String,
  longs: String,
  bytes: String,
  defaults: false,
  json: true,
};

const anyType = (): protobuf.Type => lookupMessage('google.protobuf.Any');

/** Wraps already-encoded message bytes in a `google.protobuf.Any`. */
export function encodeAny(typeUrl: string, value: Uint8Array): Uint8Array {
  const writer = protobuf.Writer.create();
  // Any { string type_url = 1; bytes value = 2; }
  writer.uint32((1 << 3) | 2).string(typeUrl);
  writer.uint32((2 << 3) | 2).bytes(value);
  return writer.finish();
}

export interface DecodedAny {
  typeUrl: string;
  value: Uint8Array;
}

export function decodeAny(bytes: Uint8Array): DecodedAny {
  const any = anyType().decode(bytes) as unknown as { type_url: string; value: Uint8Array };
  return { typeUrl: any.type_url, value: any.value };
}

/** An Any (bytes) → the plain object of the message inside. */
export function unpackAny(bytes: Uint8Array): { typeUrl: string; object: ResourceObject } {
  const { typeUrl, value } = decodeAny(bytes);
  return { typeUrl, object: decodeMessage(typeUrl, value) };
}

/** The resource's own name: `name` for most types, `cluster_name` for endpoints. */
export function resourceName(typeUrl: ResourceTypeUrl, object: ResourceObject): string {
  const key = typeUrl === TypeUrl.ClusterLoadAssignment ? 'cluster_name' : 'name';
  const name = object[key];
  if (typeof name !== 'string' || name === '') {
    throw new Error(`${messageNameOf(typeUrl)} has no ${key}`);
  }
  return name;
}
