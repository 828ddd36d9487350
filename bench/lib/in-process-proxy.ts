// One proxy on a real SotwStream, in-process, with a sink in place of gRPC: for timing
// the server's own path (change → bytes handed to the transport) without a network.
// Responses are queued and answered later, as a transport would deliver them, so the
// stream is never re-entered from inside its own write.
import { createMetrics } from '../../src/admin/metrics.js';
import { silentLogger } from '../../src/log.js';
import { groupKey, proxyKeyOf } from '../../src/translate/proxy.js';
import type { SnapshotCache } from '../../src/xds/cache.js';
import { combineCallbacks } from '../../src/xds/callbacks.js';
import { loggingCallbacks } from '../../src/xds/logging-callbacks.js';
import { SotwStream } from '../../src/xds/sotw-stream.js';
import type { ResponseSink } from '../../src/xds/stream-base.js';
import { ProxyProtocol, type ProxyIdentity } from '../proxy/protocol.js';
import { readResponse, type ResponseHead } from '../proxy/wire.js';
import { now } from './stats.js';

export interface Write {
  at: number;
  head: ResponseHead;
}

export class InProcessProxy {
  readonly stream: SotwStream;
  private readonly protocol: ProxyProtocol;
  private readonly queue: Buffer[] = [];
  /** Every response written, with when (stats.now) and what. */
  readonly writes: Write[] = [];

  constructor(cache: SnapshotCache, identity: ProxyIdentity) {
    const sink: ResponseSink = {
      write: (bytes) => {
        const at = now();
        this.writes.push({ at, head: readResponse(bytes, false) });
        this.queue.push(bytes);
        return true;
      },
      onDrain: () => {},
      fail: (code, message) => {
        throw new Error(`the stream failed: ${code} ${message}`);
      },
    };
    const logger = silentLogger();
    this.stream = new SotwStream(1, 'sotw', 'in-process', sink, {
      watcher: cache,
      callbacks: combineCallbacks(loggingCallbacks(logger), createMetrics().xdsCallbacks),
      logger,
      groupOf: (node) => groupKey(proxyKeyOf(node.cluster, node.metadata)),
      controlPlaneId: 'shadowplane/bench',
      dependencyTimeoutMs: 5_000,
    });
    this.protocol = new ProxyProtocol(identity, (request) =>
      this.stream.onRequest({
        version_info: request.version_info,
        type_url: request.type_url,
        response_nonce: request.response_nonce,
        resource_names: [...request.resource_names],
        ...(request.node ? { node: request.node } : {}),
      }),
    );
  }

  start(): void {
    this.protocol.start();
    this.deliver();
  }

  /** Hands every queued response to the proxy, which ACKs it (and may get more). */
  deliver(): void {
    for (let bytes = this.queue.shift(); bytes; bytes = this.queue.shift()) this.protocol.onResponse(bytes);
  }

  get synced(): boolean {
    return this.protocol.synced;
  }
}
