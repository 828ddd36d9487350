// What a simulated proxy reads and writes on its ADS stream. Requests are encoded with
// protobufjs from Envoy's own DiscoveryRequest type. Responses are read with a
// protobufjs Reader that keeps only what a proxy needs to answer (version, nonce, type)
// and, for clusters, the names it must ask EDS for: every simulated proxy shares the
// control plane's two cores, so a full decode of every resource in thousands of
// streams would measure the proxies instead of the server.
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

const requestType = lookupMessage('envoy.service.discovery.v3.DiscoveryRequest');

export interface RequestFields {
  version_info?: string;
  node?: { id: string; cluster: string; metadata: Record<string, unknown>; user_agent_name: string };
  resource_names?: readonly string[];
  type_url: string;
  response_nonce?: string;
}

export function encodeRequest(request: RequestFields): Buffer {
  return Buffer.from(requestType.encode(requestType.fromObject(request)).finish());
}
