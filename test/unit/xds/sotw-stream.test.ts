// The state-of-the-world ADS loop, driven directly: requests go into SotwStream, and
// what it writes to a fake sink is decoded as Envoy would decode it.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InconsistentSnapshotError, Snapshot, SnapshotCache } from '../../../src/xds/cache.js';
import { Resource } from '../../../src/xds/resource.js';
import { SotwStream } from '../../../src/xds/sotw-stream.js';
import { decodeDiscoveryRequest, type DiscoveryRequest, type Node } from '../../../src/xds/wire.js';
import { lookupMessage } from '../../../src/xds/protos.js';
import { silentLogger } from '../../../src/log.js';
import { loggingCallbacks } from '../../../src/xds/logging-callbacks.js';
import { pino } from 'pino';
import {
  FakeSink,
  TypeUrl,
  cluster,
  decodeSotwReply,
  ingressSnapshot,
  listener,
  recordingCallbacks,
  routeConfigNamesOf,
  twoSynced,
  routes,
  service,
  snapshot,
  type SotwReply,
} from '../../helpers/xds-fixtures.js';

const { Listener: LDS, RouteConfiguration: RDS, Cluster: CDS, ClusterLoadAssignment: EDS } = TypeUrl;
const GROUP = 'g';
const GATE_MS = 5_000;

interface Ask {
  names?: string[];
  version?: string;
  nonce?: string;
  error?: string;
  /** `null` sends no node even on the first request. */
  node?: Node | null;
}

/** One SotW stream and the client side of it: what a proxy asked, received and acknowledged. */
class SotwClient {
  readonly sink = new FakeSink();
  readonly callbacks = recordingCallbacks();
  readonly stream: SotwStream;
  private readonly node: Node;
  private nodeSent = false;
  private readonly names = new Map<string, string[]>();
  private readonly lastNonce = new Map<string, string>();
  readonly ackedVersion = new Map<string, string>();

  constructor(
    readonly cache: SnapshotCache,
    {
      id = 1,
      nodeId = 'envoy-1',
      dependencyTimeoutMs = GATE_MS,
      userAgent = 'envoy',
      pumpsPerTurn,
    }: { id?: number; nodeId?: string; dependencyTimeoutMs?: number; userAgent?: string; pumpsPerTurn?: number } = {},
  ) {
    this.node = { id: nodeId, cluster: 'ingress', user_agent_name: userAgent };
    this.stream = new SotwStream(id, 'sotw', `peer-${id}`, this.sink, {
      watcher: cache,
      callbacks: this.callbacks,
      logger: silentLogger(),
      groupOf: () => GROUP,
      controlPlaneId: 'test',
      dependencyTimeoutMs,
      pumpsPerTurn,
    });
  }

  /** A request; by default it repeats the type's names and echoes its latest nonce, as Envoy does. */
  request(typeUrl: string, ask: Ask = {}): void {
    const names = ask.names ?? this.names.get(typeUrl) ?? [];
    this.names.set(typeUrl, names);
    const node = ask.node === null ? undefined : (ask.node ?? (this.nodeSent ? undefined : this.node));
    if (node) this.nodeSent = true;
    this.stream.onRequest({
      version_info: ask.version ?? this.ackedVersion.get(typeUrl) ?? '',
      node,
      resource_names: names,
      type_url: typeUrl,
      response_nonce: ask.nonce ?? this.lastNonce.get(typeUrl) ?? '',
      ...(ask.error !== undefined ? { error_detail: { code: 3, message: ask.error } } : {}),
    });
  }

  ack(reply: SotwReply): void {
    this.ackedVersion.set(reply.typeUrl, reply.version);
    this.request(reply.typeUrl, { version: reply.version, nonce: reply.nonce });
  }

  nack(reply: SotwReply, message: string): void {
    this.request(reply.typeUrl, { nonce: reply.nonce, error: message });
  }

  /** Changes a named subscription the way Envoy does when its clusters or listeners change. */
  want(typeUrl: string, names: string[]): void {
    const sorted = [...names].sort();
    const current = this.names.get(typeUrl);
    if (current && current.join() === sorted.join()) return;
    this.request(typeUrl, { names: sorted });
  }

  /** The latest nonce received for a type. */
  nonceOf(typeUrl: string): string {
    return this.lastNonce.get(typeUrl) ?? '';
  }

  /** Responses written since the last call. */
  replies(): SotwReply[] {
    const out = this.sink.takeBytes().map((b) => decodeSotwReply(b));
    for (const r of out) this.lastNonce.set(r.typeUrl, r.nonce);
    return out;
  }

