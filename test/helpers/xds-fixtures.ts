// xDS inputs built by name, and a fake transport for driving a stream without gRPC.
// Each builder returns a `Resource` (encoded once, content-hash version), so a test
// reads as the configuration it publishes: `cluster('api.beta')`, `routes('ingress', {api: 'api.beta'})`.
import type { status as GrpcStatus } from '@grpc/grpc-js';
import { Snapshot } from '../../src/xds/cache.js';
import type { XdsCallbacks } from '../../src/xds/callbacks.js';
import { Resource } from '../../src/xds/resource.js';
import { TypeUrl, decodeMessage, resourceName, typeUrlOf, type ResourceObject, type ResourceTypeUrl } from '../../src/xds/resources.js';
import type { ResponseSink } from '../../src/xds/stream-base.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

export interface ClusterOptions {
  /** Changing it changes the cluster (and its version) without changing its name. */
  connectTimeoutSeconds?: number;
}

/** An EDS cluster whose endpoints come over ADS under the cluster's own name. */
export function cluster(name: string, { connectTimeoutSeconds = 1 }: ClusterOptions = {}): Resource {
  return Resource.fromObject(TypeUrl.Cluster, {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE },
    connect_timeout: { seconds: connectTimeoutSeconds },
  });
}

/** The ClusterLoadAssignment of `clusterName`: one locality with `[address, port]` pairs. */
export function endpoints(clusterName: string, addresses: readonly (readonly [string, number])[]): Resource {
  return Resource.fromObject(TypeUrl.ClusterLoadAssignment, {
    cluster_name: clusterName,
    endpoints:
      addresses.length === 0
        ? []
        : [{ lb_endpoints: addresses.map(([address, port]) => ({ endpoint: { address: { socket_address: { address, port_value: port } } } })) }],
  });
}

/** A route configuration with one virtual host per domain, each sending `/` to a cluster. */
export function routes(name: string, clusterByDomain: Record<string, string>): Resource {
  return Resource.fromObject(TypeUrl.RouteConfiguration, {
    name,
    virtual_hosts: Object.entries(clusterByDomain)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([domain, clusterName]) => ({
        name: domain,
        domains: [domain],
        routes: [{ match: { prefix: '/' }, route: { cluster: clusterName } }],
      })),
  });
}

/** An HTTP listener on 127.0.0.1:`port` whose routes come over ADS as `routeConfigName`. */
export function listener(name: string, port: number, routeConfigName: string): Resource {
  return Resource.fromObject(TypeUrl.Listener, {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              rds: { route_config_name: routeConfigName, config_source: ADS_SOURCE },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
            },
          },
        ],
      },
    ],
  });
}

/** A cluster and its endpoints: the usual pair a service contributes. */
export function service(name: string, port: number, options: ClusterOptions = {}): Resource[] {
  return [cluster(name, options), endpoints(name, [['127.0.0.1', port]])];
}

/** A snapshot of resources, given one by one or in groups (`service(...)`, `old.resources(LDS).values()`). */
export function snapshot(...resources: (Resource | Iterable<Resource>)[]): Snapshot {
  return Snapshot.create(resources.flatMap((r) => (r instanceof Resource ? [r] : [...r])));
}

/**
 * The smallest complete config: listener "ingress" on port 10000 routing `api` to the
 * cluster "api.beta", whose one endpoint is 127.0.0.1:`apiPort`.
 */
export function ingressSnapshot({ apiPort = 9001, ...clusterOptions }: ClusterOptions & { apiPort?: number } = {}): Snapshot {
  return snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta' }), service('api.beta', apiPort, clusterOptions));
}

export const DISCOVERY_RESPONSE = typeUrlOf('envoy.service.discovery.v3.DiscoveryResponse');
export const DELTA_DISCOVERY_RESPONSE = typeUrlOf('envoy.service.discovery.v3.DeltaDiscoveryResponse');

