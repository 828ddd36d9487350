// Discovery messages on the wire. Requests are decoded with protobufjs; responses are
// assembled from the resources' pre-encoded entries (see resource.ts), so building a
// response costs a few small writes and one copy, whatever the number of streams.
import protobuf from 'protobufjs';
import { lookupMessage } from './protos.js';
import { TO_OBJECT_OPTIONS } from './resources.js';
import type { Resource } from './resource.js';

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
  type_url: string;
  response_nonce: string;
  error_detail?: RpcStatus;
}

export interface DeltaDiscoveryRequest {
  node?: Node;
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail?: RpcStatus;
}

const REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
const DELTA_REQUEST = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
const decodeOptions: protobuf.IConversionOptions = { ...TO_OBJECT_OPTIONS, arrays: true, objects: true, defaults: true };

function decodeAs<T>(name: string, bytes: Uint8Array): T {
  const type = lookupMessage(name);
  const object = type.toObject(type.decode(bytes), decodeOptions) as Record<string, unknown>;
  // Absent sub-messages come back as null with `defaults: true`; absent means undefined here.
  for (const key of ['node', 'error_detail']) if (object[key] === null) delete object[key];
  // Struct is read as plain JSON (json-wrappers.ts); absent metadata is {}.
  const node = object.node as { metadata?: unknown } | undefined;
  if (node) node.metadata ??= {};
  return object as T;
}

export const decodeDiscoveryRequest = (bytes: Uint8Array): DiscoveryRequest => decodeAs(REQUEST, bytes);
export const decodeDeltaDiscoveryRequest = (bytes: Uint8Array): DeltaDiscoveryRequest => decodeAs(DELTA_REQUEST, bytes);

function controlPlane(fieldNumber: number, identifier: string): Uint8Array {
  const inner = protobuf.Writer.create().uint32((1 << 3) | 2).string(identifier).finish();
  return protobuf.Writer.create().uint32((fieldNumber << 3) | 2).bytes(inner).finish();
}

function concat(head: Uint8Array, entries: readonly Uint8Array[], tail: Uint8Array): Buffer {
  let length = head.length + tail.length;
  for (const e of entries) length += e.length;
  const out = Buffer.allocUnsafe(length);
  out.set(head, 0);
  let offset = head.length;
  for (const e of entries) {
    out.set(e, offset);
    offset += e.length;
  }
  out.set(tail, offset);
  return out;
}

export interface SotwResponse {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  resources: readonly Resource[];
  controlPlaneId: string;
}

export function encodeDiscoveryResponse(r: SotwResponse): Buffer {
  const head = protobuf.Writer.create()
    .uint32((1 << 3) | 2).string(r.versionInfo)
    .uint32((4 << 3) | 2).string(r.typeUrl)
    .uint32((5 << 3) | 2).string(r.nonce)
    .finish();
  return concat(head, r.resources.map((res) => res.sotwEntry()), controlPlane(6, r.controlPlaneId));
}

export interface DeltaResponse {
  systemVersionInfo: string;
  typeUrl: string;
  nonce: string;
  resources: readonly Resource[];
  removed: readonly string[];
  controlPlaneId: string;
}

export function encodeDeltaDiscoveryResponse(r: DeltaResponse): Buffer {
  const head = protobuf.Writer.create()
    .uint32((1 << 3) | 2).string(r.systemVersionInfo)
    .uint32((4 << 3) | 2).string(r.typeUrl)
    .uint32((5 << 3) | 2).string(r.nonce);
  for (const name of r.removed) head.uint32((6 << 3) | 2).string(name);
  return concat(head.finish(), r.resources.map((res) => res.deltaEntry()), controlPlane(7, r.controlPlaneId));
}