  /** Exactly one response is expected, of this type. */
  only(typeUrl: string): SotwReply {
    const out = this.replies();
    expect(out.map((r) => r.typeUrl)).toEqual([typeUrl]);
    return out[0]!;
  }

  /**
   * Plays Envoy until the server has nothing more to say: ACK every response, follow
   * clusters with an EDS subscription and listeners with an RDS subscription.
   */
  settle(): SotwReply[] {
    const all: SotwReply[] = [];
    for (let round = 0; round < 50; round++) {
      const batch = this.replies();
      if (batch.length === 0) return all;
      for (const r of batch) {
        all.push(r);
        this.ack(r);
        if (r.typeUrl === CDS) this.want(EDS, r.names);
        if (r.typeUrl === LDS) this.want(RDS, r.resources.flatMap(routeConfigNamesOf));
      }
    }
    throw new Error('the stream did not settle');
  }

  /** Envoy's start: wildcard CDS and LDS, then EDS and RDS as they are discovered. */
  connect(): SotwReply[] {
    this.request(CDS);
    this.request(LDS);
    return this.settle();
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

const typesOf = (replies: SotwReply[]): string[] => replies.map((r) => r.typeUrl);
const endpointsOf = (s: Snapshot, name: string): Resource => s.resources(EDS).get(name)!;

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('SotW: node', () => {
  it('ends the stream with INVALID_ARGUMENT and sends nothing when the first request has no node.id', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.request(CDS, { node: null });
    expect(client.sink.failure?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(client.sink.writes).toHaveLength(0);
    client.request(CDS, { node: { id: 'envoy-1', cluster: 'ingress' } });
    expect(client.sink.writes).toHaveLength(0);
  });

  it('treats an empty node.id like a missing node', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.request(CDS, { node: { id: '', cluster: 'ingress' } });
    expect(client.sink.failure?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(client.sink.writes).toHaveLength(0);
  });

  it('keeps each proxy\'s id, and one copy of what proxies of a kind say alike', () => {
    const cache = cacheWith(ingressSnapshot());
    const [a, b, c] = [1, 2, 3].map((id) => new SotwClient(cache, { id, nodeId: `envoy-${id}` }));
    const metadata = (role: string): Record<string, unknown> => ({ shadowplane: { role, port: 10000 } });
    a!.request(CDS, { node: { id: 'envoy-1', cluster: 'ingress', metadata: metadata('edge') } });
    b!.request(CDS, { node: { id: 'envoy-2', cluster: 'ingress', metadata: metadata('edge') } });
    c!.request(CDS, { node: { id: 'envoy-3', cluster: 'ingress', metadata: metadata('sidecar') } });
    const [na, nb, nc] = [a, b, c].map((x) => x!.stream.nodeInfo!);
    expect([na!.id, nb!.id, nc!.id]).toEqual(['envoy-1', 'envoy-2', 'envoy-3']);
    expect(na!.metadata).toEqual(metadata('edge'));
    expect(na!.metadata).toBe(nb!.metadata);
    expect(nc!.metadata).toEqual(metadata('sidecar'));
  });

  it('accepts later requests without a node', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    const replies = client.connect(); // only the first request carries the node
    expect(typesOf(replies).sort()).toEqual([CDS, EDS, LDS, RDS].sort());
    expect(client.sink.failure).toBeUndefined();
  });

  it('ends the stream when a later request carries a different node.id', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.connect();
    client.request(CDS, { node: { id: 'envoy-2', cluster: 'ingress' } });
    expect(client.sink.failure?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(client.sink.failure?.message).toMatch(/envoy-1.*envoy-2/);
    publish(client.cache, ingressSnapshot({ apiPort: 9002 }));
    expect(client.replies()).toEqual([]);
  });
});

describe('SotW: versions, nonces, ACK and NACK', () => {
  it('gives every response a nonce unique on the stream', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
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
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.request(CDS);
    const cds = client.only(CDS);
    client.ack(cds);
    expect(client.replies()).toEqual([]);
  });

  it('does not answer a stale nonce, but honours its change of names later', () => {
    const withRoutes = (ingress: Record<string, string>, apiPort = 9001): Snapshot =>
      snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', ingress), routes('admin', { admin: 'api.beta' }), service('api.beta', apiPort));
    const cache = cacheWith(withRoutes({ api: 'api.beta' }));
    const client = new SotwClient(cache);
    client.connect();
    const staleNonce = client.nonceOf(RDS);

    // A newer RDS response goes out; the client has not seen it when it asks for more names.
    publish(cache, withRoutes({ api: 'api.beta', www: 'api.beta' }));
    expect(client.only(RDS).names).toEqual(['ingress']);
    client.request(RDS, { names: ['admin', 'ingress'], nonce: staleNonce });
    expect(client.replies()).toEqual([]);

    // A later push carries the names the stale request asked for, with no new RDS request.
    publish(cache, withRoutes({ api: 'api.beta', www: 'api.beta' }, 9002));
    const pushed = client.replies();
    expect(pushed.map((r) => r.typeUrl)).toEqual([EDS, RDS]);
    expect(pushed[1]!.names.sort()).toEqual(['admin', 'ingress']);
  });

  it('records a NACK, never resends the rejected version, and sends the next change', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.connect();
    publish(client.cache, ingressSnapshot({ connectTimeoutSeconds: 2 }));
    const [rejected, eds] = client.replies();
    expect(rejected!.typeUrl).toBe(CDS);
    client.nack(rejected!, 'cluster api.beta: bad connect_timeout');
    expect(client.callbacks.of('onNack')).toEqual([
      expect.objectContaining({ node_id: 'envoy-1', type_url: CDS, version: rejected!.version, nonce: rejected!.nonce, error_message: 'cluster api.beta: bad connect_timeout' }),
    ]);
    expect(client.replies()).toEqual([]);

    // Other types keep flowing, and nothing on the stream brings the rejected CDS back.
    client.ack(eds!);
    publish(client.cache, ingressSnapshot({ apiPort: 9002, connectTimeoutSeconds: 2 }));
    const flowing = client.only(EDS);
    client.ack(flowing);
    client.request(CDS, { nonce: rejected!.nonce });
    client.request(LDS);
    expect(client.replies()).toEqual([]);

    // The next change of clusters is sent.
    publish(client.cache, ingressSnapshot({ apiPort: 9002, connectTimeoutSeconds: 3 }));
    const next = client.replies();
    expect(typesOf(next)).toEqual([CDS, EDS]);
    expect(next[0]!.version).not.toBe(rejected!.version);
  });
});

