// Discovery messages on the wire. Requests are read field by field (request-decode.ts),
// resource names only when asked; responses are assembled from the resources'
// pre-encoded entries (see resource.ts), so building a response costs a few small writes
// and one copy, whatever the number of streams.
import protobuf from 'protobufjs';
import type { Resource } from './resource.js';

export {
  decodeDeltaDiscoveryRequest,
  decodeDiscoveryRequest,
  sameResourceNameBytes,
  type DecodedDiscoveryRequest,
  type DeltaDiscoveryRequest,
  type DiscoveryRequest,
  type Node,
  type ResourceNameBytes,
  type RpcStatus,
} from './request-decode.js';

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
