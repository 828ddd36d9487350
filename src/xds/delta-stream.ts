// One incremental ADS stream (DeltaAggregatedResources): the server tracks what the
// client holds, name by name, and sends only differences (xDS spec, "Incremental xDS").
import { hash } from 'node:crypto';
import { TypeUrl, PUSH_ORDER, isResourceTypeUrl, type ResourceTypeUrl } from './resources.js';
import { desiredPerPump, type ClientView } from './ordering.js';
import { StreamBase } from './stream-base.js';
import { encodeDeltaDiscoveryResponse, type DeltaDiscoveryRequest } from './wire.js';
import type { Resource } from './resource.js';
import { ResourceMap, type ResourceDiff } from './resource-map.js';
import type { TypeStatus } from './sotw-stream.js';

/** Responses awaiting an ACK, per type; older ones beyond this are forgotten (stale). */
const MAX_IN_FLIGHT = 32;

interface InFlight {
  resources: Resource[];
  removed: string[];
  /** The system version the response carried: what its ACK or NACK refers to. */
  version: string;
}

const NO_NAMES: ReadonlySet<string> = new Set();

/**
 * Subscription sets shared by streams: from a set and one request's subscribe and
 * unsubscribe lists to the set they make. Envoys of one kind subscribe to the same
 * names in the same requests (an edge Envoy to every endpoint set: 20,000 names at
 * 10,000 services), and each would otherwise keep a set of its own.
 */
const subscriptionSteps = new WeakMap<ReadonlySet<string>, Map<string, ReadonlySet<string>>>();
/** Steps kept per set: enough for the kinds of proxies a mesh has; the rest are made afresh. */
const MAX_STEPS = 64;

function nextNames(base: ReadonlySet<string>, subscribe: readonly string[], unsubscribe: readonly string[]): ReadonlySet<string> {
  if (subscribe.length === 0 && unsubscribe.length === 0) return base;
  let steps = subscriptionSteps.get(base);
  if (!steps) subscriptionSteps.set(base, (steps = new Map()));
  const key = hash('sha256', JSON.stringify([subscribe, unsubscribe]), 'base64');
  let next = steps.get(key);
  if (!next) {
    const set = new Set(base);
    for (const name of subscribe) if (name !== '*') set.add(name);
    for (const name of unsubscribe) if (name !== '*') set.delete(name);
    next = set;
    steps.set(key, next);
    if (steps.size > MAX_STEPS) steps.delete(steps.keys().next().value!); // holders keep theirs
  }
  return next;
}

/** What a set of names selects of a map, made once per map and set and shared by every stream that has both. */
const selections = new WeakMap<ResourceMap, WeakMap<ReadonlySet<string>, ResourceMap>>();

/** A selection and the map it was made of. */
interface Selected {
  readonly of: ResourceMap;
  readonly names: ReadonlySet<string>;
  readonly selection: ResourceMap;
}

/** What `names` select of `all`, derived from `before` when that is the same names' selection of an earlier map. */
function selectionOf(all: ResourceMap, names: ReadonlySet<string>, before?: Selected): ResourceMap {
  let byNames = selections.get(all);
  if (!byNames) selections.set(all, (byNames = new WeakMap()));
  let selection = byNames.get(names);
  if (!selection) {
    selection = all.select(names, before?.names === names ? before : undefined);
    byNames.set(names, selection);
  }
  return selection;
}

/** Whether `resources` are exactly the resources of `map` (the same objects): a full sync of it. */
function isWhole(resources: readonly Resource[], map: ResourceMap): boolean {
  if (resources.length !== map.size) return false;
  for (const r of resources) if (map.get(r.name) !== r) return false;
  return true;
}

/** Whether `diff` is exactly `upserts` (by version) and `removed`. */
function sameChange(diff: ResourceDiff, upserts: readonly Resource[], removed: readonly string[]): boolean {
  if (diff.upserts.length !== upserts.length || diff.removed.length !== removed.length) return false;
  const changed = new Map(diff.upserts.map((r) => [r.name, r]));
  for (const r of upserts) if (!changed.get(r.name)?.sameContent(r)) return false;
  const gone = new Set(diff.removed);
  return removed.every((name) => gone.has(name));
}

