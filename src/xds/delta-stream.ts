// One incremental ADS stream (DeltaAggregatedResources): the server tracks what the
// client holds, name by name, and sends only differences (xDS spec, "Incremental xDS").
import { TypeUrl, PUSH_ORDER, isResourceTypeUrl, type ResourceTypeUrl } from './resources.js';
import { desiredPerPump, type ClientView } from './ordering.js';
import { StreamBase } from './stream-base.js';
import { encodeDeltaDiscoveryResponse, type DeltaDiscoveryRequest } from './wire.js';
import type { Resource } from './resource.js';
import type { ResourceMap } from './resource-map.js';
import type { TypeStatus } from './sotw-stream.js';

/** Responses awaiting an ACK, per type; older ones beyond this are forgotten (stale). */
const MAX_IN_FLIGHT = 32;

interface InFlight {
  resources: Resource[];
  removed: string[];
  /** The system version the response carried: what its ACK or NACK refers to. */
  version: string;
}

class DeltaTypeState {
  initialized = false;
  wildcard = false;
  names = new Set<string>();
  /** name → version the client holds (or was last sent). */
  known = new Map<string, string>();
  /** Resources sent and not removed since: what the client may hold. */
  held = new Map<string, Resource>();
  acked = new Map<string, Resource>();
  /** Names subscribed by the latest requests: answered even when `known` says current. */
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
}

export class DeltaStream extends StreamBase implements ClientView {
  private readonly types = new Map<ResourceTypeUrl, DeltaTypeState>();

  held(typeUrl: ResourceTypeUrl): Iterable<Resource> {
    const st = this.types.get(typeUrl);
    if (!st) return [];
    // Sent first, then what the client acknowledged and may still run until it ACKs the change.
    return [...st.held.values(), ...[...st.acked.values()].filter((r) => st.held.get(r.name) !== r)];
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
      for (const [name, version] of Object.entries(req.initial_resource_versions)) st.known.set(name, version);
      const wildcardType = typeUrl === TypeUrl.Listener || typeUrl === TypeUrl.Cluster;
      if (req.resource_names_subscribe.length === 0 && wildcardType) st.wildcard = true;
    }
    for (const name of req.resource_names_subscribe) {
      if (name === '*') {
        st.wildcard = true;
        continue;
      }
      st.names.add(name);
      if (!(name in req.initial_resource_versions)) st.mustAnswer.add(name);
    }
    for (const name of req.resource_names_unsubscribe) {
      if (name === '*') st.wildcard = false;
      else st.names.delete(name);
      if (!st.isSubscribed(name)) {
        st.known.delete(name);
        st.held.delete(name);
        st.acked.delete(name);
        st.mustAnswer.delete(name);
      }
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
        for (const r of inFlight.resources) st.acked.set(r.name, r);
        for (const name of inFlight.removed) st.acked.delete(name);
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
        continue;
      }
      if (this.holdBack(st, toSend, this.types.get(TypeUrl.Cluster)?.wildcard ?? false)) continue;
      this.respond(st, toSend, removed.sort());
      this.sawAll(st, desired);
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
    const consider = (r: Resource): void => {
      const answer = st.mustAnswer.has(r.name);
      if (!answer && st.known.get(r.name) === r.version) return;
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
      for (const name of change.removed) if (st.known.has(name)) removed.push(name);
    } else {
      const subscribed = st.wildcard ? desired.values() : [...st.names].flatMap((n) => (desired.has(n) ? [desired.get(n)!] : []));
      for (const r of subscribed) consider(r);
      for (const name of st.known.keys()) if (!desired.has(name) || !st.isSubscribed(name)) removed.push(name);
    }
    // A subscribed name that does not exist is reported at once, not left to a timeout.
    for (const name of st.mustAnswer) if (!desired.has(name) && !st.known.has(name) && !removed.includes(name)) removed.push(name);
    return { toSend, removed };
  }

  /** Everything `desired` holds has been sent or needs nothing: the next look starts from it. */
  private sawAll(st: DeltaTypeState, desired: ResourceMap): void {
    st.seen = desired;
    st.subscriptionChanged = false;
  }

  private respond(st: DeltaTypeState, toSend: Resource[], removed: string[]): void {
    const nonce = this.nextNonce();
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
      const before = st.known.get(r.name);
      if (st.typeUrl === TypeUrl.Cluster && before !== r.version) changedClusters.push(r);
      st.known.set(r.name, r.version);
      st.held.set(r.name, r);
      st.mustAnswer.delete(r.name);
    }
    for (const name of removed) {
      st.known.delete(name);
      st.held.delete(name);
      st.mustAnswer.delete(name);
    }
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
