// One state-of-the-world ADS stream (StreamAggregatedResources). Each type_url is its
// own sub-stream with its own nonce, version and ACK/NACK state (xDS spec).
import { TypeUrl, PUSH_ORDER, isResourceTypeUrl, type ResourceTypeUrl } from './resources.js';
import { versionOf } from './cache.js';
import { contentHash } from './resource.js';
import { desiredResources, type ClientView } from './ordering.js';
import { StreamBase } from './stream-base.js';
import { encodeDiscoveryResponse, type DiscoveryRequest } from './wire.js';
import type { Resource } from './resource.js';

const NONE: ReadonlyMap<string, Resource> = new Map();

export interface TypeStatus {
  typeUrl: ResourceTypeUrl;
  sentVersion?: string;
  ackedVersion?: string;
  nackedVersion?: string;
  lastError?: string;
  sent: ReadonlyMap<string, Resource>;
  acked: ReadonlyMap<string, Resource>;
  updatedAt: number;
}

interface Selection {
  resources: Resource[];
  version: string;
  /** The same resources by name, built on first use and shared like the selection. */
  byName?: ReadonlyMap<string, Resource>;
}

const byNameOf = (selection: Selection): ReadonlyMap<string, Resource> =>
  (selection.byName ??= new Map(selection.resources.map((r) => [r.name, r])));

/**
 * Selections by resource map, then by subscription: thousands of proxies of one group
 * with the same subscription (Envoy asks for every cluster's endpoints) share one.
 */
const selections = new WeakMap<ReadonlyMap<string, Resource>, Map<string, Selection>>();

interface SharedSubscription {
  names: readonly string[];
  set: Set<string>;
}
const subscriptions = new Map<string, SharedSubscription>();
const MAX_SHARED_SUBSCRIPTIONS = 256;