/**
 * `from` with `upserts` and `removed` applied: `to` itself when that is what they make
 * of `from` (a full sync of `to`, or the change from `from` to `to`), so that streams
 * in step keep the map they share rather than each a copy of it.
 */
function advance(from: ResourceMap, to: ResourceMap, upserts: readonly Resource[], removed: readonly string[]): ResourceMap {
  if (from.size === 0 && removed.length === 0 && isWhole(upserts, to)) return to;
  if (to.sharesRootWith(from) && sameChange(to.diffFrom(from), upserts, removed)) return to;
  return from.with(upserts, removed);
}

/** Whether two maps hold the same resources (by version): cheap when one derives from the other's root. */
function sameResources(a: ResourceMap, b: ResourceMap): boolean {
  if (a === b) return true;
  if (a.size !== b.size || a.version !== b.version) return false;
  const diff = a.diffFrom(b);
  return diff.upserts.length === 0 && diff.removed.length === 0;
}

class DeltaTypeState {
  initialized = false;
  wildcard = false;
  /** The names subscribed besides a wildcard: a set shared by streams that subscribed alike. */
  names: ReadonlySet<string> = NO_NAMES;
  /**
   * Versions the client said it held when the stream opened (initial_resource_versions),
   * for names neither sent nor found current since.
   */
  initial?: Map<string, string>;
  /**
   * Resources sent (or that the client said it held, current) and not removed since:
   * what the client may hold. Derived from the snapshot's maps, and the very map every
   * stream with this subscription shares whenever it holds exactly that.
   */
  held: ResourceMap = ResourceMap.EMPTY;
  /** What the client acknowledged: the same map as `held` once it has ACKed everything. */
  acked: ResourceMap = ResourceMap.EMPTY;
  /** Names subscribed by the latest requests: answered even when the client holds them current. */
  mustAnswer = new Set<string>();
  nacked = new Map<string, string>();
  inFlight = new Map<string, InFlight>();
  lastError?: string;
  heldSince?: number;
  updatedAt = Date.now();
  /**
   * What the stream should hold as of its last full look, and whether the subscription
   * changed since: while it has not, a pump looks only at what changed in between (a
   * proxy subscribed to 20,000 endpoints is not walked name by name on every change).
   */
  seen?: ResourceMap;
  subscriptionChanged = true;

  constructor(readonly typeUrl: ResourceTypeUrl) {}

  isSubscribed(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }

  /** The version the client holds (or was last sent) of `name`. */
  knownVersion(name: string): string | undefined {
    return this.held.get(name)?.version ?? this.initial?.get(name);
  }

  knows(name: string): boolean {
    return this.held.has(name) || (this.initial?.has(name) ?? false);
  }

  /** Every name the client holds (or was last sent). */
  *knownNames(): Iterable<string> {
    yield* this.held.keys();
    if (this.initial) for (const name of this.initial.keys()) if (!this.held.has(name)) yield name;
  }

  /** The last selection of this stream's names: the next one derives from it. */
  private selected?: Selected;

  /** What the subscription selects of `all`. */
  selection(all: ResourceMap): ResourceMap {
    if (this.wildcard) return all;
    const last = this.selected;
    if (last && last.of === all && last.names === this.names) return last.selection;
    const selection = selectionOf(all, this.names, last);
    this.selected = { of: all, names: this.names, selection };
    return selection;
  }

  /** Takes the shared selection of `all` for `held` (and `held` for `acked`) wherever their contents are equal. */
  share(all: ResourceMap): void {
    const selection = this.selection(all);
    if (this.held !== selection && sameResources(this.held, selection)) this.held = selection;
    if (this.acked !== this.held && sameResources(this.acked, this.held)) this.acked = this.held;
  }
}

export class DeltaStream extends StreamBase implements ClientView {
  private readonly types = new Map<ResourceTypeUrl, DeltaTypeState>();
  private nonceCounter = 0;

  held(typeUrl: ResourceTypeUrl): Iterable<Resource> {
    const st = this.types.get(typeUrl);
    if (!st) return [];
    // Sent first, then what the client acknowledged and may still run until it ACKs the change.
    return [...st.held.values(), ...[...st.acked.values()].filter((r) => !st.held.get(r.name)?.sameContent(r))];
  }