describe('SotW: subscriptions', () => {
  it('reads the names of a request off the wire only when its bytes differ from the last', () => {
    const cache = cacheWith(ingressSnapshot());
    const stream = new SotwStream(1, 'sotw', 'peer', new FakeSink(), {
      watcher: cache,
      callbacks: recordingCallbacks(),
      logger: silentLogger(),
      groupOf: () => GROUP,
      controlPlaneId: 'test',
      dependencyTimeoutMs: GATE_MS,
    });
    const wire = (names: string[], nonce: string): DiscoveryRequest => {
      const message = lookupMessage('envoy.service.discovery.v3.DiscoveryRequest');
      const bytes = message.encode(message.fromObject({ resource_names: names, type_url: EDS, response_nonce: nonce, node: { id: 'envoy-1' } })).finish();
      return decodeDiscoveryRequest(bytes);
    };
    let reads = 0;
    const counted = (req: DiscoveryRequest): DiscoveryRequest =>
      new Proxy(req, {
        get: (target, property) => {
          if (property === 'resource_names') reads++;
          return Reflect.get(target, property, target) as unknown;
        },
      });
    stream.onRequest(counted(wire(['api.beta'], '')));
    expect(reads).toBe(1);
    stream.onRequest(counted(wire(['api.beta'], 'stale')));
    expect(reads).toBe(1); // the same bytes: the subscription stands
    stream.onRequest(counted(wire(['api.beta', 'web'], 'stale')));
    expect(reads).toBe(2);
    expect(stream.status().find((t) => t.typeUrl === EDS)).toBeDefined();
  });

  it("keeps its own copy of a request's name bytes, not a view of the request's message", () => {
    const stream = new SotwStream(1, 'sotw', 'peer', new FakeSink(), {
      watcher: cacheWith(ingressSnapshot()),
      callbacks: recordingCallbacks(),
      logger: silentLogger(),
      groupOf: () => GROUP,
      controlPlaneId: 'test',
      dependencyTimeoutMs: GATE_MS,
    });
    const message = lookupMessage('envoy.service.discovery.v3.DiscoveryRequest');
    const encoded = (nonce: string): Uint8Array =>
      message.encode(message.fromObject({ resource_names: ['kept-copy-a', 'kept-copy-b'], type_url: EDS, response_nonce: nonce, node: { id: 'envoy-1' } })).finish();
    let reads = 0;
    const counted = (bytes: Uint8Array): DiscoveryRequest =>
      new Proxy(decodeDiscoveryRequest(bytes), {
        get: (target, property) => {
          if (property === 'resource_names') reads++;
          return Reflect.get(target, property, target) as unknown;
        },
      });
    const first = encoded('');
    stream.onRequest(counted(first));
    expect(reads).toBe(1);
    // The transport reuses the first message's memory: what the stream kept must not change with it.
    first.fill(0);
    stream.onRequest(counted(encoded('stale')));
    expect(reads).toBe(1);
  });

  const twoOfEach = (): Snapshot =>
    snapshot(
      listener('ingress', 10000, 'ingress'),
      listener('admin', 10001, 'admin'),
      routes('ingress', { api: 'api.beta' }),
      routes('admin', { admin: 'web' }),
      service('api.beta', 9001),
      service('web', 9002),
    );

  it('serves every listener and cluster to a wildcard subscription, legacy (no names) or explicit "*"', () => {
    const client = new SotwClient(cacheWith(twoOfEach()));
    client.request(LDS, { names: [] });
    expect(client.only(LDS).names.sort()).toEqual(['admin', 'ingress']);
    client.request(CDS, { names: ['*'] });
    expect(client.only(CDS).names.sort()).toEqual(['api.beta', 'web']);
  });

  it('serves only the routes and endpoints asked for by name', () => {
    const client = new SotwClient(cacheWith(twoOfEach()));
    client.request(EDS, { names: ['web'] });
    expect(client.only(EDS).names).toEqual(['web']);
    client.request(RDS, { names: ['ingress'] });
    expect(client.only(RDS).names).toEqual(['ingress']);
  });

  it('remembers a name that does not exist yet and sends it when it appears', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.request(RDS, { names: ['ingress', 'later'] });
    const first = client.only(RDS);
    expect(first.names).toEqual(['ingress']);
    client.ack(first);
    publish(client.cache, snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta' }), routes('later', { later: 'api.beta' }), service('api.beta', 9001)));
    // RDS, like EDS, carries only what changed: 'ingress' is unchanged and stays as it was.
    const second = client.only(RDS);
    expect(second.names).toEqual(['later']);
    expect(second.version).toBe(client.cache.get(GROUP)!.version(RDS));
  });

  it('sends complete sets for LDS and CDS when one resource changes', () => {
    const client = new SotwClient(cacheWith(twoOfEach()));
    client.connect();
    const changed = snapshot(
      listener('ingress', 10000, 'ingress'),
      listener('admin', 10002, 'admin'),
      twoOfEach().resources(RDS).values(),
      service('api.beta', 9001, { connectTimeoutSeconds: 5 }),
      service('web', 9002),
    );
    publish(client.cache, changed);
    const replies = client.settle();
    expect(replies.find((r) => r.typeUrl === CDS)!.names.sort()).toEqual(['api.beta', 'web']);
    expect(replies.find((r) => r.typeUrl === LDS)!.names.sort()).toEqual(['admin', 'ingress']);
  });
});