/** One copy per distinct subscription (the oldest forgotten past a bound; holders keep theirs). */
function internSubscription(key: string, names: readonly string[], set: Set<string>): SharedSubscription {
  let shared = subscriptions.get(key);
  if (!shared) {
    shared = { names, set };
    subscriptions.set(key, shared);
    if (subscriptions.size > MAX_SHARED_SUBSCRIPTIONS) subscriptions.delete(subscriptions.keys().next().value!);
  }
  return shared;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

class TypeState implements TypeStatus {
  wildcard = false;
  everNamed = false;
  names = new Set<string>();
  /** The client's version_info on its latest request. */
  clientVersion = '';
  nonce = '';
  sentVersion?: string;
  sent: ReadonlyMap<string, Resource> = NONE;
  /** Subscription at the time of the last response, to spot newly requested names. */
  namesAtSend = new Set<string>();
  wildcardAtSend = false;
  ackedVersion?: string;
  acked: ReadonlyMap<string, Resource> = NONE;
  nackedVersion?: string;
  lastError?: string;
  /** Resend even if the version did not change (endpoints after a cluster change). */
  force = false;
  heldSince?: number;
  updatedAt = Date.now();

  constructor(readonly typeUrl: ResourceTypeUrl) {}

  /** The names of the latest request, as sent: most requests repeat them (ACKs). */
  private lastNames: readonly string[] = [];
  /** Identifies the subscription; streams with equal subscriptions share selections. */
  key = '*';

  subscribe(names: readonly string[]): void {
    if (names.length === 0 && !this.everNamed) {
      this.wildcard = true; // legacy wildcard: a type never named is "*"
      this.key = '*';
      return;
    }
    this.everNamed = true;
    if (sameNames(names, this.lastNames)) return;
    this.wildcard = names.includes('*');
    const set = new Set(names.filter((n) => n !== '*'));
    this.key = this.wildcard ? '*' : contentHash([...set].sort().join('\u0000'));
    // Thousands of streams subscribe to the same (large) list: keep one copy of it.
    const shared = internSubscription(this.key, names, set);
    this.lastNames = shared.names;
    this.names = shared.set;
  }

  hasNewNames(): boolean {
    if (this.wildcard && !this.wildcardAtSend) return true;
    if (this.key === this.keyAtSend) return false;
    for (const n of this.names) if (!this.namesAtSend.has(n)) return true;
    return false;
  }

  keyAtSend = '';

  /** What this subscription selects of `all`, with its version: computed once per map and subscription. */
  select(all: ReadonlyMap<string, Resource>): Selection {
    let bySubscription = selections.get(all);
    if (!bySubscription) selections.set(all, (bySubscription = new Map()));
    const key = this.wildcard ? '*' : this.key;
    let selection = bySubscription.get(key);
    if (!selection) {
      const resources = this.wildcard ? [...all.values()] : [...this.names].flatMap((n) => (all.has(n) ? [all.get(n)!] : []));
      selection = { resources, version: versionOf(resources) };
      bySubscription.set(key, selection);
    }
    return selection;
  }
}

export class SotwStream extends StreamBase implements ClientView {
  private readonly types = new Map<ResourceTypeUrl, TypeState>();

  held(typeUrl: ResourceTypeUrl): Iterable<Resource> {
    const st = this.types.get(typeUrl);
    if (!st) return [];
    if (st.acked === st.sent) return st.sent.values();
    // Sent first, then what the client acknowledged and may still run until its next ACK.
    return [...st.sent.values(), ...[...st.acked.values()].filter((r) => st.sent.get(r.name) !== r)];
  }

  acked(typeUrl: ResourceTypeUrl): ReadonlyMap<string, Resource> {
    return this.types.get(typeUrl)?.acked ?? NONE;
  }

  status(): TypeStatus[] {
    return PUSH_ORDER.flatMap((t) => (this.types.has(t) ? [this.types.get(t)!] : []));
  }

  onRequest(req: DiscoveryRequest): void {
    if (this.closed || !this.acceptNode(req.node)) return;
    const { callbacks, logger } = this.options;
    const typeUrl = req.type_url;
    callbacks.onRequest({
      stream_id: this.id,
      node_id: this.nodeId,
      type_url: typeUrl,
      resource_names: req.resource_names,
      response_nonce: req.response_nonce,
    });
    if (!isResourceTypeUrl(typeUrl)) {
      logger.debug({ stream_id: this.id, node_id: this.nodeId, type_url: typeUrl }, 'ignoring request for a type this server does not serve');
      return;
    }
    let st = this.types.get(typeUrl);
    if (!st) this.types.set(typeUrl, (st = new TypeState(typeUrl)));
    // A stale request still changes the subscription (envoy#10363), but gets no answer.
    st.subscribe(req.resource_names);
    st.clientVersion = req.version_info;
    if (req.response_nonce !== '' && req.response_nonce !== st.nonce) return;

    if (req.response_nonce !== '') {
      const event = { stream_id: this.id, node_id: this.nodeId, type_url: typeUrl, nonce: req.response_nonce };
      if (req.error_detail) {
        st.nackedVersion = st.sentVersion;
        st.lastError = req.error_detail.message ?? '';
        callbacks.onNack({ ...event, version: st.sentVersion ?? '', error_code: req.error_detail.code ?? 0, error_message: st.lastError });
      } else {
        st.ackedVersion = st.sentVersion;
        st.acked = st.sent;
        st.lastError = undefined;
        callbacks.onAck({ ...event, version: st.sentVersion ?? '' });
      }
      st.updatedAt = Date.now();
    }
    this.pump();
  }

  protected onSnapshot(): void {
    this.pump();
  }

  protected pumpOnce(): void {
    const snapshot = this.snapshot;
    if (!snapshot) return;
    for (const typeUrl of PUSH_ORDER) {
      const st = this.types.get(typeUrl);
      if (!st || !this.canWrite) continue;
      const all = desiredResources(typeUrl, snapshot, this);
      const selection = st.select(all);
      const desired = selection.resources;
      const version = st.wildcard && all === snapshot.resources(typeUrl) ? snapshot.version(typeUrl) : selection.version;

      if (st.sentVersion === undefined && st.clientVersion !== '' && st.clientVersion === version && this.holdsAcrossStreams(st)) {
        // Reconnected with exactly this state (content-hash versions): nothing to send.
        this.recordSent(st, version, byNameOf(selection));
        st.ackedVersion = version;
        st.acked = st.sent;
        continue;
      }
      const newNames = st.hasNewNames();
      if (!st.force && !newNames && version === st.sentVersion) continue;
      if (!st.force && !newNames && version === st.nackedVersion) continue; // never repeat a rejected version
      const gated = typeUrl === TypeUrl.Listener || typeUrl === TypeUrl.RouteConfiguration;
      const changed = gated ? desired.filter((r) => st.sent.get(r.name)?.version !== r.version) : [];
      if (gated && this.holdBack(st, changed, this.types.get(TypeUrl.Cluster)?.wildcard ?? false)) continue;
      this.respond(st, version, selection);
    }
  }

  /**
   * Whether a client that reports the current version on a new stream really still has
   * the resources. For a wildcard type it does: the version covers everything. For
   * named types only Envoy is known to keep every resource across streams; gRPC's xDS
   * client drops what it no longer watches yet keeps reporting the type's last
   * version, so it must be answered (the spec allows skipping only where the client
   * subscribes to nothing new).
   */
  private holdsAcrossStreams(st: TypeState): boolean {
    return st.wildcard || this.nodeInfo?.user_agent_name === 'envoy';
  }

  private respond(st: TypeState, version: string, selection: Selection): void {
    const desired = selection.resources;
    const previous = st.sent;
    const nonce = this.nextNonce();
    const bytes = encodeDiscoveryResponse({
      versionInfo: version,
      typeUrl: st.typeUrl,
      nonce,
      resources: desired,
      controlPlaneId: this.options.controlPlaneId,
    });
    st.nonce = nonce;
    this.recordSent(st, version, byNameOf(selection));
    if (st.typeUrl === TypeUrl.Cluster) this.resendEndpointsOfChangedClusters(previous, st.sent);
    this.options.callbacks.onResponse({
      stream_id: this.id,
      node_id: this.nodeId,
      type_url: st.typeUrl,
      version,
      nonce,
      resources: desired.length,
      removed: 0,
    });
    this.send(bytes);
  }

  private recordSent(st: TypeState, version: string, sent: ReadonlyMap<string, Resource>): void {
    st.sentVersion = version;
    st.sent = sent;
    st.namesAtSend = st.names;
    st.keyAtSend = st.key;
    st.wildcardAtSend = st.wildcard;
    st.force = false;
    st.heldSince = undefined;
    st.updatedAt = Date.now();
  }

  /**
   * Envoy keeps a new or updated cluster warming until endpoints arrive for it, even
   * when they are endpoints it already holds under that name (a mirror's cluster shares
   * its target's): such a cluster asks for no new name, so without this it would wait
   * for Envoy's initial fetch timeout. A cluster whose endpoints are a name not yet
   * subscribed needs nothing: Envoy's subscription to it brings them.
   */
  private resendEndpointsOfChangedClusters(before: ReadonlyMap<string, Resource>, after: ReadonlyMap<string, Resource>): void {
    const eds = this.types.get(TypeUrl.ClusterLoadAssignment);
    if (!eds) return;
    for (const [name, r] of after) {
      if (before.get(name)?.version === r.version) continue;
      if (r.references.some((ref) => eds.wildcard || eds.names.has(ref.name))) {
        eds.force = true;
        return;
      }
    }
  }
}
