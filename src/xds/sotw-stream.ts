// One state-of-the-world ADS stream (StreamAggregatedResources). Each type_url is its
// own sub-stream with its own nonce, version and ACK/NACK state (xDS spec).
import { TypeUrl, PUSH_ORDER, isResourceTypeUrl, type ResourceTypeUrl } from './resources.js';
import { hash } from 'node:crypto';
import { contentHash } from './resource.js';
import { ResourceMap } from './resource-map.js';
import { desiredPerPump, type ClientView } from './ordering.js';
import { StreamBase } from './stream-base.js';
import { encodeDiscoveryResponse, sameResourceNameBytes, type DiscoveryRequest, type ResourceNameBytes } from './wire.js';
import type { Resource } from './resource.js';

const NONE = ResourceMap.EMPTY;

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

/**
 * Selections by resource map, then by subscription: thousands of proxies of one group
 * with the same subscription (Envoy asks for every cluster's endpoints) share one.
 */
const selections = new WeakMap<ResourceMap, Map<string, ResourceMap>>();

/**
 * Encoded responses, shared by every stream that is sent the same thing: per selection
 * sent, whole or as the change from an earlier selection, per control-plane id. Each
 * encoding carries its own nonce from one process-wide sequence, so a nonce still
 * names one response on any one stream.
 */
interface Encoded {
  bytes: Buffer;
  nonce: string;
  resources: number;
  /** What the streams sent this recorded: one for all of them (see Delivery). */
  delivery?: Delivery;
}
const wholeResponses = new WeakMap<ResourceMap, Map<string, Encoded>>();
const changeResponses = new WeakMap<ResourceMap, WeakMap<ResourceMap, Map<string, Encoded>>>();
let responseSequence = 0;

function cached<K extends object>(cache: WeakMap<K, Map<string, Encoded>>, key: K, id: string, encode: () => Encoded): Encoded {
  let byId = cache.get(key);
  if (!byId) cache.set(key, (byId = new Map()));
  let encoded = byId.get(id);
  if (!encoded) byId.set(id, (encoded = encode()));
  return encoded;
}

/**
 * Types whose SotW responses may carry only what changed: for EDS and RDS a resource
 * left out of a response is not removed (xDS spec, "Grouping Resources into
 * Responses"); Listener and Cluster responses must hold every resource.
 */
const SENDS_CHANGES = new Set<ResourceTypeUrl>([TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration]);

/**
 * A subscription many streams hold: Envoys of one kind ask for the same (long) lists.
 * Found by the bytes of the request's resource_names, so a new stream asking for what
 * others asked for costs a hash and a compare, not thousands of decoded names.
 */
interface Subscription extends ResourceNameBytes {
  /** The resource_names fields as they arrived, when they came off the wire (a copy). */
  readonly resource_names_raw?: Uint8Array;
  readonly names: readonly string[];
  readonly set: ReadonlySet<string>;
  readonly wildcard: boolean;
  /** Equal for equal sets of names, whatever their order: the key of shared selections. */
  readonly key: string;
}

const subscriptionsByBytes = new Map<string, Subscription>();
const subscriptionsByKey = new Map<string, Subscription>();
const MAX_SHARED_SUBSCRIPTIONS = 256;

function remember(map: Map<string, Subscription>, key: string, subscription: Subscription): Subscription {
  map.set(key, subscription);
  if (map.size > MAX_SHARED_SUBSCRIPTIONS) map.delete(map.keys().next().value!); // holders keep theirs
  return subscription;
}

function subscriptionOfNames(names: readonly string[], raw?: Uint8Array): Subscription {
  const wildcard = names.includes('*');
  const set = new Set(names.filter((n) => n !== '*'));
  const key = wildcard ? '*' : contentHash([...set].sort().join('\u0000'));
  const known = subscriptionsByKey.get(key);
  if (known && !raw) return known;
  return remember(subscriptionsByKey, key, { resource_names_raw: raw, names: known?.names ?? names, set: known?.set ?? set, wildcard, key });
}