describe('SotW: make-before-break', () => {
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
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.connect();
    publish(client.cache, withWeb());
    const replies = client.settle();
    // The changed "ingress" routes go with the new listener; the new listener's routes once it is ACKed.
    expect(typesOf(replies)).toEqual([CDS, EDS, LDS, RDS, RDS]);
    expect(replies[0]!.names.sort()).toEqual(['api.beta', 'web']);
    expect(replies[1]!.names.sort()).toEqual(['api.beta', 'web']);
    expect(replies[2]!.names.sort()).toEqual(['ingress', 'web']);
    expect(replies[3]!.names).toEqual(['ingress']);
    expect(replies[4]!.names.sort()).toEqual(['ingress', 'web']);
  });

  it('holds the routes until the cluster and its endpoints are ACKed', () => {
    vi.useFakeTimers();
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.connect();
    publish(client.cache, snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta', web: 'web' }), service('api.beta', 9001), service('web', 9002)));
    const cds = client.only(CDS);
    vi.advanceTimersByTime(GATE_MS - 1);
    client.ack(cds);
    client.want(EDS, cds.names);
    const eds = client.only(EDS); // the RDS is still held: the endpoints are not ACKed
    expect(eds.names.sort()).toEqual(['api.beta', 'web']);
    client.ack(eds);
    expect(client.only(RDS).resources[0]).toMatchObject({ name: 'ingress' });
    expect(vi.getTimerCount()).toBe(0); // nothing waits: the gate's timer is gone
  });

  it('does not hold a route change back while the endpoints of its cluster churn', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.connect();
    // New endpoints go out and stay unacknowledged, as under constant churn.
    publish(client.cache, ingressSnapshot({ apiPort: 9002 }));
    expect(client.only(EDS).typeUrl).toBe(EDS);
    // A route change to the same (warm) cluster goes out at once.
    publish(client.cache, snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta', www: 'api.beta' }), service('api.beta', 9002)));
    expect(client.only(RDS).typeUrl).toBe(RDS);
  });

  it('holds routes only for a client that subscribes to every cluster', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.request(CDS, { names: ['api.beta'] });
    client.request(RDS, { names: ['ingress'] });
    expect(typesOf(client.replies())).toEqual([CDS, RDS]);
  });

  it('sends held routes anyway after the dependency timeout', () => {
    vi.useFakeTimers();
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.request(CDS);
    client.request(EDS, { names: ['api.beta'] });
    client.request(LDS);
    client.request(RDS, { names: ['ingress'] });
    expect(typesOf(client.replies())).toEqual([CDS, EDS]); // never ACKed
    vi.advanceTimersByTime(GATE_MS - 1);
    expect(client.replies()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(typesOf(client.replies())).toEqual([LDS, RDS]);
  });

  it('keeps a removed cluster until the routes without it are ACKed', () => {
    const client = new SotwClient(cacheWith(snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta', web: 'web' }), service('api.beta', 9001), service('web', 9002))));
    client.connect();
    publish(client.cache, ingressSnapshot());
    const rds = client.only(RDS); // the clusters stay while the old routes may be live

    // Anything else that happens before the routes are ACKed must not remove the cluster.
    publish(client.cache, ingressSnapshot({ apiPort: 9003 }));
    const eds = client.only(EDS);
    client.ack(eds);
    client.request(CDS);
    expect(client.replies()).toEqual([]);

    client.ack(rds);
    const removal = client.replies();
    expect(typesOf(removal)[0]).toBe(CDS);
    expect(removal[0]!.names).toEqual(['api.beta']);
  });

  it('follows a changed cluster with its endpoints, even when they did not change', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    const before = client.connect().find((r) => r.typeUrl === EDS)!;
    publish(client.cache, ingressSnapshot({ connectTimeoutSeconds: 7 }));
    const replies = client.settle();
    expect(typesOf(replies)).toEqual([CDS, EDS]);
    expect(replies[1]!.version).toBe(before.version);
    expect(replies[1]!.names).toEqual(['api.beta']);
  });
});

