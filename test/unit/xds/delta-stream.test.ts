// The incremental ADS loop, driven directly: requests go into DeltaStream, and what it
// writes to a fake sink is decoded as Envoy would decode it.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Snapshot, SnapshotCache } from '../../../src/xds/cache.js';
import { DeltaStream } from '../../../src/xds/delta-stream.js';
import { Resource } from '../../../src/xds/resource.js';
import type { Node } from '../../../src/xds/wire.js';
import { silentLogger } from '../../../src/log.js';
import {
  FakeSink,
  TypeUrl,
  cluster,
  decodeDeltaReply,
  ingressSnapshot,
  listener,
  recordingCallbacks,
  routeConfigNamesOf,
  twoSynced,
  routes,
  service,
  snapshot,
  type DeltaReply,
} from '../../helpers/xds-fixtures.js';
import type { ResourceObject } from '../../../src/xds/resources.js';

const { Listener: LDS, RouteConfiguration: RDS, Cluster: CDS, ClusterLoadAssignment: EDS } = TypeUrl;
const GROUP = 'g';
const GATE_MS = 5_000;

interface Ask {
  subscribe?: string[];
  unsubscribe?: string[];
  initial?: Record<string, string>;
  nonce?: string;
  error?: string;
  /** `null` sends no node even on the first request. */
  node?: Node | null;
}

/** One delta stream and the client side of it: what a proxy subscribed to and holds. */
class DeltaClient {
  readonly sink = new FakeSink();
  readonly callbacks = recordingCallbacks();
  readonly stream: DeltaStream;
  private readonly node: Node;
  private nodeSent = false;
  private readonly subscribed = new Map<string, Set<string>>();
  /** type → name → version the client holds. */
  readonly holds = new Map<string, Map<string, string>>();
  private readonly listeners = new Map<string, ResourceObject>();

  constructor(
    readonly cache: SnapshotCache,
    { id = 1, nodeId = 'envoy-1', dependencyTimeoutMs = GATE_MS }: { id?: number; nodeId?: string; dependencyTimeoutMs?: number } = {},
  ) {
    this.node = { id: nodeId, cluster: 'ingress' };
    this.stream = new DeltaStream(id, 'delta', `peer-${id}`, this.sink, {
      watcher: cache,
      callbacks: this.callbacks,
      logger: silentLogger(),
      groupOf: () => GROUP,
      controlPlaneId: 'test',
      dependencyTimeoutMs,
    });
  }

  request(typeUrl: string, ask: Ask = {}): void {
    const node = ask.node === null ? undefined : (ask.node ?? (this.nodeSent ? undefined : this.node));
    if (node) this.nodeSent = true;
    this.stream.onRequest({
      node,
      type_url: typeUrl,
      resource_names_subscribe: ask.subscribe ?? [],
      resource_names_unsubscribe: ask.unsubscribe ?? [],
      initial_resource_versions: ask.initial ?? {},
      response_nonce: ask.nonce ?? '',
      ...(ask.error !== undefined ? { error_detail: { code: 3, message: ask.error } } : {}),
    });
  }

  ack(reply: DeltaReply): void {
    this.request(reply.typeUrl, { nonce: reply.nonce });
  }

  nack(reply: DeltaReply, message: string): void {
    this.request(reply.typeUrl, { nonce: reply.nonce, error: message });
  }

  /** Subscribes and unsubscribes so that exactly `names` are subscribed, as Envoy does. */
  want(typeUrl: string, names: Iterable<string>): void {
    const target = new Set(names);
    const current = this.subscribed.get(typeUrl) ?? new Set<string>();
    const subscribe = [...target].filter((n) => !current.has(n)).sort();
    const unsubscribe = [...current].filter((n) => !target.has(n)).sort();
    this.subscribed.set(typeUrl, target);
    if (subscribe.length > 0 || unsubscribe.length > 0) this.request(typeUrl, { subscribe, unsubscribe });
  }

  replies(): DeltaReply[] {
    return this.sink.takeBytes().map((b) => decodeDeltaReply(b));
  }

