// The control plane under test, in the benchmark's own process: the XdsServer and
// SnapshotCache wired as src/app.ts wires them (logging and metrics callbacks, one
// group per proxy key), plus an ACK tracker that says when every stream has
// acknowledged a given set of versions. Timing is taken where the ACKs arrive.
import { createMetrics } from '../../src/admin/metrics.js';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino } from 'pino';
import { groupKey, proxyKeyOf } from '../../src/translate/proxy.js';
import { SnapshotCache, type Snapshot } from '../../src/xds/cache.js';
import { combineCallbacks, type XdsCallbacks } from '../../src/xds/callbacks.js';
import { loggingCallbacks } from '../../src/xds/logging-callbacks.js';
import { PUSH_ORDER } from '../../src/xds/resources.js';
import { XdsServer } from '../../src/xds/server.js';
import { now } from './stats.js';
import type { Fleet, OpenOptions } from './fleet.js';

interface Expectation {
  versions: ReadonlyMap<string, string>;
  count: number;
  done: Set<number>;
  resolve: (at: number) => void;
}

/** Counts streams whose latest ACK of every type is at the expected version. */
export class AckTracker {
  private readonly acked = new Map<number, Map<string, string>>();
  private expectation?: Expectation;
  nacks = 0;
  lastNack?: string;

  readonly callbacks: Partial<XdsCallbacks> = {
    onStreamOpen: (info) => {
      this.acked.set(info.stream_id, new Map());
    },
    onStreamClose: (info) => {
      this.acked.delete(info.stream_id);
    },
    onAck: (event) => {
      const versions = this.acked.get(event.stream_id);
      if (!versions) return;
      versions.set(event.type_url, event.version);
      const e = this.expectation;
      if (e && !e.done.has(event.stream_id) && this.matches(versions, e.versions)) {
        e.done.add(event.stream_id);
        if (e.done.size === e.count) {
          this.expectation = undefined;
          e.resolve(now());
        }
      }
    },
    onNack: (event) => {
      this.nacks++;
      this.lastNack = event.error_message;
    },
  };

  private matches(acked: ReadonlyMap<string, string>, expected: ReadonlyMap<string, string>): boolean {
    for (const [type, version] of expected) if (acked.get(type) !== version) return false;
    return true;
  }

  /** Open streams as the callbacks saw them. */
  get streams(): number {
    return this.acked.size;
  }

  /**
   * Resolves with the time (stats.now) at which `count` streams have ACKed every type
   * at the snapshot's version; rejects after `timeoutMs` saying how many had.
   */
  expect(snapshot: Snapshot, count: number, timeoutMs: number): Promise<number> {
    const versions = new Map(PUSH_ORDER.map((t) => [t, snapshot.version(t)]));
    return new Promise((resolve, reject) => {
      const done = new Set<number>();
      for (const [id, acked] of this.acked) if (this.matches(acked, versions)) done.add(id);
      if (done.size >= count) {
        resolve(now());
        return;
      }
      const timer = setTimeout(() => {
        const e = this.expectation;
        this.expectation = undefined;
        reject(new Error(`only ${e?.done.size ?? 0} of ${count} streams ACKed the snapshot within ${timeoutMs} ms (${this.acked.size} open, ${this.nacks} NACKs)`));
      }, timeoutMs);
      this.expectation = {
        versions,
        count,
        done,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      };
    });
  }
}

export interface BenchControlPlane {
  cache: SnapshotCache;
  server: XdsServer;
  tracker: AckTracker;
  port: number;
  /** Warnings and errors the server logged, e.g. routes sent before their clusters were ACKed. */
  complaints(): { count: number; first?: string; file: string };
  stop(): Promise<void>;
}

/**
 * A logger at `warn` whose lines go to `file` and are counted: a benchmark that makes
 * the server complain says so in its notes, without thousands of lines on screen.
 */
function countingLogger(file: string) {
  mkdirSync(dirname(file), { recursive: true });
  const seen = { count: 0, first: undefined as string | undefined };
  const logger = pino(
    {
      level: 'warn',
      base: { service: 'shadowplane' },
      hooks: {
        logMethod(args, method) {
          seen.count++;
          seen.first ??= args.map((a) => (typeof a === 'string' ? a : '')).join(' ').trim();
          method.apply(this, args);
        },
      },
    },
    pino.destination({ dest: file, sync: false }),
  );
  return { logger, seen };
}

export async function startControlPlane(logFile: string, cache = new SnapshotCache()): Promise<BenchControlPlane> {
  const { logger: root, seen } = countingLogger(logFile);
  const logger = root.child({ component: 'xds' });
  const tracker = new AckTracker();
  const metrics = createMetrics();
  const server = new XdsServer({
    address: '127.0.0.1:0',
    watcher: cache,
    callbacks: combineCallbacks(loggingCallbacks(logger), metrics.xdsCallbacks, tracker.callbacks),
    logger,
    groupOf: (node) => groupKey(proxyKeyOf(node.cluster, node.metadata)),
    controlPlaneId: 'shadowplane/bench',
  });
  const port = await server.start();
  return {
    cache,
    server,
    tracker,
    port,
    complaints: () => ({ ...seen, file: logFile }),
    stop: async () => {
      await server.stop(500);
      root.flush();
    },
  };
}

/** Polls `condition` every `intervalMs` until true; throws after `timeoutMs` with `what`. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs: number, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Opens `total` streams in batches of `batch`, each batch left to ACK the group's
 * snapshot before the next starts: thousands of proxies connecting at once is B5's
 * subject, not a way to set up the others. Returns the time taken, in ms.
 */
export async function connectFleet(cp: BenchControlPlane, fleet: Fleet, group: string, total: number, batch: number, options: OpenOptions): Promise<number> {
  const snapshot = cp.cache.get(group);
  if (!snapshot) throw new Error(`no snapshot for group ${group}`);
  const start = now();
  const already = cp.tracker.streams;
  for (let done = 0; done < total; done += batch) {
    const n = Math.min(batch, total - done);
    const synced = cp.tracker.expect(snapshot, already + done + n, 120_000);
    await fleet.open(n, options);
    try {
      await synced;
    } catch (err) {
      const s = await fleet.stats();
      throw new Error(`${err instanceof Error ? err.message : String(err)}; proxies say: ${JSON.stringify(s)}`, { cause: err });
    }
  }
  return now() - start;
}