describe('SotW: content-hash versions', () => {
  it('gives the same inputs the same versions in another cache and stream', () => {
    const a = new SotwClient(cacheWith(ingressSnapshot()));
    const b = new SotwClient(cacheWith(ingressSnapshot()), { id: 2, nodeId: 'envoy-2' });
    const versions = (c: SotwClient): string[] => c.connect().map((r) => `${r.typeUrl} ${r.version}`);
    expect(versions(b)).toEqual(versions(a));
  });

  it('sends nothing to a client that reconnects holding the current versions', () => {
    const first = new SotwClient(cacheWith(ingressSnapshot()));
    first.connect();
    first.stream.close('client went away');

    const cache = cacheWith(ingressSnapshot()); // a restarted server: same inputs, new objects
    const again = new SotwClient(cache, { id: 2 });
    for (const [typeUrl, names] of [[CDS, []], [EDS, ['api.beta']], [LDS, []], [RDS, ['ingress']]] as const) {
      again.request(typeUrl, { names: [...names], version: first.ackedVersion.get(typeUrl)!, nonce: '' });
    }
    expect(again.replies()).toEqual([]);

    publish(cache, ingressSnapshot({ apiPort: 9005 }));
    expect(again.only(EDS).names).toEqual(['api.beta']);
  });

  it('answers named types to a non-Envoy client that reconnects with the current versions', () => {
    // gRPC's xDS client drops resources it no longer watches but keeps reporting the
    // type's last version: only the wildcard types are known to be held.
    const first = new SotwClient(cacheWith(ingressSnapshot()), { userAgent: 'grpc-node-js' });
    first.connect();
    first.stream.close('client went away');
    const again = new SotwClient(cacheWith(ingressSnapshot()), { id: 2, userAgent: 'grpc-node-js' });
    for (const [typeUrl, names] of [[CDS, []], [EDS, ['api.beta']], [LDS, []], [RDS, ['ingress']]] as const) {
      again.request(typeUrl, { names: [...names], version: first.ackedVersion.get(typeUrl)!, nonce: '' });
    }
    // Endpoints first; the routes follow once they are acknowledged (make before break).
    const eds = again.only(EDS);
    expect(eds.names).toEqual(['api.beta']);
    again.ack(eds);
    expect(again.only(RDS).names).toEqual(['ingress']);
  });

  it('answers a reconnecting client whose version is not current', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.request(CDS, { version: 'an-older-version' });
    expect(client.only(CDS).names).toEqual(['api.beta']);
  });
});