  only(typeUrl: string): DeltaReply {
    const out = this.replies();
    expect(out.map((r) => r.typeUrl)).toEqual([typeUrl]);
    return out[0]!;
  }

  private apply(r: DeltaReply): void {
    let holds = this.holds.get(r.typeUrl);
    if (!holds) this.holds.set(r.typeUrl, (holds = new Map()));
    for (const [name, version] of Object.entries(r.versions)) holds.set(name, version);
    for (const name of r.removed) holds.delete(name);
    if (r.typeUrl === LDS) {
      r.names.forEach((name, i) => this.listeners.set(name, r.resources[i]!));
      for (const name of r.removed) this.listeners.delete(name);
    }
  }

  /** Plays Envoy until the server has nothing more to say (see SotwClient.settle). */
  settle(): DeltaReply[] {
    const all: DeltaReply[] = [];
    for (let round = 0; round < 50; round++) {
      const batch = this.replies();
      if (batch.length === 0) return all;
      for (const r of batch) {
        all.push(r);
        this.apply(r);
        this.ack(r);
        if (r.typeUrl === CDS) this.want(EDS, this.holds.get(CDS)!.keys());
        if (r.typeUrl === LDS) this.want(RDS, [...this.listeners.values()].flatMap(routeConfigNamesOf));
      }
    }
    throw new Error('the stream did not settle');
  }

  connect(): DeltaReply[] {
    this.request(CDS);
    this.request(LDS);
    return this.settle();
  }

  versionsOf(typeUrl: string): Record<string, string> {
    return Object.fromEntries(this.holds.get(typeUrl) ?? []);
  }
}

function publish(cache: SnapshotCache, s: Snapshot): void {
  cache.set(GROUP, s);
}

function cacheWith(s: Snapshot): SnapshotCache {
  const cache = new SnapshotCache();
  publish(cache, s);
  return cache;
}

const typesOf = (replies: DeltaReply[]): string[] => replies.map((r) => r.typeUrl);

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('delta: node', () => {
  it('ends the stream with INVALID_ARGUMENT and sends nothing when the first request has no node.id', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.request(CDS, { node: null });
    expect(client.sink.failure?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(client.sink.writes).toHaveLength(0);
    client.request(CDS, { node: { id: 'envoy-1', cluster: 'ingress' } });
    expect(client.sink.writes).toHaveLength(0);
  });

  it('accepts later requests without a node', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    expect(typesOf(client.connect()).sort()).toEqual([CDS, EDS, LDS, RDS].sort());
    expect(client.sink.failure).toBeUndefined();
  });

  it('ends the stream when a later request carries a different node.id', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.connect();
    client.request(RDS, { subscribe: ['other'], node: { id: 'envoy-2', cluster: 'ingress' } });
    expect(client.sink.failure?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    publish(client.cache, ingressSnapshot({ apiPort: 9002 }));
    expect(client.replies()).toEqual([]);
  });
});

