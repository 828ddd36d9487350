// What the SotW and delta loops share: the node check on the first request, the
// group's snapshot watch, flow control, and the gate timer.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { ConfigWatcher, Snapshot, SnapshotWatcher } from './cache.js';
import type { StreamKind, XdsCallbacks } from './callbacks.js';
import type { Node } from './wire.js';
import type { Logger } from '../log.js';
import { anyUnmetCluster, unmetClusters, type ClientView } from './ordering.js';
import type { Resource } from './resource.js';
import { TypeUrl, type ResourceTypeUrl } from './resources.js';

/** Where a stream's responses go; the gRPC call in production, a fake in tests. */
export interface ResponseSink {
  /** Returns false when the transport's buffer is full: wait for `onDrain`. */
  write(bytes: Buffer): boolean;
  onDrain(listener: () => void): void;
  /** Ends the stream with an error status. */
  fail(code: GrpcStatus, message: string): void;
}

export interface StreamOptions {
  watcher: ConfigWatcher;
  callbacks: XdsCallbacks;
  logger: Logger;
  /** Which snapshot a proxy gets; proxies of one group share one snapshot. */
  groupOf(node: Node): string;
  controlPlaneId: string;
  /**
   * How long a route or listener waits for the clusters it needs before it is sent
   * anyway, so a proxy that never acknowledges cannot hold its routes back forever.
   */
  dependencyTimeoutMs: number;
  /**
   * At most this many streams are pumped at once in one turn of the event loop; the
   * rest are pumped in later turns. Unset, every pump runs at once (tests drive
   * streams synchronously).
   */
  pumpsPerTurn?: number;
}

/** Shared by every stream of the process: they share one event loop. */
const turn = {
  pumped: 0,
  due: new Set<StreamBase>(),
  next: undefined as NodeJS.Immediate | undefined,
};

function nextTurn(): void {
  turn.next = undefined;
  turn.pumped = 0;
  for (const stream of turn.due) {
    if (turn.pumped >= stream.pumpsPerTurn) break;
    turn.due.delete(stream);
    turn.pumped += 1;
    stream.pumpDue();
  }
  if (turn.due.size > 0 || turn.pumped > 0) turn.next = setImmediate(nextTurn);
}

/**
 * What proxies of one kind say alike in their node (all but its id), and the group it
 * puts them in: one copy for all their streams, so each stream keeps only its id.
 */
interface NodeKind {
  readonly node: Omit<Node, 'id'>;
  readonly group: string;
}
const nodeKinds = new Map<string, NodeKind>();
const MAX_NODE_KINDS = 256;

function kindOf(node: Node, group: string): NodeKind {
  const key = JSON.stringify([group, node.cluster, node.metadata, node.user_agent_name, node.user_agent_version]);
  let kind = nodeKinds.get(key);
  if (!kind) {
    const { id: _, ...rest } = node;
    nodeKinds.set(key, (kind = { node: rest, group }));
    if (nodeKinds.size > MAX_NODE_KINDS) nodeKinds.delete(nodeKinds.keys().next().value!); // holders keep theirs
  }
  return kind;
}

export abstract class StreamBase implements ClientView, SnapshotWatcher {
  /** The node's id, and its kind: all it says but its id, shared by the streams of its kind (set together, by the first request). */
  private clientId = '';
  private nodeKind?: NodeKind;
  protected snapshot?: Snapshot;
  protected closed = false;
  private writable = true;
  private gateTimer?: NodeJS.Timeout;

  constructor(
    readonly id: number,
    readonly kind: StreamKind,
    readonly peer: string,
    protected readonly sink: ResponseSink,
    protected readonly options: StreamOptions,
  ) {
    options.callbacks.onStreamOpen({ stream_id: id, kind, peer });
  }

  get nodeId(): string {
    return this.clientId;
  }

  /** The node, made when asked for (CSDS): a stream keeps only its id and its kind. */
  get nodeInfo(): Node | undefined {
    return this.nodeKind && { id: this.clientId, ...this.nodeKind.node };
  }

  /** Its node's `user_agent_name` (`envoy` for Envoy). */
  protected get userAgentName(): string | undefined {
    return this.nodeKind?.node.user_agent_name;
  }

  /** The group whose snapshots the stream gets; '' before its first request. */
  protected get group(): string {
    return this.nodeKind?.group ?? '';
  }

  /** Checks the node of a request. Returns false (and ends the stream) when it is wrong. */
  protected acceptNode(node: Node | undefined): boolean {
    if (!this.nodeKind) {
      if (!node?.id) {
        this.fail(GrpcStatus.INVALID_ARGUMENT, 'the first request on a stream must carry node.id');
        return false;
      }
      let group: string;
      try {
        group = this.options.groupOf(node);
      } catch (err) {
        // A node that says nothing we can serve (a bad role or port in its metadata).
        this.fail(GrpcStatus.INVALID_ARGUMENT, err instanceof Error ? err.message : String(err));
        return false;
      }
      this.clientId = node.id;
      this.nodeKind = kindOf(node, group);
      this.snapshot = this.options.watcher.get(this.group);
      this.options.watcher.watch(this.group, this);
      return true;
    }
    if (node?.id && node.id !== this.clientId) {
      this.fail(GrpcStatus.INVALID_ARGUMENT, `node.id changed on the stream from "${this.clientId}" to "${node.id}"`);
      return false;
    }
    return true;
  }