describe('SotW: the cache', () => {
  it('refuses an inconsistent snapshot and keeps the last good one live', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.connect();
    const good = client.cache.get(GROUP);
    const broken = snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.gone' }), cluster('api.beta'));
    let error: unknown;
    try {
      publish(client.cache, broken);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InconsistentSnapshotError);
    expect((error as InconsistentSnapshotError).problems).toEqual([
      'cds "api.beta" refers to missing eds "api.beta"',
      'rds "ingress" refers to missing cds "api.gone"',
    ]);
    expect(client.cache.get(GROUP)).toBe(good);
    expect(client.replies()).toEqual([]);
  });

  it('refuses two resources of one type with the same name', () => {
    expect(() => snapshot(cluster('api.beta'), cluster('api.beta', { connectTimeoutSeconds: 2 }))).toThrow('duplicate cds resource "api.beta"');
  });
});

describe('SotW: EDS and RDS carry what changed', () => {
  const twoServices = (webPort = 9002): Snapshot =>
    snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api.beta', web: 'web' }), service('api.beta', 9001), service('web', webPort));

  it('sends only the endpoints that changed, at the version of the whole set', () => {
    const client = new SotwClient(cacheWith(twoServices()));
    client.connect();
    const next = twoServices(9003);
    publish(client.cache, next);
    const eds = client.only(EDS);
    expect(eds.names).toEqual(['web']);
    expect(eds.version).toBe(next.version(EDS));
    client.ack(eds);
    expect(client.replies()).toEqual([]);
  });

  it('derives the next selection from the last one, and from a snapshot update as from a new snapshot', () => {
    const client = new SotwClient(cacheWith(twoServices()));
    client.connect();
    const current = client.cache.get(GROUP)!;
    const moved = endpointsOf(twoServices(9004), 'web');
    const updated = current.update([moved]);
    publish(client.cache, updated);
    const eds = client.only(EDS);
    expect(eds.names).toEqual(['web']);
    expect(eds.version).toBe(twoServices(9004).version(EDS));
  });

  it('sends endpoints again after their cluster changed, with what else changed', () => {
    const client = new SotwClient(cacheWith(twoServices()));
    client.connect();
    const next = snapshot(
      listener('ingress', 10000, 'ingress'),
      routes('ingress', { api: 'api.beta', web: 'web' }),
      service('api.beta', 9001, { connectTimeoutSeconds: 3 }),
      service('web', 9005),
    );
    publish(client.cache, next);
    const replies = client.settle();
    const eds = replies.filter((r) => r.typeUrl === EDS);
    expect(eds).toHaveLength(1);
    expect(eds[0]!.names.sort()).toEqual(['api.beta', 'web']);
  });

  it('writes the same bytes to every stream in the same state, with nonces that never repeat on a stream', () => {
    const cache = cacheWith(twoServices());
    const a = new SotwClient(cache);
    const b = new SotwClient(cache, { id: 2, nodeId: 'envoy-2' });
    a.connect();
    b.connect();
    publish(cache, twoServices(9006));
    const [fromA] = a.sink.takeBytes();
    const [fromB] = b.sink.takeBytes();
    expect(fromA).toBeDefined();
    expect(fromA).toBe(fromB);

    const nonces = new Set<string>();
    for (let port = 9010; port < 9020; port++) {
      publish(cache, twoServices(port));
      const reply = a.only(EDS);
      expect(nonces.has(reply.nonce)).toBe(false);
      nonces.add(reply.nonce);
      a.ack(reply);
    }
  });
});

