// The parent's side of the simulated proxies: a few child processes (forked from the
// compiled bench/proxy/ads-fleet.js), each holding many ADS streams. Streams are spread
// over the processes evenly; every wait here has a deadline.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command, Event, FleetStats, OpenCommand, ProxyClient } from '../proxy/messages.js';

const script = fileURLToPath(new URL('../proxy/ads-fleet.js', import.meta.url));

export type OpenOptions = Omit<OpenCommand, 'cmd' | 'count' | 'idPrefix'>;

/**
 * The proxies' gRPC client, from BENCH_PROXY_CLIENT: `h2` (bench/proxy/h2-stream.ts,
 * the default) or `grpc-js`.
 */
export function proxyClient(env: NodeJS.ProcessEnv = process.env): ProxyClient {
  const value = env.BENCH_PROXY_CLIENT ?? 'h2';
  if (value !== 'h2' && value !== 'grpc-js') throw new Error(`BENCH_PROXY_CLIENT: "${value}" is neither "h2" nor "grpc-js"`);
  return value;
}

/** For the notes: which client the proxies ran. */
export function proxyClientNote(): string {
  return proxyClient() === 'h2'
    ? "the proxies' gRPC client: the protocol on node:http2 (bench/proxy/h2-stream.ts; BENCH_PROXY_CLIENT=grpc-js for grpc-js's)"
    : "the proxies' gRPC client: @grpc/grpc-js (BENCH_PROXY_CLIENT=grpc-js)";
}

/**
 * The proxy processes' own Node flags. A process of 250 proxies lives on a heap of 15
 * to 25 MB, and V8 kept its old generation's limit just above that: `--trace-gc` counted
 * about 7 full collections per process per B5 storm, 3.1 s of pauses over a run of
 * four processes. A first limit of 256 MB leaves them to the young generation's
 * collector; in interleaved B5 runs the proxies' CPU per storm fell from 2.7 and 2.9 s
 * to 1.8 s. (The server runs with the same flag for the same reason: README, "Node
 * flags".)
 */
const PROXY_NODE_FLAGS = ['--initial-old-space-size=256'];

class Member {
  private readonly waiters: { evt: Event['evt']; resolve: (e: Event) => void }[] = [];
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    child.on('message', (event: Event) => {
      const i = this.waiters.findIndex((w) => w.evt === event.evt);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(event);
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  next<E extends Event['evt']>(evt: E, timeoutMs: number): Promise<Extract<Event, { evt: E }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`proxy process ${this.child.pid}: no "${evt}" within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        evt,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e as Extract<Event, { evt: E }>);
        },
      });
    });
  }

  send(command: Command): void {
    this.child.send(command);
  }
}

export class Fleet {
  private opens = 0;

  private constructor(private readonly members: Member[]) {}

  /** Starts `processes` proxy processes and waits until each has loaded. */
  static async start(processes: number, maxOldSpaceMb = 2048): Promise<Fleet> {
    const members = Array.from({ length: processes }, () => {
      // execArgv is set, not inherited: a profiled benchmark must not profile its proxies.
      const child = fork(script, [], { execArgv: [`--max-old-space-size=${maxOldSpaceMb}`, ...PROXY_NODE_FLAGS], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      return new Member(child);
    });
    await Promise.all(members.map((m) => m.next('ready', 30_000)));
    return new Fleet(members);
  }

  get size(): number {
    return this.members.length;
  }

  /** Opens `total` streams across the processes; resolves once every one has been started. */
  async open(total: number, options: OpenOptions, timeoutMs = 120_000): Promise<void> {
    const n = this.members.length;
    const tag = ++this.opens;
    const opened = this.members.map((m, i) => {
      const count = Math.floor(total / n) + (i < total % n ? 1 : 0);
      const done = m.next('opened', timeoutMs);
      m.send({ cmd: 'open', count, idPrefix: `proxy-${tag}-${i}`, client: proxyClient(), ...options });
      return done;
    });
    await Promise.all(opened);
  }

  /** Cancels every stream and closes every channel. */
  async close(timeoutMs = 60_000): Promise<void> {
    await Promise.all(
      this.members.map((m) => {
        const done = m.next('closed', timeoutMs);
        m.send({ cmd: 'close' });
        return done;
      }),
    );
  }

  /** The processes' counters, summed (rssBytes: the sum of their RSS; cpuMs: of their CPU time; largest: the largest of each type). */
  async stats(timeoutMs = 30_000): Promise<FleetStats> {
    const all = await Promise.all(
      this.members.map((m) => {
        const reply = m.next('stats', timeoutMs);
        m.send({ cmd: 'stats' });
        return reply;
      }),
    );
    const sum: FleetStats = { open: 0, synced: 0, responses: 0, responseBytes: 0, largest: {}, acks: 0, failed: 0, rssBytes: 0, cpuMs: 0 };
    for (const { stats } of all) {
      for (const k of ['open', 'synced', 'responses', 'responseBytes', 'acks', 'failed', 'rssBytes', 'cpuMs'] as const) sum[k] += stats[k];
      for (const [typeUrl, bytes] of Object.entries(stats.largest)) sum.largest[typeUrl] = Math.max(sum.largest[typeUrl] ?? 0, bytes);
      sum.lastError ??= stats.lastError;
    }
    return sum;
  }

  async stop(): Promise<void> {
    for (const m of this.members) {
      if (m.child.connected) m.send({ cmd: 'exit' });
    }
    const killTimer = setTimeout(() => this.members.forEach((m) => m.child.kill('SIGKILL')), 10_000);
    await Promise.all(this.members.map((m) => m.exited));
    clearTimeout(killTimer);
  }
}