  acked(typeUrl: ResourceTypeUrl): ReadonlyMap<string, Resource> {
    return this.types.get(typeUrl)?.acked ?? new Map<string, Resource>();
  }

  status(): TypeStatus[] {
    return PUSH_ORDER.flatMap((t) => {
      const st = this.types.get(t);
      if (!st) return [];
      return [{ typeUrl: t, sent: st.held, acked: st.acked, lastError: st.lastError, updatedAt: st.updatedAt }];
    });
  }

  onRequest(req: DeltaDiscoveryRequest): void {
    if (this.closed || !this.acceptNode(req.node)) return;
    const { callbacks } = this.options;
    const typeUrl = req.type_url;
    callbacks.onRequest({
      stream_id: this.id,
      node_id: this.nodeId,
      type_url: typeUrl,
      resource_names: req.resource_names_subscribe,
      response_nonce: req.response_nonce,
    });
    if (!isResourceTypeUrl(typeUrl)) return;
    let st = this.types.get(typeUrl);
    if (!st) this.types.set(typeUrl, (st = new DeltaTypeState(typeUrl)));

    if (req.resource_names_subscribe.length > 0 || req.resource_names_unsubscribe.length > 0) st.subscriptionChanged = true;
    if (!st.initialized) {
      st.initialized = true;
      const initial = Object.entries(req.initial_resource_versions);
      if (initial.length > 0) st.initial = new Map(initial);
      const wildcardType = typeUrl === TypeUrl.Listener || typeUrl === TypeUrl.Cluster;
      if (req.resource_names_subscribe.length === 0 && wildcardType) st.wildcard = true;
    }
    st.names = nextNames(st.names, req.resource_names_subscribe, req.resource_names_unsubscribe);
    for (const name of req.resource_names_subscribe) {
      if (name === '*') st.wildcard = true;
      else if (!(name in req.initial_resource_versions)) st.mustAnswer.add(name);
    }
    const forgotten: string[] = [];
    for (const name of req.resource_names_unsubscribe) {
      if (name === '*') st.wildcard = false;
      if (!st.isSubscribed(name)) {
        forgotten.push(name);
        st.initial?.delete(name);
        st.mustAnswer.delete(name);
      }
    }
    if (forgotten.length > 0) {
      st.held = st.held.with([], forgotten);
      st.acked = st.acked.with([], forgotten);
    }

    // Subscription changes count even with a stale nonce; the ACK part does not.
    const inFlight = req.response_nonce ? st.inFlight.get(req.response_nonce) : undefined;
    if (inFlight) {
      st.inFlight.delete(req.response_nonce);
      const event = { stream_id: this.id, node_id: this.nodeId, type_url: typeUrl, nonce: req.response_nonce, version: inFlight.version };
      if (req.error_detail) {
        for (const r of inFlight.resources) st.nacked.set(r.name, r.version);
        st.lastError = req.error_detail.message ?? '';
        callbacks.onNack({ ...event, error_code: req.error_detail.code ?? 0, error_message: st.lastError });
      } else {
        // A stream in step takes the map it was sent rather than a copy (see advance).
        st.acked = advance(st.acked, st.held, inFlight.resources, inFlight.removed);
        st.lastError = undefined;
        callbacks.onAck(event);
      }
      st.updatedAt = Date.now();
    }
    this.pump();
  }

  protected pumpOnce(): void {
    const snapshot = this.snapshot;
    if (!snapshot) return;
    const view = desiredPerPump(snapshot, this);
    for (const typeUrl of PUSH_ORDER) {
      const st = this.types.get(typeUrl);
      if (!st || !this.canWrite) continue;
      const desired = view.of(typeUrl);
      const { toSend, removed } = this.due(st, desired);
      if (toSend.length === 0 && removed.length === 0) {
        this.sawAll(st, desired);
        st.share(desired);
        continue;
      }
      if (this.holdBack(st, toSend, this.types.get(TypeUrl.Cluster)?.wildcard ?? false)) continue;
      this.respond(st, toSend, removed.sort(), st.selection(desired));
      this.sawAll(st, desired);
      st.share(desired);
      if (typeUrl === TypeUrl.Cluster) view.clustersSent();
    }
    this.settleGate(this.types.values());
  }