describe('SotW: state shared between idle streams', () => {
  /**
   * The stream's per-type states. That idle streams share them is a memory property no
   * response shows, so this reads the private field.
   */
  const statesOf = (c: SotwClient): unknown[] => Reflect.get(c.stream, 'states') as unknown[];
  const statusOf = (c: SotwClient, typeUrl: string) => c.stream.status().find((t) => t.typeUrl === typeUrl)!;
  const synced = (cache: SnapshotCache): [SotwClient, SotwClient] => twoSynced((id, nodeId) => new SotwClient(cache, { id, nodeId }));

  it('keeps one state per type for every stream that ACKed the same responses, and again after a change', () => {
    const cache = cacheWith(ingressSnapshot());
    const [a, b] = synced(cache);
    const before = [...statesOf(a)];
    expect(before.filter(Boolean)).toHaveLength(4);
    before.forEach((st, i) => expect(st, `type ${i}`).toBe(statesOf(b)[i]));

    publish(cache, ingressSnapshot({ apiPort: 9005 }));
    const changes = [a.settle(), b.settle()];
    expect(changes.map(typesOf)).toEqual([[EDS], [EDS]]);
    statesOf(a).forEach((st, i) => expect(st, `type ${i} after the change`).toBe(statesOf(b)[i]));
    expect(statesOf(a)[1]).not.toBe(before[1]); // the endpoints' state is the new response's
    expect(statesOf(a)[0]).toBe(before[0]); // the clusters' did not change
  });

  it('parts a stream that NACKs from the others, and each gets what it should next', () => {
    const cache = cacheWith(ingressSnapshot());
    const [a, b] = synced(cache);
    publish(cache, ingressSnapshot({ apiPort: 9005 }));
    const [toA, toB] = [a.only(EDS), b.only(EDS)];
    a.nack(toA, 'bad endpoints');
    b.ack(toB);
    expect(statusOf(a, EDS)).toMatchObject({ nackedVersion: toA.version, lastError: 'bad endpoints', ackedVersion: expect.not.stringMatching(toA.version) });
    expect(statusOf(b, EDS)).toMatchObject({ nackedVersion: undefined, lastError: undefined, ackedVersion: toB.version });
    expect(statesOf(a)[1]).not.toBe(statesOf(b)[1]);
    expect(statesOf(a)[0]).toBe(statesOf(b)[0]); // only the type that NACKed parts

    publish(cache, ingressSnapshot({ apiPort: 9006 }));
    const [next, alsoNext] = [a.only(EDS), b.only(EDS)];
    expect(next.version).toBe(alsoNext.version);
    a.ack(next);
    b.ack(alsoNext);
    expect(statusOf(a, EDS)).toMatchObject({ ackedVersion: next.version, lastError: undefined });
    expect(statusOf(b, EDS).ackedVersion).toBe(next.version);
  });

  it('keeps its own time of last update per stream, though the state is shared', () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 0, 1) });
    const cache = cacheWith(ingressSnapshot());
    const a = new SotwClient(cache);
    a.connect();
    vi.setSystemTime(Date.UTC(2026, 0, 2));
    const b = new SotwClient(cache, { id: 2, nodeId: 'envoy-2' });
    b.connect();
    expect(statesOf(a)[3]).toBe(statesOf(b)[3]);
    expect(statusOf(a, RDS).updatedAt).toBe(Date.UTC(2026, 0, 1));
    expect(statusOf(b, RDS).updatedAt).toBe(Date.UTC(2026, 0, 2));
  });

  it('shares the state of streams that reconnected holding the current versions', () => {
    const cache = cacheWith(ingressSnapshot());
    const first = new SotwClient(cache);
    first.connect();
    const again = [2, 3].map((id) => new SotwClient(cache, { id, nodeId: `envoy-${id}` }));
    for (const c of again) {
      c.request(CDS, { version: first.ackedVersion.get(CDS) });
      c.request(LDS, { version: first.ackedVersion.get(LDS) });
      expect(c.replies()).toEqual([]);
    }
    expect(statesOf(again[0]!)[0]).toBe(statesOf(again[1]!)[0]);
    expect(statusOf(again[0]!, CDS).ackedVersion).toBe(first.ackedVersion.get(CDS));
  });
});

describe('SotW: encode once, flow control', () => {
  it('encodes a response once for every stream it goes to', () => {
    const entries = vi.spyOn(Resource.prototype, 'sotwEntry');
    const cache = cacheWith(ingressSnapshot());
    const apiCluster = cache.get(GROUP)!.resources(CDS).get('api.beta')!;
    const a = new SotwClient(cache);
    const b = new SotwClient(cache, { id: 2, nodeId: 'envoy-2' });
    a.connect();
    b.connect();
    publish(cache, ingressSnapshot({ apiPort: 9004 }));
    a.settle();
    b.settle();

    const byResource = new Map<Resource, Set<Uint8Array>>();
    const contexts = entries.mock.contexts as Resource[];
    contexts.forEach((resource, i) => {
      const set = byResource.get(resource) ?? new Set();
      set.add(entries.mock.results[i]!.value as Uint8Array);
      byResource.set(resource, set);
    });
    for (const set of byResource.values()) expect(set.size).toBe(1);
    expect(contexts.filter((r) => r === apiCluster)).toHaveLength(1); // one CDS response, written to both streams
    expect(apiCluster.sotwEntry()).toBe([...byResource.get(apiCluster)!][0]);
  });

  it('does not block other streams on a slow reader, and sends it only the latest state after drain', () => {
    const cache = cacheWith(ingressSnapshot());
    const slow = new SotwClient(cache);
    const fast = new SotwClient(cache, { id: 2, nodeId: 'envoy-2' });
    slow.connect();
    fast.connect();
    slow.sink.full = true;

    for (let port = 9100; port < 9110; port++) publish(cache, ingressSnapshot({ apiPort: port }));
    expect(fast.replies()).toHaveLength(10);
    const queued = slow.replies();
    expect(typesOf(queued)).toEqual([EDS]); // the write that found the buffer full; nothing after it
    expect(slow.sink.pendingDrainListeners).toBe(1);

    slow.sink.drain();
    const latest = slow.only(EDS);
    expect(latest.resources[0]).toMatchObject({ endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { port_value: 9109 } } } }] }] });
    expect(latest.version).toBe(cache.get(GROUP)!.version(EDS));
  });
});