describe('delta: nonces, ACK and NACK', () => {
  it('gives every response a nonce unique on the stream', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    const replies = client.connect();
    for (let port = 9002; port < 9010; port++) {
      publish(client.cache, ingressSnapshot({ apiPort: port }));
      replies.push(...client.settle());
    }
    const nonces = replies.map((r) => r.nonce);
    expect(nonces.every((n) => n !== '')).toBe(true);
    expect(new Set(nonces).size).toBe(nonces.length);
  });

  it('does not answer an ACK', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.request(CDS);
    client.ack(client.only(CDS));
    expect(client.replies()).toEqual([]);
  });

  it('does not answer a stale nonce, nor count it as an ACK again', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.request(CDS);
    const first = client.only(CDS);
    client.ack(first);
    publish(client.cache, ingressSnapshot({ connectTimeoutSeconds: 2 }));
    client.settle();
    const acks = client.callbacks.of('onAck').length;
    client.request(CDS, { nonce: first.nonce });
    expect(client.replies()).toEqual([]);
    expect(client.callbacks.of('onAck')).toHaveLength(acks);
  });

  it('honours a subscription change that comes with a stale nonce', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.request(RDS, { subscribe: ['ingress'] });
    const first = client.only(RDS);
    client.ack(first);
    publish(client.cache, snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta', www: 'api.beta' }), routes('admin', { admin: 'api.beta' }), service('api.beta', 9001)));
    const newer = client.only(RDS);
    expect(newer.names).toEqual(['ingress']);
    client.request(RDS, { subscribe: ['admin'], nonce: first.nonce });
    const answer = client.only(RDS);
    expect(answer.names).toEqual(['admin']);
    expect(answer.removed).toEqual([]);
  });

  it('records a NACK, never resends the rejected version, and sends the next change', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.connect();
    publish(client.cache, ingressSnapshot({ connectTimeoutSeconds: 2 }));
    const [rejected, eds] = client.replies();
    expect(rejected!.typeUrl).toBe(CDS);
    client.nack(rejected!, 'cluster api.beta: bad connect_timeout');
    expect(client.callbacks.of('onNack')).toEqual([
      expect.objectContaining({
        node_id: 'envoy-1',
        type_url: CDS,
        version: rejected!.systemVersion,
        nonce: rejected!.nonce,
        error_message: 'cluster api.beta: bad connect_timeout',
      }),
    ]);
    expect(client.replies()).toEqual([]);

    // Other types keep flowing, and nothing on the stream brings the rejected cluster back.
    client.ack(eds!);
    publish(client.cache, ingressSnapshot({ apiPort: 9002, connectTimeoutSeconds: 2 }));
    client.ack(client.only(EDS));
    client.request(CDS, { nonce: rejected!.nonce });
    client.request(LDS);
    expect(client.replies()).toEqual([]);

    publish(client.cache, ingressSnapshot({ apiPort: 9002, connectTimeoutSeconds: 3 }));
    const next = client.replies();
    expect(typesOf(next)).toEqual([CDS, EDS]);
    expect(next[0]!.versions['api.beta']).not.toBe(rejected!.versions['api.beta']);
  });

  it('reports the version of the response a NACK rejects, not the newest one', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.connect();
    publish(client.cache, ingressSnapshot({ connectTimeoutSeconds: 2 }));
    const [rejected] = client.replies();
    publish(client.cache, ingressSnapshot({ connectTimeoutSeconds: 3 }));
    const [newer] = client.replies();
    expect(newer!.systemVersion).not.toBe(rejected!.systemVersion);
    client.nack(rejected!, 'no');
    client.ack(newer!);
    expect(client.callbacks.of('onNack')[0]).toMatchObject({ nonce: rejected!.nonce, version: rejected!.systemVersion });
    expect(client.callbacks.of('onAck').at(-1)).toMatchObject({ nonce: newer!.nonce, version: newer!.systemVersion });
  });
});