function subscriptionOf(req: DiscoveryRequest): Subscription {
  const raw = req.resource_names_raw;
  if (!raw) return subscriptionOfNames(req.resource_names);
  const digest = hash('sha1', raw, 'base64');
  const known = subscriptionsByBytes.get(digest);
  if (known && sameResourceNameBytes(known, req)) return known;
  // A copy of exactly the names' bytes, in memory of its own: the request's are a view
  // of its message, which may sit in a larger buffer (as a small copy would sit in
  // Node's pool), and a subscription lives as long as its streams.
  const kept = Buffer.allocUnsafeSlow(raw.length);
  kept.set(raw);
  return remember(subscriptionsByBytes, digest, subscriptionOfNames(req.resource_names, kept));
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What a type never named subscribes to: everything (legacy wildcard). */
const LEGACY_WILDCARD: Subscription = { names: [], set: new Set(), wildcard: true, key: '*' };

/**
 * A response as the streams it went to recorded it: the version and nonce, what it left
 * the client holding, the map that was selected from, and the subscription it answered.
 * Made once per encoding and shared by every stream that was sent that encoding; the
 * nonce is empty for a client that reconnected already holding the version.
 */
class Delivery {
  /** The state of a stream that has ACKed this and waits for nothing; see TypeState.settles. */
  settled?: TypeState;

  constructor(
    readonly version: string,
    readonly nonce: string,
    readonly resources: ResourceMap,
    readonly from: ResourceMap,
    readonly subscription: Subscription,
  ) {}

  /**
   * The record of a response: `known` (the one kept with the encoding) when it records
   * exactly this, so streams sent the same thing share it; a new one otherwise.
   */
  static of(known: Delivery | undefined, version: string, nonce: string, resources: ResourceMap, from: ResourceMap, subscription: Subscription): Delivery {
    const same = known?.version === version && known.nonce === nonce && known.resources === resources && known.from === from && known.subscription === subscription;
    return same ? known : new Delivery(version, nonce, resources, from, subscription);
  }
}

/** Deliveries of a selection that went out without a response, to clients that reconnected holding it. */
const silentDeliveries = new WeakMap<ResourceMap, Delivery>();

/** What a type holds only after a NACK or while a response waits; most of the time it has none. */
class Unsettled {
  nackedVersion?: string;
  lastError?: string;
  /** Names to send again even if unchanged (endpoints after their cluster changed). */
  resend?: Set<string>;
  heldSince?: number;

  get empty(): boolean {
    return this.nackedVersion === undefined && this.lastError === undefined && this.resend === undefined && this.heldSince === undefined;
  }
}

/**
 * One type on one stream. A state whose last response was ACKed, with nothing held back,
 * rejected or owed, is the same on every stream that took that response, and ten
 * thousand idle streams share one (`Delivery.settled`): a stream copies it before it
 * changes anything (`SotwStream.own`).
 */
class TypeState {
  /** The subscription of the latest request: most requests (ACKs) repeat it. */
  subscription = LEGACY_WILDCARD;
  /** The client's version_info on its latest request. */
  clientVersion = '';
  /** The latest response, and the latest the client ACKed. */
  sent?: Delivery;
  acked?: Delivery;
  unsettled?: Unsettled;

  constructor(readonly typeUrl: ResourceTypeUrl) {}

  copy(): TypeState {
    const st = new TypeState(this.typeUrl);
    st.subscription = this.subscription;
    st.clientVersion = this.clientVersion;
    st.sent = this.sent;
    st.acked = this.acked;
    if (this.unsettled) st.unsettled = Object.assign(new Unsettled(), this.unsettled);
    return st;
  }

  /** The resources of the latest response; none before the first. */
  get sentResources(): ResourceMap {
    return this.sent?.resources ?? NONE;
  }

  /** The resources of the latest response the client ACKed; none before the first ACK. */
  get ackedResources(): ResourceMap {
    return this.acked?.resources ?? NONE;
  }

  /** Whether this state is the one streams in it share. */
  get shared(): boolean {
    return this.sent?.settled === this;
  }

  /** Whether this state is one every stream in it can share: see the class. */
  get settles(): boolean {
    const sent = this.sent;
    return sent !== undefined && this.acked === sent && this.unsettled === undefined && this.subscription === sent.subscription && this.clientVersion === sent.version;
  }

  get nackedVersion(): string | undefined {
    return this.unsettled?.nackedVersion;
  }

  get lastError(): string | undefined {
    return this.unsettled?.lastError;
  }

  get resend(): Set<string> | undefined {
    return this.unsettled?.resend;
  }

  /** When a route or listener started to wait for its clusters (see StreamBase.holdBack). */
  get heldSince(): number | undefined {
    return this.unsettled?.heldSince;
  }

  set heldSince(at: number | undefined) {
    this.change((u) => (u.heldSince = at));
  }

  nack(message: string): void {
    this.change((u) => {
      u.nackedVersion = this.sent?.version;
      u.lastError = message;
    });
  }

  ack(): void {
    this.acked = this.sent;
    if (this.unsettled?.lastError !== undefined) this.change((u) => (u.lastError = undefined));
  }

  resendName(name: string): void {
    this.change((u) => (u.resend ??= new Set()).add(name));
  }

  /** Records a response (or, with an empty nonce, a version the client already held). */
  record(delivery: Delivery): void {
    this.sent = delivery;
    if (this.unsettled)
      this.change((u) => {
        u.resend = undefined;
        u.heldSince = undefined;
      });
  }

  private change(edit: (u: Unsettled) => void): void {
    const u = (this.unsettled ??= new Unsettled());
    edit(u);
    if (u.empty) this.unsettled = undefined;
  }

  get wildcard(): boolean {
    return this.subscription.wildcard;
  }

  get names(): ReadonlySet<string> {
    return this.subscription.set;
  }

  /** Identifies the subscription; streams with equal subscriptions share selections. */
  get key(): string {
    return this.subscription.key;
  }

  subscribe(req: DiscoveryRequest): void {
    const raw = req.resource_names_raw;
    const last = this.subscription;
    if (sameResourceNameBytes(req, last)) return;
    const empty = raw ? raw.length === 0 : req.resource_names.length === 0;
    // A type never named is still the legacy wildcard, "*", while its requests name nothing.
    if (empty && last === LEGACY_WILDCARD) return;
    if (!raw && last !== LEGACY_WILDCARD && sameNames(req.resource_names, last.names)) return;
    this.subscription = subscriptionOf(req);
  }

  hasNewNames(): boolean {
    const atSend = this.sent?.subscription;
    if (this.wildcard && !atSend?.wildcard) return true;
    if (this.key === atSend?.key) return false;
    for (const n of this.names) if (!atSend?.set.has(n)) return true;
    return false;
  }

  /**
   * What this subscription selects of `all`: computed once per map and subscription,
   * and from the last selection sent plus the change since when there is one.
   */
  select(all: ResourceMap): ResourceMap {
    if (this.wildcard) return all;
    let bySubscription = selections.get(all);
    if (!bySubscription) selections.set(all, (bySubscription = new Map()));
    let selection = bySubscription.get(this.key);
    if (!selection) {
      const sent = this.sent;
      const derivable = sent !== undefined && sent.subscription.key === this.key && !sent.subscription.wildcard;
      selection = all.select(this.names, derivable ? { of: sent.from, selection: sent.resources } : undefined);
      bySubscription.set(this.key, selection);
    }
    return selection;
  }
}

/**
 * What onRequest hooks are told. The names are decoded only if a hook reads them: an
 * ACK repeats thousands of names nobody needs again. A class, not an object literal
 * with a getter, which V8 builds in about a microsecond against a few nanoseconds for
 * an instance. The getter is the prototype's, so a hook that copies or logs the event
 * names its fields (see logging-callbacks.ts).
 */
class RequestEvent {
  readonly type_url: string;
  readonly response_nonce: string;
  readonly #request: DiscoveryRequest;

  constructor(
    readonly stream_id: number,
    readonly node_id: string,
    request: DiscoveryRequest,
  ) {
    this.type_url = request.type_url;
    this.response_nonce = request.response_nonce;
    this.#request = request;
  }

  get resource_names(): readonly string[] {
    return this.#request.resource_names;
  }
}

/** Where a type's state sits in a stream's `states`: push order. */
const SLOT = new Map<ResourceTypeUrl, number>(PUSH_ORDER.map((t, i) => [t, i]));

export class SotwStream extends StreamBase implements ClientView {
  /**
   * Each type's state by SLOT, and when it last changed (ms since the epoch): arrays,
   * not a map of objects, as ten thousand idle streams each hold them.
   */
  private readonly states: (TypeState | undefined)[] = [undefined, undefined, undefined, undefined];
  private readonly updatedAt: number[] = [0, 0, 0, 0];

  private state(typeUrl: ResourceTypeUrl): TypeState | undefined {
    return this.states[SLOT.get(typeUrl)!];
  }

  /** The type's state, this stream's own to change: a shared one is copied first (see TypeState). */
  private own(typeUrl: ResourceTypeUrl): TypeState {
    const slot = SLOT.get(typeUrl)!;
    let st = this.states[slot];
    if (st?.shared) this.states[slot] = st = st.copy();
    if (!st) {
      this.states[slot] = st = new TypeState(typeUrl);
      this.touch(typeUrl);
    }
    return st;
  }

  /** Notes that the type's state changed now: what CSDS reports as its last update. */
  private touch(typeUrl: ResourceTypeUrl): void {
    this.updatedAt[SLOT.get(typeUrl)!] = Date.now();
  }

  /** Swaps each state that every stream in it can share for the shared one. */
  private settle(): void {
    for (let slot = 0; slot < this.states.length; slot++) {
      const st = this.states[slot];
      if (st?.settles && !st.shared) this.states[slot] = st.sent!.settled ??= st;
    }
  }

  held(typeUrl: ResourceTypeUrl): Iterable<Resource> {
    const st = this.state(typeUrl);
    const sent = st?.sentResources ?? NONE;
    const acked = st?.ackedResources ?? NONE;
    if (acked === sent) return sent.values();
    // Sent first, then what the client acknowledged and may still run until its next ACK.
    return [...sent.values(), ...[...acked.values()].filter((r) => sent.get(r.name) !== r)];
  }

  acked(typeUrl: ResourceTypeUrl): ReadonlyMap<string, Resource> {
    return this.state(typeUrl)?.ackedResources ?? NONE;
  }

  status(): TypeStatus[] {
    return PUSH_ORDER.flatMap((typeUrl, slot) => {
      const st = this.states[slot];
      if (!st) return [];
      return [
        {
          typeUrl,
          sentVersion: st.sent?.version,
          ackedVersion: st.acked?.version,
          nackedVersion: st.nackedVersion,
          lastError: st.lastError,
          sent: st.sentResources,
          acked: st.ackedResources,
          updatedAt: this.updatedAt[slot]!,
        },
      ];
    });
  }

  onRequest(req: DiscoveryRequest): void {
    if (this.closed || !this.acceptNode(req.node)) return;
    const { callbacks, logger } = this.options;
    const typeUrl = req.type_url;
    callbacks.onRequest(new RequestEvent(this.id, this.nodeId, req));
    if (!isResourceTypeUrl(typeUrl)) {
      logger.debug({ stream_id: this.id, node_id: this.nodeId, type_url: typeUrl }, 'ignoring request for a type this server does not serve');
      return;
    }
    const st = this.own(typeUrl);
    // A stale request still changes the subscription (envoy#10363), but gets no answer.
    st.subscribe(req);
    // An ACK echoes the version sent: keep that string, not a decoded copy of it per type and stream.
    const sentVersion = st.sent?.version;
    st.clientVersion = req.version_info === sentVersion ? sentVersion : req.version_info;
    if (req.response_nonce !== '' && req.response_nonce !== st.sent?.nonce) {
      this.settle();
      return;
    }

    if (req.response_nonce !== '') {
      const event = { stream_id: this.id, node_id: this.nodeId, type_url: typeUrl, nonce: req.response_nonce, version: sentVersion ?? '' };
      if (req.error_detail) {
        const message = req.error_detail.message ?? '';
        st.nack(message);
        callbacks.onNack({ ...event, error_code: req.error_detail.code ?? 0, error_message: message });
      } else {
        st.ack();
        callbacks.onAck(event);
      }
      this.touch(typeUrl);
    }
    this.pump();
    this.settle();
  }

  protected pumpOnce(): void {
    const snapshot = this.snapshot;
    if (!snapshot) return;
    const desired = desiredPerPump(snapshot, this);
    for (const typeUrl of PUSH_ORDER) {
      const st = this.state(typeUrl);
      if (!st || !this.canWrite) continue;
      const all = desired.of(typeUrl);
      const selection = st.select(all);
      const version = selection.version;

      if (st.sent === undefined && st.clientVersion !== '' && st.clientVersion === version && this.holdsAcrossStreams(st)) {
        // Reconnected with exactly this state (content-hash versions): nothing to send.
        const known = silentDeliveries.get(selection);
        const delivery = Delivery.of(known, version, '', selection, all, st.subscription);
        if (!known) silentDeliveries.set(selection, delivery);
        const own = this.own(typeUrl);
        own.record(delivery);
        own.ack();
        this.touch(typeUrl);
        continue;
      }
      const newNames = st.hasNewNames();
      const due = newNames || st.resend !== undefined;
      if (!due && version === st.sent?.version) continue;
      if (!due && version === st.nackedVersion) continue; // never repeat a rejected version
      const gated = typeUrl === TypeUrl.Listener || typeUrl === TypeUrl.RouteConfiguration;
      const sent = st.sentResources;
      const changed = gated ? [...selection.values()].filter((r) => sent.get(r.name)?.version !== r.version) : [];
      if (gated && this.holdBack(this.own(typeUrl), changed, this.state(TypeUrl.Cluster)?.wildcard ?? false)) continue;
      this.respond(this.own(typeUrl), version, selection, all, newNames);
      if (typeUrl === TypeUrl.Cluster) desired.clustersSent();
    }
    this.settleGate(this.states);
    this.settle();
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
    return st.wildcard || this.userAgentName === 'envoy';
  }

  /**
   * Sends `selection`: whole on a stream's first response, after new names, and always
   * for listeners and clusters; otherwise (EDS, RDS) only what changed since the last
   * response, plus what must be sent again. Responses that are the same for many
   * streams are encoded once, and recorded once (a Delivery).
   */
  private respond(st: TypeState, version: string, selection: ResourceMap, from: ResourceMap, newNames: boolean): void {
    const previous = st.sentResources;
    const id = this.options.controlPlaneId;
    const encode = (resources: readonly Resource[]): Encoded => {
      const nonce = (++responseSequence).toString(36);
      const bytes = encodeDiscoveryResponse({ versionInfo: version, typeUrl: st.typeUrl, nonce, resources, controlPlaneId: id });
      return { bytes, nonce, resources: resources.length };
    };
    let encoded: Encoded;
    const whole = !SENDS_CHANGES.has(st.typeUrl) || st.sent === undefined || newNames;
    if (whole) {
      encoded = cached(wholeResponses, selection, id, () => encode([...selection.values()]));
    } else if (st.resend) {
      const changed = selection.diffFrom(previous).upserts;
      const again = [...st.resend].flatMap((n) => (changed.some((r) => r.name === n) || !selection.has(n) ? [] : [selection.get(n)!]));
      encoded = encode([...changed, ...again]);
    } else {
      let byFrom = changeResponses.get(selection);
      if (!byFrom) changeResponses.set(selection, (byFrom = new WeakMap()));
      encoded = cached(byFrom, previous, id, () => encode(selection.diffFrom(previous).upserts));
    }
    // The same encoding twice on one stream would repeat its nonce: encode afresh.
    if (encoded.nonce === st.sent?.nonce) encoded = encode(whole ? [...selection.values()] : selection.diffFrom(previous).upserts);
    const delivery = Delivery.of(encoded.delivery, version, encoded.nonce, selection, from, st.subscription);
    encoded.delivery ??= delivery;
    st.record(delivery);
    this.touch(st.typeUrl);
    if (st.typeUrl === TypeUrl.Cluster) this.resendEndpointsOfChangedClusters(previous, selection);
    this.options.callbacks.onResponse({
      stream_id: this.id,
      node_id: this.nodeId,
      type_url: st.typeUrl,
      version,
      nonce: encoded.nonce,
      resources: encoded.resources,
      removed: 0,
    });
    this.send(encoded.bytes);
  }

  /**
   * Envoy keeps a new or updated cluster warming until endpoints arrive for it, even
   * when they are endpoints it already holds under that name (a mirror's cluster shares
   * its target's): such a cluster asks for no new name, so without this it would wait
   * for Envoy's initial fetch timeout. A cluster whose endpoints are a name not yet
   * subscribed needs nothing: Envoy's subscription to it brings them.
   */
  private resendEndpointsOfChangedClusters(before: ResourceMap, after: ResourceMap): void {
    const eds = this.state(TypeUrl.ClusterLoadAssignment);
    if (!eds) return;
    const again: string[] = [];
    for (const r of after.diffFrom(before).upserts) {
      for (const ref of r.references) if (eds.wildcard || eds.names.has(ref.name)) again.push(ref.name);
    }
    if (again.length === 0) return;
    const own = this.own(TypeUrl.ClusterLoadAssignment);
    for (const name of again) own.resendName(name);
  }
}