describe('SotW: pumps per turn of the event loop', () => {
  it('pumps the first streams at once and the others, once each, in the next turns', async () => {
    const cache = cacheWith(ingressSnapshot());
    const limited = [4, 5, 6].map((id) => new SotwClient(cache, { id, nodeId: `envoy-${id}`, pumpsPerTurn: 1 }));
    for (const c of limited) c.request(CDS); // one stream per turn
    expect(limited.map((c) => c.sink.writes.length)).toEqual([1, 0, 0]);
    limited[1]!.request(EDS, { names: ['api.beta'] }); // a second request while waiting: still one pump
    const deadline = Date.now() + 2_000;
    while (limited.some((c) => c.sink.writes.length === 0) && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
    expect(limited.map((c) => c.replies().map((r) => r.typeUrl))).toEqual([[CDS], [CDS, EDS], [CDS]]);
  });
});

describe('SotW: callbacks', () => {
  it('reports open, request, response, ACK, NACK and close', () => {
    const client = new SotwClient(cacheWith(ingressSnapshot()));
    client.request(CDS);
    const cds = client.only(CDS);
    client.ack(cds);
    client.request(EDS, { names: ['api.beta'] });
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
    expect(events.of('onStreamOpen')[0]).toEqual({ stream_id: 1, kind: 'sotw', peer: 'peer-1' });
    expect(events.of('onRequest')[3]).toMatchObject({ node_id: 'envoy-1', type_url: EDS, resource_names: ['api.beta'], response_nonce: eds.nonce });
    expect(events.of('onResponse')[0]).toEqual({ stream_id: 1, node_id: 'envoy-1', type_url: CDS, version: cds.version, nonce: cds.nonce, resources: 1, removed: 0 });
    expect(events.of('onAck')[0]).toMatchObject({ type_url: CDS, version: cds.version, nonce: cds.nonce });
    expect(events.of('onNack')[0]).toMatchObject({ type_url: EDS, version: eds.version, error_code: 3, error_message: 'no' });
    expect(events.of('onStreamClose')[0]).toEqual({ stream_id: 1, kind: 'sotw', peer: 'peer-1', node_id: 'envoy-1', reason: 'test over' });
  });

  it('logs a request at trace level with its names, and decodes them for no hook that does not read them', () => {
    const lines: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (line: string) => lines.push(line) });
    const silent = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    const message = lookupMessage('envoy.service.discovery.v3.DiscoveryRequest');
    const request = (): DiscoveryRequest =>
      decodeDiscoveryRequest(message.encode(message.fromObject({ resource_names: ['api.beta'], type_url: EDS, node: { id: 'envoy-1' } })).finish());
    const reads: number[] = [];
    for (const log of [logger, silent]) {
      const stream = new SotwStream(7, 'sotw', 'peer', new FakeSink(), {
        watcher: cacheWith(ingressSnapshot()),
        callbacks: loggingCallbacks(log),
        logger: silentLogger(),
        groupOf: () => GROUP,
        controlPlaneId: 'test',
        dependencyTimeoutMs: GATE_MS,
      });
      const req = request();
      const decode = vi.spyOn(req, 'resource_names', 'get');
      stream.onRequest(req);
      reads.push(decode.mock.calls.length);
    }
    // The trace line reads the names once; without it the hook reads them not at all (the
    // stream itself reads them only for a subscription it has not seen yet).
    expect(reads[0]).toBe(reads[1]! + 1);
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ stream_id: 7, node_id: 'envoy-1', type_url: EDS, resource_names: ['api.beta'], response_nonce: '' });
  });

  it('releases the cache watch when the stream closes', () => {
    const cache = cacheWith(ingressSnapshot());
    const client = new SotwClient(cache);
    client.connect();
    expect(cache.watchCount()).toBe(1);
    client.stream.close();
    client.stream.close();
    expect(cache.watchCount()).toBe(0);
    expect(client.callbacks.of('onStreamClose')).toHaveLength(1);
  });
});