  /**
   * What to send and what to report removed: while the subscription stands, only what
   * changed since the last look and the names that must be answered; otherwise every
   * subscribed name.
   */
  private due(st: DeltaTypeState, desired: ResourceMap): { toSend: Resource[]; removed: string[] } {
    const toSend: Resource[] = [];
    const removed: string[] = [];
    const current: Resource[] = [];
    const consider = (r: Resource): void => {
      const answer = st.mustAnswer.has(r.name);
      if (!answer && st.knownVersion(r.name) === r.version) {
        // Held since before this stream, and current: from now on it is held like a resource sent.
        if (st.initial?.delete(r.name)) current.push(r);
        return;
      }
      if (!answer && st.nacked.get(r.name) === r.version) return; // never repeat a rejected version
      toSend.push(r);
    };
    if (st.seen && !st.subscriptionChanged) {
      const change = desired.diffFrom(st.seen);
      for (const r of change.upserts) if (st.isSubscribed(r.name)) consider(r);
      for (const name of st.mustAnswer) {
        const r = desired.get(name);
        if (r && !toSend.includes(r)) consider(r);
      }
      for (const name of change.removed) if (st.knows(name)) removed.push(name);
    } else {
      const subscribed = st.wildcard ? desired.values() : [...st.names].flatMap((n) => (desired.has(n) ? [desired.get(n)!] : []));
      for (const r of subscribed) consider(r);
      for (const name of st.knownNames()) if (!desired.has(name) || !st.isSubscribed(name)) removed.push(name);
    }
    // A subscribed name that does not exist is reported at once, not left to a timeout.
    for (const name of st.mustAnswer) if (!desired.has(name) && !st.knows(name) && !removed.includes(name)) removed.push(name);
    if (current.length > 0) st.held = st.held.with(current);
    return { toSend, removed };
  }

  /** Everything `desired` holds has been sent or needs nothing: the next look starts from it. */
  private sawAll(st: DeltaTypeState, desired: ResourceMap): void {
    st.seen = desired;
    st.subscriptionChanged = false;
  }

  private respond(st: DeltaTypeState, toSend: Resource[], removed: string[], selection: ResourceMap): void {
    const nonce = (++this.nonceCounter).toString(36);
    const systemVersion = this.snapshot?.version(st.typeUrl) ?? '';
    const bytes = encodeDeltaDiscoveryResponse({
      systemVersionInfo: systemVersion,
      typeUrl: st.typeUrl,
      nonce,
      resources: toSend,
      removed,
      controlPlaneId: this.options.controlPlaneId,
    });
    const changedClusters: Resource[] = [];
    for (const r of toSend) {
      if (st.typeUrl === TypeUrl.Cluster && st.knownVersion(r.name) !== r.version) changedClusters.push(r);
      st.initial?.delete(r.name);
      st.mustAnswer.delete(r.name);
    }
    for (const name of removed) {
      st.initial?.delete(name);
      st.mustAnswer.delete(name);
    }
    st.held = advance(st.held, selection, toSend, removed);
    st.inFlight.set(nonce, { resources: toSend, removed, version: systemVersion });
    if (st.inFlight.size > MAX_IN_FLIGHT) st.inFlight.delete(st.inFlight.keys().next().value!);
    st.heldSince = undefined;
    st.updatedAt = Date.now();
    this.resendEndpointsOf(changedClusters);
    this.options.callbacks.onResponse({
      stream_id: this.id,
      node_id: this.nodeId,
      type_url: st.typeUrl,
      version: systemVersion,
      nonce,
      resources: toSend.length,
      removed: removed.length,
    });
    this.send(bytes);
  }

  /**
   * Envoy keeps a new or updated cluster warming until endpoints arrive for it, even
   * when they are endpoints it already holds under that name (a mirror's cluster shares
   * its target's): such a cluster asks for no new name, so without this it would wait
   * for Envoy's initial fetch timeout.
   */
  private resendEndpointsOf(clusters: Resource[]): void {
    const eds = this.types.get(TypeUrl.ClusterLoadAssignment);
    if (!eds) return;
    for (const c of clusters) for (const ref of c.references) if (eds.isSubscribed(ref.name)) eds.mustAnswer.add(ref.name);
  }
}
