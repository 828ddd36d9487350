// envoy.service.status.v3.ClientStatusDiscoveryService: per connected node, which
// resources were sent and whether the node ACKed or NACKed them, so `istioctl`-style
// tooling and our own CLI can ask "what does this proxy have?".
import type * as grpc from '@grpc/grpc-js';
import { lookupMessage } from './protos.js';
import { decodeAny, TO_OBJECT_OPTIONS } from './resources.js';
import type { Node } from './wire.js';
import type { TypeStatus } from './sotw-stream.js';

export interface StatusSource {
  readonly nodeInfo: Node | undefined;
  status(): TypeStatus[];
}

export interface StreamRegistry {
  streams(): StatusSource[];
}

interface ClientStatusRequest {
  node_matchers?: { node_id?: { exact?: string; prefix?: string } }[];
  exclude_resource_contents?: boolean;
}

const SERVICE = '/envoy.service.status.v3.ClientStatusDiscoveryService';
const requestType = () => lookupMessage('envoy.service.status.v3.ClientStatusRequest');
const responseType = () => lookupMessage('envoy.service.status.v3.ClientStatusResponse');

function matches(node: Node, request: ClientStatusRequest): boolean {
  const matchers = request.node_matchers ?? [];
  if (matchers.length === 0) return true;
  return matchers.some((m) => {
    const id = m.node_id;
    if (!id) return true;
    if (id.exact !== undefined && id.exact !== '') return node.id === id.exact;
    if (id.prefix !== undefined) return node.id.startsWith(id.prefix);
    return true;
  });
}

function timestamp(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** One `GenericXdsConfig` per resource a node was sent or acknowledged. */
function genericConfigs(status: TypeStatus[], withContents: boolean): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const t of status) {
    const names = new Set([...t.sent.keys(), ...t.acked.keys()]);
    for (const name of [...names].sort()) {
      const sent = t.sent.get(name);
      const acked = t.acked.get(name);
      const current = sent ?? acked!;
      const ackedCurrent = acked !== undefined && acked.version === current.version;
      const rejected = !ackedCurrent && t.lastError !== undefined;
      const entry: Record<string, unknown> = {
        type_url: t.typeUrl,
        name,
        version_info: current.version,
        last_updated: timestamp(t.updatedAt),
        config_status: ackedCurrent ? 'SYNCED' : rejected ? 'ERROR' : 'STALE',
        client_status: ackedCurrent ? 'ACKED' : rejected ? 'NACKED' : 'REQUESTED',
      };
      if (rejected) entry.error_state = { details: t.lastError, version_info: current.version };
      if (withContents) {
        const any = decodeAny(current.any);
        entry.xds_config = { type_url: any.typeUrl, value: any.value };
      }
      out.push(entry);
    }
  }
  return out;
}

export function clientStatus(registry: StreamRegistry, request: ClientStatusRequest): Uint8Array {
  const config = registry
    .streams()
    .filter((s): s is StatusSource & { nodeInfo: Node } => s.nodeInfo !== undefined && matches(s.nodeInfo, request))
    .map((s) => ({
      node: { id: s.nodeInfo.id, cluster: s.nodeInfo.cluster },
      generic_xds_configs: genericConfigs(s.status(), !request.exclude_resource_contents),
    }));
  const type = responseType();
  return type.encode(type.fromObject({ config })).finish();
}

const decodeRequest = (bytes: Uint8Array): ClientStatusRequest =>
  requestType().toObject(requestType().decode(bytes), TO_OBJECT_OPTIONS);
const passThrough = (b: Buffer): Buffer => b;

export const csdsService = {
  definition: {
    StreamClientStatus: {
      path: `${SERVICE}/StreamClientStatus`,
      requestStream: true,
      responseStream: true,
      requestSerialize: passThrough,
      requestDeserialize: decodeRequest,
      responseSerialize: passThrough,
      responseDeserialize: passThrough,
    },
    FetchClientStatus: {
      path: `${SERVICE}/FetchClientStatus`,
      requestStream: false,
      responseStream: false,
      requestSerialize: passThrough,
      requestDeserialize: decodeRequest,
      responseSerialize: passThrough,
      responseDeserialize: passThrough,
    },
  } as grpc.ServiceDefinition,
  handlers(registry: StreamRegistry): grpc.UntypedServiceImplementation {
    return {
      FetchClientStatus: (call: grpc.ServerUnaryCall<ClientStatusRequest, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        callback(null, Buffer.from(clientStatus(registry, call.request)));
      },
      StreamClientStatus: (call: grpc.ServerDuplexStream<ClientStatusRequest, Buffer>) => {
        call.on('data', (request: ClientStatusRequest) => call.write(Buffer.from(clientStatus(registry, request))));
        call.on('end', () => call.end());
      },
    };
  },
};