  /** A new snapshot of the stream's group (the cache calls this while the stream watches). */
  onSnapshot(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.pump();
  }

  abstract held(typeUrl: ResourceTypeUrl): Iterable<Resource>;
  abstract acked(typeUrl: ResourceTypeUrl): ReadonlyMap<string, Resource>;

  /** Sends what is due, in push order, while the transport takes it. */
  protected abstract pumpOnce(): void;

  /**
   * Sends what is due. With `pumpsPerTurn` set (the server sets it), at once while this
   * turn of the event loop has pumped fewer streams than that, otherwise in a later turn
   * (each stream once, however many requests it sent meanwhile): a thousand proxies
   * reconnecting together then cannot hold the event loop for all their responses.
   */
  protected pump(): void {
    if (this.closed || !this.writable || !this.nodeKind) return;
    const budget = this.options.pumpsPerTurn;
    if (budget === undefined) {
      this.pumpOnce();
      return;
    }
    if (turn.pumped < budget && turn.due.size === 0) {
      turn.pumped += 1;
      turn.next ??= setImmediate(nextTurn);
      this.pumpOnce();
      return;
    }
    turn.due.add(this);
    turn.next ??= setImmediate(nextTurn);
  }

  get pumpsPerTurn(): number {
    return this.options.pumpsPerTurn ?? Infinity;
  }

  /** Called for a stream whose pump was put off to this turn. */
  pumpDue(): void {
    if (this.closed || !this.writable || !this.nodeKind) return;
    this.pumpOnce();
  }

  /** Writes one response; stops the pump until the transport drains if it is full. */
  protected send(bytes: Buffer): boolean {
    if (this.sink.write(bytes)) return true;
    this.writable = false;
    this.sink.onDrain(() => {
      this.writable = true;
      this.pump();
    });
    return false;
  }

  protected get canWrite(): boolean {
    return this.writable && !this.closed;
  }

  /**
   * Whether routes or listeners about to go out (`pending`) must wait for the clusters
   * they need (see ordering.ts). Only for a client that subscribes to every cluster: a
   * client that asks for clusters by name (gRPC) learns of them from these very routes.
   * The wait has a deadline, so a proxy that never acknowledges is not held forever.
   */
  protected holdBack(held: { typeUrl: ResourceTypeUrl; heldSince?: number }, pending: Resource[], clientTakesAllClusters: boolean): boolean {
    if (held.typeUrl !== TypeUrl.Listener && held.typeUrl !== TypeUrl.RouteConfiguration) return false;
    if (!clientTakesAllClusters || !this.snapshot) return false;
    // Most calls come while a proxy is still taking its clusters: say yes fast, list only to warn.
    if (!anyUnmetCluster(pending, this.snapshot, this)) return false;
    const now = Date.now();
    held.heldSince ??= now;
    const waited = now - held.heldSince;
    if (waited < this.options.dependencyTimeoutMs) {
      this.armGate(this.options.dependencyTimeoutMs - waited);
      return true;
    }
    this.options.logger.warn(
      { stream_id: this.id, node_id: this.nodeId, type_url: held.typeUrl, clusters: unmetClusters(pending, this.snapshot, this), waited_ms: waited },
      'sending without acknowledgement of the clusters it needs',
    );
    return false;
  }

  /** Re-runs the pump when held-back resources would be sent anyway. */
  protected armGate(delayMs: number): void {
    if (this.gateTimer) return;
    this.gateTimer = setTimeout(() => {
      this.gateTimer = undefined;
      this.pump();
    }, delayMs);
    this.gateTimer.unref();
  }

  /**
   * Stops the gate timer once no type of `states` waits for clusters: most streams wait
   * only during their first sync, and the timer (with the closure it holds) would
   * otherwise outlive the wait by up to the whole deadline, on every idle stream.
   */
  protected settleGate(states: Iterable<{ heldSince?: number } | undefined>): void {
    if (!this.gateTimer || !this.canWrite) return;
    for (const st of states) if (st?.heldSince !== undefined) return;
    clearTimeout(this.gateTimer);
    this.gateTimer = undefined;
  }

  protected fail(code: GrpcStatus, message: string): void {
    if (this.closed) return;
    this.options.logger.warn({ stream_id: this.id, node_id: this.nodeId, code, reason: message }, 'ending xDS stream');
    this.sink.fail(code, message);
    this.close(message);
  }

  /** Releases the watch and timers. Idempotent. */
  close(reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    turn.due.delete(this);
    if (this.nodeKind) this.options.watcher.unwatch(this.group, this);
    if (this.gateTimer) clearTimeout(this.gateTimer);
    this.options.callbacks.onStreamClose({ stream_id: this.id, kind: this.kind, peer: this.peer, node_id: this.nodeKind ? this.clientId : undefined, reason });
  }
}
