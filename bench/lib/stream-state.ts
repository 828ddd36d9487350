// What an idle, fully ACKed stream's own state holds in the JS heap, for a SotW and for a
// delta stream side by side. The streams are driven in-process (requests handed to the
// stream, responses read from its sink and ACKed), so nothing of gRPC or HTTP/2 is
// counted: only what Shadowplane's stream keeps. B4's main figure measures SotW streams
// over the network; Envoy can also be told to use delta xDS (`api_type: DELTA_GRPC`),
// whose streams track what the client holds name by name.
import v8 from 'node:v8';
import { silentLogger } from '../../src/log.js';
import { groupKey, proxyKeyOf } from '../../src/translate/proxy.js';
import type { Snapshot, SnapshotCache } from '../../src/xds/cache.js';
import { noopCallbacks } from '../../src/xds/callbacks.js';
import { DeltaStream } from '../../src/xds/delta-stream.js';
import { lookupMessage } from '../../src/xds/protos.js';
import { TypeUrl, type ResourceTypeUrl } from '../../src/xds/resources.js';
import { SotwStream } from '../../src/xds/sotw-stream.js';
import type { ResponseSink, StreamOptions } from '../../src/xds/stream-base.js';
import { readResponse } from '../proxy/wire.js';
import { collectGarbage } from './gc.js';
import { EDGE_METADATA, EDGE_ROUTE_CONFIG } from './pipeline.js';

export type StreamKind = 'sotw' | 'delta';

const nothing = (): void => {};

/** What an ACK echoes of a response: its type, version and nonce. */
interface Head {
  typeUrl: string;
  version: string;
  nonce: string;
}

function deltaHead(bytes: Buffer): Head {
  const m = lookupMessage('envoy.service.discovery.v3.DeltaDiscoveryResponse').decode(bytes) as unknown as { type_url: string; system_version_info: string; nonce: string };
  return { typeUrl: m.type_url, version: m.system_version_info, nonce: m.nonce };
}

const streamOptions = new WeakMap<SnapshotCache, StreamOptions>();

/** One options object (and logger) for every stream of a cache, as the server has. */
function optionsFor(cache: SnapshotCache): StreamOptions {
  let options = streamOptions.get(cache);
  if (!options) {
    options = {
      watcher: cache,
      callbacks: noopCallbacks,
      logger: silentLogger(),
      groupOf: (node) => groupKey(proxyKeyOf(node.cluster, node.metadata)),
      controlPlaneId: 'shadowplane/bench',
      dependencyTimeoutMs: 5_000,
    };
    streamOptions.set(cache, options);
  }
  return options;
}

const subscriptions = new WeakMap<Snapshot, Record<ResourceTypeUrl, string[]>>();

/**
 * What an edge Envoy subscribes to, by type: every cluster and listener (wildcard), every
 * endpoint set by name, the edge's route configuration. One list for every stream, as
 * equal requests off the wire would be: the server keeps a subscription once for all
 * streams that make it, and a list made per stream would be counted as the stream's.
 */
function namesOf(snapshot: Snapshot): Record<ResourceTypeUrl, string[]> {
  let named = subscriptions.get(snapshot);
  if (!named) {
    named = {
      [TypeUrl.Cluster]: [],
      [TypeUrl.ClusterLoadAssignment]: [...snapshot.resources(TypeUrl.ClusterLoadAssignment).keys()],
      [TypeUrl.Listener]: [],
      [TypeUrl.RouteConfiguration]: [EDGE_ROUTE_CONFIG],
    };
    subscriptions.set(snapshot, named);
  }
  return named;
}

/**
 * Opens one stream of `kind` as an edge Envoy would (every cluster, every endpoint set
 * by name, every listener, the edge's route configuration), ACKs every response until
 * none is left, and returns it. Throws if a type is not ACKed at the end.
 */
export function openSynced(cache: SnapshotCache, group: string, kind: StreamKind, id: number): SotwStream | DeltaStream {
  const snapshot = cache.get(group);
  if (!snapshot) throw new Error(`no snapshot for group ${group}`);
  const named = namesOf(snapshot);
  const queue: Buffer[] = [];
  const sink: ResponseSink = {
    write: (bytes) => queue.push(bytes) > 0,
    onDrain: nothing,
    fail: (code, message) => {
      throw new Error(`the stream failed: ${code} ${message}`);
    },
  };
  const options = optionsFor(cache);
  const node = { id: `proxy-${id}`, cluster: 'gateway', metadata: EDGE_METADATA, user_agent_name: 'envoy' };
  const types = Object.keys(named) as ResourceTypeUrl[];
  let stream: SotwStream | DeltaStream;
  let ack: (head: Head) => void;
  if (kind === 'delta') {
    const delta = new DeltaStream(id, 'delta', 'in-process', sink, options);
    const request = (typeUrl: string, subscribe: string[], nonce = ''): void =>
      delta.onRequest({ node, type_url: typeUrl, resource_names_subscribe: subscribe, resource_names_unsubscribe: [], initial_resource_versions: {}, response_nonce: nonce });
    for (const t of types) request(t, named[t]);
    ack = (head) => request(head.typeUrl, [], head.nonce);
    stream = delta;
  } else {
    const sotw = new SotwStream(id, 'sotw', 'in-process', sink, options);
    const request = (typeUrl: ResourceTypeUrl, version = '', nonce = ''): void =>
      sotw.onRequest({ node, type_url: typeUrl, resource_names: named[typeUrl], version_info: version, response_nonce: nonce });
    for (const t of types) request(t);
    ack = (head) => request(head.typeUrl as ResourceTypeUrl, head.version, head.nonce);
    stream = sotw;
  }
  for (let answered = 0; queue.length > 0; answered++) {
    if (answered > 100) throw new Error('the stream kept responding: more than 100 responses to ACK');
    const bytes = queue.shift()!;
    ack(kind === 'delta' ? deltaHead(bytes) : readResponse(bytes, false));
  }
  const unacked = stream.status().filter((s) => s.acked.size === 0);
  if (unacked.length > 0) throw new Error(`not ACKed: ${unacked.map((s) => s.typeUrl).join(', ')}`);
  return stream;
}

/**
 * The JS heap one more idle, fully ACKed stream of `kind` holds, in bytes: the growth of
 * the heap (compiled code left out) over `streams` streams opened after as many others
 * (which pay for what is made once, and let V8 optimise the path: the feedback and
 * metadata it makes meanwhile are not compiled code, and a first few streams read up to
 * 8 KB a SotW stream more than later ones), divided by their number.
 */
export async function streamStateBytes(cache: SnapshotCache, group: string, kind: StreamKind, streams: number): Promise<number> {
  const held: (SotwStream | DeltaStream)[] = [];
  for (let i = 0; i < streams; i++) held.push(openSynced(cache, group, kind, held.length + 1));
  const heap = async (): Promise<number> => {
    await new Promise((resolve) => setTimeout(resolve, 100));
    collectGarbage();
    const code = v8.getHeapCodeStatistics();
    return process.memoryUsage().heapUsed - code.code_and_metadata_size - code.bytecode_and_metadata_size;
  };
  const before = await heap();
  for (let i = 0; i < streams; i++) held.push(openSynced(cache, group, kind, held.length + 1));
  const after = await heap();
  if (held.some((s) => s.status().length !== 4)) throw new Error('a stream lost a type');
  return (after - before) / streams;
}
