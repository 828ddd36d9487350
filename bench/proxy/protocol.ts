// What a simulated proxy says on a state-of-the-world ADS stream, apart from how the
// bytes travel (gRPC in ads-fleet.ts, a direct call in B2). It asks what an edge Envoy
// asks: CDS and LDS as wildcards, then EDS for the clusters it got and RDS for its
// listener's route configuration, and it ACKs every response by echoing version_info
// and nonce, as Envoy does with set_node_on_first_message_only.
import { TypeUrl } from '../../src/xds/resources.js';
import { readClusters, readResponseHead, type Parts, type RequestFields, type ResponseHead } from './wire.js';

export const ALL_TYPES = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration] as const;

export interface ProxyIdentity {
  id: string;
  metadata: Record<string, unknown>;
  /** The route configurations to ask RDS for, once a listener has arrived. */
  routeConfigs: readonly string[];
}

/** The sorted names and their key, per list read (lists are shared by readClusters). */
const sorted = new WeakMap<readonly string[], { names: string[]; key: string }>();

function sortedNames(edsNames: readonly string[]): { names: string[]; key: string } {
  let entry = sorted.get(edsNames);
  if (!entry) {
    const names = [...edsNames].sort();
    sorted.set(edsNames, (entry = { names, key: names.join('\u0000') }));
  }
  return entry;
}

interface TypeState {
  version: string;
  nonce: string;
  names: readonly string[];
  acked: boolean;
}

export class ProxyProtocol {
  private readonly types = new Map<string, TypeState>();
  private edsKey = '';
  /** True once a response of every type has been ACKed. */
  synced = false;

  constructor(
    private readonly identity: ProxyIdentity,
    private readonly send: (request: Required<Omit<RequestFields, 'node'>> & Pick<RequestFields, 'node'>) => void,
  ) {
    for (const typeUrl of ALL_TYPES) this.types.set(typeUrl, { version: '', nonce: '', names: [], acked: false });
  }

  /** The first requests of a stream: CDS (with the node), then LDS. */
  start(): void {
    this.request(TypeUrl.Cluster, { id: this.identity.id, cluster: 'gateway', metadata: this.identity.metadata, user_agent_name: 'envoy' });
    this.request(TypeUrl.Listener);
  }

  private request(typeUrl: string, node?: RequestFields['node']): void {
    const st = this.types.get(typeUrl)!;
    this.send({ type_url: typeUrl, version_info: st.version, response_nonce: st.nonce, resource_names: st.names, ...(node ? { node } : {}) });
  }

  /** Reads a response, asks for what it newly needs, and ACKs it. */
  onResponse(bytes: Buffer): ResponseHead {
    return this.onResponseParts([bytes], bytes.length);
  }

  /** onResponse for a response given as the parts it arrived in, `length` bytes in all, read in place. */
  onResponseParts(parts: Parts, length: number): ResponseHead {
    const head = readResponseHead(parts, length);
    const response = head.typeUrl === TypeUrl.Cluster ? readClusters(parts, length) : head;
    const st = this.types.get(response.typeUrl);
    if (!st) return response;
    st.version = response.version;
    st.nonce = response.nonce;
    if (response.edsNames) {
      // Envoy asks for the endpoints of new clusters before it ACKs them.
      const { names, key } = sortedNames(response.edsNames);
      if (key !== this.edsKey) {
        this.edsKey = key;
        this.types.get(TypeUrl.ClusterLoadAssignment)!.names = names;
        this.request(TypeUrl.ClusterLoadAssignment);
      }
    } else if (response.typeUrl === TypeUrl.Listener) {
      const rds = this.types.get(TypeUrl.RouteConfiguration)!;
      if (rds.names.length === 0) {
        rds.names = this.identity.routeConfigs;
        this.request(TypeUrl.RouteConfiguration);
      }
    }
    this.request(response.typeUrl);
    st.acked = true;
    if (!this.synced) this.synced = [...this.types.values()].every((t) => t.acked);
    return response;
  }
}