describe('delta: subscriptions', () => {
  const twoOfEach = (): Snapshot =>
    snapshot(
      listener('ingress', 10000, 'ingress'),
      listener('admin', 10001, 'admin'),
      routes('ingress', { api: 'api.beta' }),
      routes('admin', { admin: 'web' }),
      service('api.beta', 9001),
      service('web', 9002),
    );

  it('serves every listener and cluster to a wildcard subscription, implicit or explicit "*"', () => {
    const client = new DeltaClient(cacheWith(twoOfEach()));
    client.request(LDS);
    expect(client.only(LDS).names.sort()).toEqual(['admin', 'ingress']);
    client.request(CDS, { subscribe: ['*'] });
    expect(client.only(CDS).names.sort()).toEqual(['api.beta', 'web']);
  });

  it('serves only the routes and endpoints subscribed by name', () => {
    const client = new DeltaClient(cacheWith(twoOfEach()));
    client.request(EDS, { subscribe: ['web'] });
    expect(client.only(EDS).names).toEqual(['web']);
    client.request(RDS, { subscribe: ['ingress'] });
    expect(client.only(RDS).names).toEqual(['ingress']);
  });

  it('reports a subscribed name that does not exist in removed_resources, and sends it when it appears', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.request(RDS, { subscribe: ['ingress', 'later'] });
    const first = client.only(RDS);
    expect(first.names).toEqual(['ingress']);
    expect(first.removed).toEqual(['later']);
    client.ack(first);
    publish(client.cache, snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta' }), routes('later', { later: 'api.beta' }), service('api.beta', 9001)));
    const appeared = client.only(RDS);
    expect(appeared.names).toEqual(['later']);
    expect(appeared.removed).toEqual([]);
  });

  it('answers every subscribed name, even one the client already has', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.request(RDS, { subscribe: ['ingress'] });
    const first = client.only(RDS);
    client.ack(first);
    client.request(RDS, { subscribe: ['ingress'] });
    expect(client.only(RDS).versions).toEqual(first.versions);
  });

  it('sends only what changed, and removals in removed_resources', () => {
    const client = new DeltaClient(cacheWith(twoOfEach()));
    client.connect();
    publish(
      client.cache,
      snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta' }), service('api.beta', 9001, { connectTimeoutSeconds: 4 })),
    );
    const replies = client.settle();
    const cds = replies.filter((r) => r.typeUrl === CDS);
    expect(cds[0]!.names).toEqual(['api.beta']); // the changed one only
    expect(cds.flatMap((r) => r.removed)).toEqual(['web']);
    const lds = replies.find((r) => r.typeUrl === LDS)!;
    expect(lds.names).toEqual([]);
    expect(lds.removed).toEqual(['admin']);
    expect(client.versionsOf(CDS)).toEqual({ 'api.beta': client.cache.get(GROUP)!.resources(CDS).get('api.beta')!.version });
  });

  it('does not answer an unsubscribe, nor a phantom one', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.request(RDS, { subscribe: ['ingress'] });
    client.ack(client.only(RDS));
    client.request(RDS, { unsubscribe: ['never-subscribed'] });
    client.request(RDS, { unsubscribe: ['ingress'] });
    expect(client.replies()).toEqual([]);
    publish(client.cache, snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta', www: 'api.beta' }), service('api.beta', 9001)));
    expect(client.replies()).toEqual([]); // no longer subscribed
  });

  it('on reconnect sends only what differs from initial_resource_versions', () => {
    const before = snapshot(listener('ingress', 10000, 'ingress'), listener('old', 10001, 'old'), routes('ingress', { api: 'api.beta' }), routes('old', { old: 'api.beta' }), service('api.beta', 9001));
    const first = new DeltaClient(cacheWith(before));
    first.connect();
    first.stream.close();

    const again = new DeltaClient(cacheWith(ingressSnapshot({ apiPort: 9005 })), { id: 2 });
    again.request(CDS, { initial: first.versionsOf(CDS) });
    again.request(EDS, { subscribe: ['api.beta'], initial: first.versionsOf(EDS) });
    again.request(LDS, { initial: first.versionsOf(LDS) });
    again.request(RDS, { subscribe: ['ingress', 'old'], initial: first.versionsOf(RDS) });
    const replies = again.replies();
    expect(replies.map((r) => [r.typeUrl, r.names, r.removed])).toEqual([
      [EDS, ['api.beta'], []],
      [LDS, [], ['old']],
      [RDS, [], ['old']],
    ]);
  });
});