/** A decoded DiscoveryResponse, with the names of its resources in the order sent. */
export interface SotwReply {
  version: string;
  typeUrl: string;
  nonce: string;
  names: string[];
  resources: ResourceObject[];
  raw: ResourceObject;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export function decodeSotwReply(bytes: Uint8Array): SotwReply {
  const raw = decodeMessage(DISCOVERY_RESPONSE, bytes);
  const typeUrl = str(raw.type_url);
  const resources = (raw.resources as ResourceObject[] | undefined) ?? [];
  return {
    version: str(raw.version_info),
    typeUrl,
    nonce: str(raw.nonce),
    names: resources.map((r) => resourceName(typeUrl as ResourceTypeUrl, r)),
    resources,
    raw,
  };
}

/** A decoded DeltaDiscoveryResponse. */
export interface DeltaReply {
  systemVersion: string;
  typeUrl: string;
  nonce: string;
  /** Resources sent, as name → version. */
  versions: Record<string, string>;
  names: string[];
  /** The resources themselves, decoded. */
  resources: ResourceObject[];
  removed: string[];
  raw: ResourceObject;
}

export function decodeDeltaReply(bytes: Uint8Array): DeltaReply {
  const raw = decodeMessage(DELTA_DISCOVERY_RESPONSE, bytes);
  const resources = (raw.resources as { name: string; version: string; resource: ResourceObject }[] | undefined) ?? [];
  return {
    systemVersion: str(raw.system_version_info),
    typeUrl: str(raw.type_url),
    nonce: str(raw.nonce),
    versions: Object.fromEntries(resources.map((r) => [r.name, r.version])),
    names: resources.map((r) => r.name),
    resources: resources.map((r) => r.resource),
    removed: (raw.removed_resources as string[] | undefined) ?? [],
    raw,
  };
}

/**
 * A ResponseSink that records what a stream writes. `full = true` makes `write` report
 * a full transport buffer (the bytes are still taken, as gRPC takes them); `drain()`
 * empties it and wakes the stream.
 */
export class FakeSink implements ResponseSink {
  readonly writes: Buffer[] = [];
  failure?: { code: GrpcStatus; message: string };
  full = false;
  private taken = 0;
  private drainListeners: (() => void)[] = [];

  write(bytes: Buffer): boolean {
    this.writes.push(bytes);
    return !this.full;
  }

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  fail(code: GrpcStatus, message: string): void {
    this.failure = { code, message };
  }

  drain(): void {
    this.full = false;
    const listeners = this.drainListeners;
    this.drainListeners = [];
    for (const l of listeners) l();
  }

  get pendingDrainListeners(): number {
    return this.drainListeners.length;
  }

  /** Raw writes since the last call. */
  takeBytes(): Buffer[] {
    const out = this.writes.slice(this.taken);
    this.taken = this.writes.length;
    return out;
  }
}

export type CallbackEvent = { [K in keyof XdsCallbacks]: { hook: K; event: Parameters<XdsCallbacks[K]>[0] } }[keyof XdsCallbacks];

/** Callbacks that remember every call, in order. */
export function recordingCallbacks(): XdsCallbacks & { events: CallbackEvent[]; of<K extends keyof XdsCallbacks>(hook: K): Parameters<XdsCallbacks[K]>[0][] } {
  const events: CallbackEvent[] = [];
  const record =
    <K extends keyof XdsCallbacks>(hook: K) =>
    (event: Parameters<XdsCallbacks[K]>[0]): void => {
      events.push({ hook, event } as CallbackEvent);
    };
  return {
    events,
    of: <K extends keyof XdsCallbacks>(hook: K) => events.filter((e) => e.hook === hook).map((e) => e.event as Parameters<XdsCallbacks[K]>[0]),
    onStreamOpen: record('onStreamOpen'),
    onStreamClose: record('onStreamClose'),
    onRequest: record('onRequest'),
    onResponse: record('onResponse'),
    onAck: record('onAck'),
    onNack: record('onNack'),
  };
}

export { TypeUrl };

/** Two proxies of one group, made by `make` with ids 1 and 2, both connected and in sync. */
export function twoSynced<C extends { connect(): unknown }>(make: (id: number, nodeId: string) => C): [C, C] {
  const pair: [C, C] = [make(1, 'envoy-1'), make(2, 'envoy-2')];
  for (const c of pair) c.connect();
  return pair;
}

/** The RDS names a decoded Listener asks for, as Envoy would subscribe to them. */
export function routeConfigNamesOf(listenerObject: ResourceObject): string[] {
  const names: string[] = [];
  for (const chain of (listenerObject.filter_chains as { filters?: { typed_config?: { rds?: { route_config_name?: string } } }[] }[] | undefined) ?? []) {
    for (const filter of chain.filters ?? []) {
      const name = filter.typed_config?.rds?.route_config_name;
      if (name) names.push(name);
    }
  }
  return names;
}
