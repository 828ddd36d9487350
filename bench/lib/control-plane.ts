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
  /** Per type (PUSH_ORDER), the id of the version expected (see AckTracker.versionId). */
  versions: Uint32Array;
  count: number;
  /** Open streams whose latest ACK of every type is at the expected version. */
  done: number;
  resolve: (at: number) => void;
}

const TYPES = PUSH_ORDER.length;
const typeIndex = new Map<string, number>(PUSH_ORDER.map((t, i) => [t, i]));

/**
 * Counts streams whose latest ACK of every type is at the expected version. It runs in
 * the server's process, so B4 weighs it with the server: it keeps 17 bytes a stream
 * (the version last ACKed per type, as a small integer, in typed arrays indexed by
 * stream id) where a map of maps kept about 0.2 KB.
 */
export class AckTracker {
  /** Stream id × type → id of the version last ACKed (0: none). */
  private acked = new Uint32Array(64 * TYPES);
  /** Stream id → 1 while the stream is open. */
  private open = new Uint8Array(64);
  private openCount = 0;
  /** Stream ids are handed out in order from 1: the highest seen bounds a scan. */
  private highestId = 0;
  private readonly versionIds = new Map<string, number>();
  private expectation?: Expectation;
  nacks = 0;
  lastNack?: string;

  readonly callbacks: Partial<XdsCallbacks> = {
    onStreamOpen: (info) => {
      this.room(info.stream_id);
      this.open[info.stream_id] = 1;
      this.openCount++;
    },
    onStreamClose: (info) => {
      const id = info.stream_id;
      if (this.open[id] !== 1) return;
      const e = this.expectation;
      if (e && this.matches(id, e.versions)) e.done--;
      this.open[id] = 0;
      this.openCount--;
      this.acked.fill(0, id * TYPES, (id + 1) * TYPES);
    },
    onAck: (event) => {
      const id = event.stream_id;
      const type = typeIndex.get(event.type_url);
      if (this.open[id] !== 1 || type === undefined) return;
      const e = this.expectation;
      const before = e !== undefined && this.matches(id, e.versions);
      this.acked[id * TYPES + type] = this.versionId(event.version);
      if (!e) return;
      const after = this.matches(id, e.versions);
      if (before === after) return;
      e.done += after ? 1 : -1;
      if (e.done >= e.count) {
        this.expectation = undefined;
        e.resolve(now());
      }
    },
    onNack: (event) => {
      this.nacks++;
      this.lastNack = event.error_message;
    },
  };

  /** Open streams as the callbacks saw them. */
  get streams(): number {
    return this.openCount;
  }

  private versionId(version: string): number {
    let id = this.versionIds.get(version);
    if (id === undefined) this.versionIds.set(version, (id = this.versionIds.size + 1));
    return id;
  }

  private room(id: number): void {
    this.highestId = Math.max(this.highestId, id);
    if (id < this.open.length) return;
    const size = Math.max(id + 1, this.open.length * 2);
    const open = new Uint8Array(size);
    open.set(this.open);
    this.open = open;
    const acked = new Uint32Array(size * TYPES);
    acked.set(this.acked);
    this.acked = acked;
  }

  private matches(id: number, versions: Uint32Array): boolean {
    for (let t = 0; t < TYPES; t++) if (this.acked[id * TYPES + t] !== versions[t]) return false;
    return true;
  }

  /**
   * Resolves with the time (stats.now) at which `count` streams have ACKed every type
   * at the snapshot's version; rejects after `timeoutMs` saying how many had.
   */
  expect(snapshot: Snapshot, count: number, timeoutMs: number): Promise<number> {
    const versions = Uint32Array.from(PUSH_ORDER, (t) => this.versionId(snapshot.version(t)));
    return new Promise((resolve, reject) => {
      let done = 0;
      for (let id = 1; id <= this.highestId; id++) if (this.open[id] === 1 && this.matches(id, versions)) done++;
      if (done >= count) {
        resolve(now());
        return;
      }
      const timer = setTimeout(() => {
        const e = this.expectation;
        this.expectation = undefined;
        reject(new Error(`only ${e?.done ?? 0} of ${count} streams ACKed the snapshot within ${timeoutMs} ms (${this.openCount} open, ${this.nacks} NACKs)`));
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