describe('delta: make-before-break', () => {
  const withWeb = (): Snapshot =>
    snapshot(
      listener('ingress', 10000, 'ingress'),
      listener('web', 10001, 'web'),
      routes('ingress', { api: 'api.beta', web: 'web' }),
      routes('web', { web: 'web' }),
      service('api.beta', 9001),
      service('web', 9002),
    );

  it('sends a new cluster, then its endpoints, then the listener and routes that use it', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.connect();
    publish(client.cache, withWeb());
    const replies = client.settle();
    expect(typesOf(replies)).toEqual([CDS, EDS, LDS, RDS, RDS]);
    expect(replies.map((r) => r.names)).toEqual([['web'], ['web'], ['web'], ['ingress'], ['web']]);
  });

  it('holds the routes until the cluster and its endpoints are ACKed', () => {
    vi.useFakeTimers();
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.connect();
    publish(client.cache, snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta', web: 'web' }), service('api.beta', 9001), service('web', 9002)));
    const cds = client.only(CDS);
    vi.advanceTimersByTime(GATE_MS - 1);
    client.ack(cds);
    client.request(EDS, { subscribe: ['web'] });
    const eds = client.only(EDS);
    expect(eds.names).toEqual(['web']);
    client.ack(eds);
    expect(client.only(RDS).names).toEqual(['ingress']);
    expect(vi.getTimerCount()).toBe(0); // nothing waits: the gate's timer is gone
  });

  it('holds routes only for a client that subscribes to every cluster', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.request(CDS, { subscribe: ['api.beta'] });
    client.request(RDS, { subscribe: ['ingress'] });
    expect(typesOf(client.replies())).toEqual([CDS, RDS]);
  });

  it('sends held routes anyway after the dependency timeout', () => {
    vi.useFakeTimers();
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.request(CDS);
    client.request(EDS, { subscribe: ['api.beta'] });
    client.request(LDS);
    client.request(RDS, { subscribe: ['ingress'] });
    expect(typesOf(client.replies())).toEqual([CDS, EDS]); // never ACKed
    vi.advanceTimersByTime(GATE_MS - 1);
    expect(client.replies()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(typesOf(client.replies())).toEqual([LDS, RDS]);
  });

  it('keeps a removed cluster until the routes without it are ACKed', () => {
    const client = new DeltaClient(cacheWith(snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta', web: 'web' }), service('api.beta', 9001), service('web', 9002))));
    client.connect();
    publish(client.cache, ingressSnapshot());
    const rds = client.only(RDS);

    publish(client.cache, ingressSnapshot({ apiPort: 9003 }));
    client.ack(client.only(EDS));
    client.request(CDS, { subscribe: ['*'] });
    const resubscribed = client.replies();
    expect(resubscribed.flatMap((r) => r.removed)).toEqual([]);

    client.ack(rds);
    const removal = client.replies();
    expect(removal[0]).toMatchObject({ typeUrl: CDS, removed: ['web'] });
  });

  it('follows a changed cluster with its endpoints, even when they did not change', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    const before = client.connect().find((r) => r.typeUrl === EDS)!;
    publish(client.cache, ingressSnapshot({ connectTimeoutSeconds: 7 }));
    const replies = client.settle();
    expect(typesOf(replies)).toEqual([CDS, EDS]);
    expect(replies[1]!.versions).toEqual(before.versions);
  });
});

describe('delta: content-hash versions', () => {
  it('gives the same inputs the same resource versions in another cache and stream', () => {
    const a = new DeltaClient(cacheWith(ingressSnapshot()));
    const b = new DeltaClient(cacheWith(ingressSnapshot()), { id: 2, nodeId: 'envoy-2' });
    const versions = (c: DeltaClient): unknown[] => c.connect().map((r) => [r.typeUrl, r.systemVersion, r.versions]);
    expect(versions(b)).toEqual(versions(a));
  });

  it('sends nothing to a client that reconnects holding the current versions', () => {
    const first = new DeltaClient(cacheWith(ingressSnapshot()));
    first.connect();
    first.stream.close();

    const cache = cacheWith(ingressSnapshot());
    const again = new DeltaClient(cache, { id: 2 });
    again.request(CDS, { initial: first.versionsOf(CDS) });
    again.request(EDS, { subscribe: ['api.beta'], initial: first.versionsOf(EDS) });
    again.request(LDS, { initial: first.versionsOf(LDS) });
    again.request(RDS, { subscribe: ['ingress'], initial: first.versionsOf(RDS) });
    expect(again.replies()).toEqual([]);

    publish(cache, ingressSnapshot({ apiPort: 9005 }));
    expect(again.only(EDS).names).toEqual(['api.beta']);
  });
});

describe('delta: state shared between streams', () => {
  /** Per type, the maps of what a stream sent and what it had ACKed. */
  const mapsOf = (c: DeltaClient): unknown[] => c.stream.status().flatMap((t) => [t.sent, t.acked]);
  /** Two proxies of one group on `cache`, both connected and in sync. */
  const synced = (cache: SnapshotCache): [DeltaClient, DeltaClient] => twoSynced((id, nodeId) => new DeltaClient(cache, { id, nodeId }));

  it('keeps one map of what was sent and ACKed for every stream that subscribed alike, and after a change too', () => {
    const cache = cacheWith(ingressSnapshot());
    const [a, b] = synced(cache);
    const [aMaps, bMaps] = [mapsOf(a), mapsOf(b)];
    expect(aMaps).toHaveLength(8);
    aMaps.forEach((m, i) => expect(m, `map ${i}`).toBe(bMaps[i]));
    for (const t of a.stream.status()) expect(t.acked, t.typeUrl).toBe(t.sent); // all ACKed: one map

    publish(cache, ingressSnapshot({ apiPort: 9005 }));
    a.settle();
    b.settle();
    const [aNow, bNow] = [mapsOf(a), mapsOf(b)];
    aNow.forEach((m, i) => expect(m, `map ${i} after the change`).toBe(bNow[i]));
    expect(aNow[2]).not.toBe(aMaps[2]); // the endpoints changed: a map of the new snapshot
    expect(a.stream.status().find((t) => t.typeUrl === EDS)!.acked.get('api.beta')?.version).toBe(a.versionsOf(EDS)['api.beta']);
  });

  it('shares the maps with a stream that reconnected holding the current versions, and still answers a change', () => {
    const cache = cacheWith(ingressSnapshot());
    const first = new DeltaClient(cache);
    first.connect();
    const again = new DeltaClient(cache, { id: 2, nodeId: 'envoy-2' });
    again.request(CDS, { initial: first.versionsOf(CDS) });
    again.request(EDS, { subscribe: ['api.beta'], initial: first.versionsOf(EDS) });
    again.request(LDS, { initial: first.versionsOf(LDS) });
    again.request(RDS, { subscribe: ['ingress'], initial: first.versionsOf(RDS) });
    expect(again.replies()).toEqual([]);
    const sent = (c: DeltaClient): unknown[] => c.stream.status().map((t) => t.sent);
    sent(again).forEach((m, i) => expect(m, `type ${i}`).toBe(sent(first)[i]));

    publish(cache, ingressSnapshot({ apiPort: 9005 }));
    expect(again.only(EDS).names).toEqual(['api.beta']);
  });

  it('keeps a stream that unsubscribed from a name apart from one that did not', () => {
    const cache = cacheWith(snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta', web: 'web' }), service('api.beta', 9001), service('web', 9002)));
    const [a, b] = synced(cache);
    b.request(EDS, { unsubscribe: ['web'] });
    const eds = (c: DeltaClient) => c.stream.status().find((t) => t.typeUrl === EDS)!;
    expect([...eds(a).sent.keys()].sort()).toEqual(['api.beta', 'web']);
    expect([...eds(b).sent.keys()]).toEqual(['api.beta']);
    expect([...eds(b).acked.keys()]).toEqual(['api.beta']);
    publish(cache, snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta', web: 'web' }), service('api.beta', 9001), service('web', 9003)));
    expect(a.only(EDS).names).toEqual(['web']);
    expect(b.replies()).toEqual([]);
  });
});

describe('delta: the cache', () => {
  it('never shows a stream a snapshot the cache refused', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.connect();
    expect(() => publish(client.cache, snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.gone' }), cluster('api.beta')))).toThrow(
      /inconsistent/,
    );
    expect(client.replies()).toEqual([]);
  });
});

describe('delta: encode once, flow control', () => {
  it('puts the same encoded bytes of a resource into every stream', () => {
    const entries = vi.spyOn(Resource.prototype, 'deltaEntry');
    const cache = cacheWith(ingressSnapshot());
    const apiCluster = cache.get(GROUP)!.resources(CDS).get('api.beta')!;
    const a = new DeltaClient(cache);
    const b = new DeltaClient(cache, { id: 2, nodeId: 'envoy-2' });
    a.connect();
    b.connect();
    const byResource = new Map<Resource, Set<Uint8Array>>();
    const contexts = entries.mock.contexts as Resource[];
    contexts.forEach((resource, i) => {
      const set = byResource.get(resource) ?? new Set();
      set.add(entries.mock.results[i]!.value as Uint8Array);
      byResource.set(resource, set);
    });
    expect(byResource.size).toBe(4);
    for (const set of byResource.values()) expect(set.size).toBe(1);
    expect(contexts.filter((r) => r === apiCluster)).toHaveLength(2);
    expect(apiCluster.deltaEntry()).toBe([...byResource.get(apiCluster)!][0]);
  });

  it('does not block other streams on a slow reader, and sends it only the latest state after drain', () => {
    const cache = cacheWith(ingressSnapshot());
    const slow = new DeltaClient(cache);
    const fast = new DeltaClient(cache, { id: 2, nodeId: 'envoy-2' });
    slow.connect();
    fast.connect();
    slow.sink.full = true;

    for (let port = 9100; port < 9110; port++) publish(cache, ingressSnapshot({ apiPort: port }));
    expect(fast.replies()).toHaveLength(10);
    expect(typesOf(slow.replies())).toEqual([EDS]);
    expect(slow.sink.pendingDrainListeners).toBe(1);

    slow.sink.drain();
    const latest = slow.only(EDS);
    expect(latest.versions).toEqual({ 'api.beta': cache.get(GROUP)!.resources(EDS).get('api.beta')!.version });
  });
});

describe('delta: callbacks', () => {
  it('reports open, request, response, ACK, NACK and close', () => {
    const client = new DeltaClient(cacheWith(ingressSnapshot()));
    client.request(CDS);
    const cds = client.only(CDS);
    client.ack(cds);
    client.request(EDS, { subscribe: ['api.beta', 'missing'] });
    const eds = client.only(EDS);
    client.nack(eds, 'no');
    client.stream.close('test over');

    expect(client.callbacks.events.map((e) => e.hook)).toEqual([
      'onStreamOpen',
      'onRequest',
      'onResponse',
      'onRequest',
      'onAck',
      'onRequest',
      'onResponse',
      'onRequest',
      'onNack',
      'onStreamClose',
    ]);
    const events = client.callbacks;
    expect(events.of('onStreamOpen')[0]).toEqual({ stream_id: 1, kind: 'delta', peer: 'peer-1' });
    expect(events.of('onRequest')[2]).toMatchObject({ node_id: 'envoy-1', type_url: EDS, resource_names: ['api.beta', 'missing'], response_nonce: '' });
    expect(events.of('onResponse')[1]).toEqual({ stream_id: 1, node_id: 'envoy-1', type_url: EDS, version: eds.systemVersion, nonce: eds.nonce, resources: 1, removed: 1 });
    expect(events.of('onAck')[0]).toMatchObject({ type_url: CDS, version: cds.systemVersion, nonce: cds.nonce });
    expect(events.of('onNack')[0]).toMatchObject({ type_url: EDS, nonce: eds.nonce, error_code: 3, error_message: 'no' });
    expect(events.of('onStreamClose')[0]).toEqual({ stream_id: 1, kind: 'delta', peer: 'peer-1', node_id: 'envoy-1', reason: 'test over' });
  });

  it('releases the cache watch when the stream closes', () => {
    const cache = cacheWith(ingressSnapshot());
    const client = new DeltaClient(cache);
    client.connect();
    expect(cache.watchCount()).toBe(1);
    client.stream.close();
    expect(cache.watchCount()).toBe(0);
  });
});
