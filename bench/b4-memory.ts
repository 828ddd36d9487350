// B4 memory: what an idle connected stream costs the server, with 10,000 services.
//
// Per stream is a slope, not a ratio. Each run is a fresh process: it publishes the
// 10,000-service snapshot, then connects simulated proxies (own processes, own
// connections, ACKing everything) in steps, lets each step go idle, collects garbage
// and samples its memory. The first step pays once for what does not grow with the
// streams: each stream's initial sync is about 6 MB, which grpc-js copies into framed
// buffers and nghttp2 buffers again, and what the allocator keeps of that lands in the
// first step. The slope from the first step on is what one more idle stream costs.
//
// What is measured is live memory: the JS heap in use plus glibc's in-use bytes
// (bench/lib/malloc-stats.ts, read through gdb). RSS is sampled too and reported, but
// it also counts freed memory the allocator keeps, which moves by megabytes at random
// steps: over 120 streams its slope scattered from 3 to 83 KB per stream on one
// commit, while live memory's scatters by a few KB. Without gdb the figure
// falls back to the RSS slope and says so.
//
// The floor is the same method on a bare @grpc/grpc-js server (bench/lib/bare-grpc.ts)
// with the xDS server's options that holds each call and sends it responses of the
// sizes the xDS runs' proxies received: what the transport alone costs per idle stream
// that has carried the same sync, under which no xDS change can go.
//
// The measuring processes hold glibc's mmap threshold fixed (see measuringEnv), so
// that RSS shows what the streams hold rather than where the allocator's high-water
// mark happened to land; the notes say so.
//
// 10,000 streams that each take 6 MB are beyond a benchmark's minutes on two cores, so
// the 10,000-stream figure is the RSS measured at the largest step plus the rest of
// the streams at the measured slope, and it says which part is which.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runBenchmark, progress } from './lib/report.js';
import { benchModel } from './lib/model.js';
import { AppPipeline, EDGE_GROUP, EDGE_KEY, EDGE_METADATA, EDGE_ROUTE_CONFIG } from './lib/pipeline.js';
import { connectFleet, startControlPlane, waitUntil } from './lib/control-plane.js';
import { Fleet, proxyClientNote } from './lib/fleet.js';
import { heapAndExternal, heapData, idleSample, live, parseSteps, slope, type MemorySample } from './lib/memory-steps.js';
import { mallocUnavailable } from './lib/malloc-stats.js';
import { BareGrpcServer, type SyncResponse } from './lib/bare-grpc.js';
import { PUSH_ORDER } from '../src/xds/resources.js';
import { outPath } from './lib/paths.js';
import { serveNodeFlags } from './lib/node-flags.js';
import { median } from './lib/stats.js';
import { streamStateBytes, type StreamKind } from './lib/stream-state.js';

const SERVICES = 10_000;
/**
 * Streams after each step; the slope is fitted from the first step on (the growth from
 * 0 to it is left out). Over 240 streams the heap's part of a slope scatters by about
 * half what it did over 120 (run to run, 0.6 KB a stream against 1.3 to 1.7 KB).
 */
const STEPS = parseSteps(process.env.BENCH_B4_STEPS ?? '40,80,120,160,200,240,280');
/** The floor's steps: its streams carry the same sync, so they take as long. */
const FLOOR_STEPS = parseSteps(process.env.BENCH_B4_FLOOR_STEPS ?? '40,120,200,280');
const PROJECTED_STREAMS = 10_000;
const WARMUPS = 1;
const RUNS = 5;
const PROCESSES = 2;
const QUIET_MS = 1000;
/** Streams opened in-process per run when measuring a stream's own state (after one that pays for what is made once). */
const STATE_STREAMS = 32;
const KB = 1024;
const MB = 2 ** 20;

interface RunResult {
  samples: MemorySample[];
  /** Time to connect and sync each step's new streams, in ms. */
  stepMs: number[];
  complaints: number;
  failed: number;
  /** The largest response of each type the proxies received, in push order: one stream's sync. */
  sync: SyncResponse[];
}

/**
 * The measuring processes' environment. glibc raises its mmap threshold to the size of
 * the largest block freed so far (up to 32 MB), so after the first sync its multi-MB
 * buffers come from the heap, and what they leave there is kept: RSS then grows in
 * jumps of tens of MB at whatever step a burst of syncs happens to fragment it, which
 * swamps a slope of tens of KB per stream. Holding the threshold at glibc's own
 * starting value (128 KiB) gives large buffers back when they are freed, so RSS follows
 * what the streams hold. Set any MALLOC_* variable (or LD_PRELOAD, GLIBC_TUNABLES, or
 * BENCH_B4_ALLOCATOR=default) to measure something else; the notes say which it was.
 */
const isAllocatorSetting = (k: string): boolean => k.startsWith('MALLOC_') || k === 'LD_PRELOAD' || k === 'GLIBC_TUNABLES';

function measuringEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_RESULT_FILE: '' };
  return setsAllocator() ? { ...env, MALLOC_MMAP_THRESHOLD_: String(128 * 1024) } : env;
}

/** Whether the benchmark sets the allocator: the environment sets none, and no one asked for glibc's defaults. */
function setsAllocator(): boolean {
  return !Object.keys(process.env).some(isAllocatorSetting) && process.env.BENCH_B4_ALLOCATOR !== 'default';
}

function allocator(): string {
  const set = Object.entries(measuringEnv()).filter(([k]) => isAllocatorSetting(k));
  if (set.length === 0) return 'glibc malloc with its defaults (dynamic mmap threshold): RSS includes freed sync buffers glibc keeps';
  return `${set.map(([k, v]) => `${k}=${v ?? ''}`).join(' ')}${setsAllocator() ? ' (set by the benchmark: large buffers go back to the OS when freed; BENCH_B4_ALLOCATOR=default measures with glibc defaults)' : ' (from the environment)'}`;
}

const kb = (bytes: number): string => `${(bytes / KB).toFixed(1)} KB`;
const mb = (bytes: number): string => `${(bytes / MB).toFixed(bytes < 10 * MB ? 1 : 0)} MB`;

/** One xDS run in this (fresh) process: the 10,000-service snapshot, streams in steps. */
async function measureXds(steps: readonly number[]): Promise<RunResult> {
  const cp = await startControlPlane(outPath('b4-server.log'));
  const pipeline = new AppPipeline(cp.cache);
  pipeline.addGroup(EDGE_KEY);
  pipeline.rebuild(benchModel({ services: SERVICES }));
  const fleet = await Fleet.start(PROCESSES, 4096);
  try {
    const samples = [await idleSample(0, QUIET_MS, { malloc: true })];
    const stepMs: number[] = [];
    for (const target of steps) {
      const more = target - cp.tracker.streams;
      stepMs.push(
        await connectFleet(cp, fleet, EDGE_GROUP, more, 20, { port: cp.port, spreadMs: 0, metadata: EDGE_METADATA, routeConfigs: [EDGE_ROUTE_CONFIG] }),
      );
      samples.push(await idleSample(cp.server.streams().length, QUIET_MS, { malloc: true }));
    }
    const { failed, largest } = await fleet.stats();
    const sync = PUSH_ORDER.filter((typeUrl) => largest[typeUrl] !== undefined).map((typeUrl) => ({ typeUrl, bytes: largest[typeUrl]! }));
    return { samples, stepMs, complaints: cp.complaints().count, failed, sync };
  } finally {
    await fleet.close().catch(() => {});
    await fleet.stop();
    await cp.stop();
  }
}

/** One floor run: a bare gRPC server holding calls and sending `sync`, the same client fleet, the same steps method. */
async function measureFloor(steps: readonly number[], sync: SyncResponse[]): Promise<RunResult> {
  const server = new BareGrpcServer(sync);
  const port = await server.start();
  const fleet = await Fleet.start(PROCESSES, 4096);
  try {
    const samples = [await idleSample(0, QUIET_MS, { malloc: true })];
    const stepMs: number[] = [];
    for (const target of steps) {
      const start = performance.now();
      // In batches of 20, as the xDS runs connect theirs: the sync's transfers overlap alike.
      while (server.held < target) {
        const next = Math.min(target, server.held + 20);
        await fleet.open(next - server.held, { port, spreadMs: 0, metadata: EDGE_METADATA, routeConfigs: [EDGE_ROUTE_CONFIG] });
        // Every proxy sends its CDS and LDS requests first thing; with a sync, it has ACKed every type.
        const settled = async (): Promise<boolean> =>
          server.held === next && server.requests >= 2 * next && (sync.length === 0 || (await fleet.stats()).synced >= next);
        await waitUntil(settled, `${next} held calls`, 120_000, 50);
      }
      stepMs.push(performance.now() - start);
      samples.push(await idleSample(server.held, QUIET_MS, { malloc: true }));
    }
    const { failed } = await fleet.stats();
    return { samples, stepMs, complaints: 0, failed, sync };
  } finally {
    await fleet.close().catch(() => {});
    await fleet.stop();
    await server.stop();
  }
}

type Kind = 'xds' | 'floor';

/** This file run with `args` in a fresh measuring process: what it sends back. */
function inFreshProcess<T>(args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), args, { execArgv: ['--expose-gc', ...serveNodeFlags()], stdio: 'inherit', env: measuringEnv() });
    let result: { value: T } | undefined;
    child.on('message', (m: T) => (result = { value: m }));
    child.on('exit', (code) => (result ? resolve(result.value) : reject(new Error(`the measuring process exited with ${String(code)} and no result`))));
  });
}

const runInFreshProcess = (kind: Kind, warmup: boolean, sync: SyncResponse[]): Promise<RunResult> =>
  inFreshProcess(['--measure', kind, ...(warmup ? ['--warm-up'] : []), '--sync', JSON.stringify(sync)]);

/** One measurement of a stream's own state (bench/lib/stream-state.ts), in a fresh process: bytes per stream. */
const stateInFreshProcess = (kind: StreamKind): Promise<number> => inFreshProcess(['--state', kind]);

async function stateRuns(kind: StreamKind): Promise<number[]> {
  const measured: number[] = [];
  for (let run = 0; run < WARMUPS + RUNS; run++) {
    const bytes = await stateInFreshProcess(kind);
    progress(`${kind} stream state ${run < WARMUPS ? `warm-up ${run + 1}/${WARMUPS}` : `run ${run + 1 - WARMUPS}/${RUNS}`}: ${kb(bytes)} per stream`);
    if (run >= WARMUPS) measured.push(bytes);
  }
  return measured;
}

/** Per-stream slopes of one run, fitted from the first step on (bytes per stream; live is NaN without in-use bytes). */
function slopes(r: RunResult): {
  live: number;
  malloc: number;
  heapUsed: number;
  heapData: number;
  code: number;
  rss: number;
  anon: number;
  file: number;
  heap: number;
  committed: number;
  firstRss: number;
  scatter: number;
} {
  const later = r.samples.slice(1);
  const [base, first] = [r.samples[0]!, r.samples[1]!];
  const rss = slope(later, (s) => s.rss);
  const mean = (f: (s: MemorySample) => number): number => later.reduce((a, s) => a + f(s), 0) / later.length;
  const [mx, my] = [mean((s) => s.streams), mean((s) => s.rss)];
  return {
    live: slope(later, live),
    malloc: slope(later, (s) => s.mallocInUse ?? Number.NaN),
    heapUsed: slope(later, (s) => s.heapUsed),
    heapData: slope(later, heapData),
    code: slope(later, (s) => s.code),
    rss,
    heap: slope(later, heapAndExternal),
    committed: slope(later, (s) => s.heapTotal),
    anon: slope(later, (s) => s.rssAnon),
    file: slope(later, (s) => s.rssFile),
    // What the old method reported: the first step's growth over its streams.
    firstRss: (first.rss - base.rss) / first.streams,
    // How far RSS strays from the fitted line: the noise the RSS slope is read through.
    scatter: Math.max(...later.map((s) => Math.abs(s.rss - (my + rss * (s.streams - mx))))),
  };
}

async function runs(kind: Kind, steps: readonly number[], sync: SyncResponse[]): Promise<RunResult[]> {
  const measured: RunResult[] = [];
  for (let run = 0; run < WARMUPS + RUNS; run++) {
    const warmup = run < WARMUPS;
    const r = await runInFreshProcess(kind, warmup, sync);
    const path = r.samples.map((x) => `${x.streams}: ${mb(x.rss)}`).join(' → ');
    const took = `${r.stepMs.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s`;
    if (warmup) {
      progress(`${kind} warm-up ${run + 1}/${WARMUPS} (first step only): ${took}; RSS ${path}`);
      continue;
    }
    const s = slopes(r);
    progress(
      `${kind} run ${run + 1 - WARMUPS}/${RUNS}: steps to ${steps.join(', ')} streams took ${took}; RSS ${path}; per stream: live ${kb(s.live)} (JS heap ${kb(s.heapData)} and compiled code ${kb(s.code)}, malloc in use ${kb(s.malloc)}), RSS ${kb(s.rss)} (${kb(s.anon)} anonymous, ${kb(s.file)} file-backed)`,
    );
    measured.push(r);
  }
  return measured;
}

const syncText = (sync: readonly SyncResponse[]): string => sync.map((r) => `${r.typeUrl.split('.').at(-1)} ${mb(r.bytes)}`).join(', ');

if (process.argv.includes('--state')) {
  const kind = process.argv[process.argv.indexOf('--state') + 1] as StreamKind;
  const pipeline = new AppPipeline();
  pipeline.addGroup(EDGE_KEY);
  pipeline.rebuild(benchModel({ services: SERVICES }));
  process.send?.(await streamStateBytes(pipeline.cache, EDGE_GROUP, kind, STATE_STREAMS));
} else if (process.argv.includes('--measure')) {
  const kind = process.argv[process.argv.indexOf('--measure') + 1] as Kind;
  const at = process.argv.indexOf('--sync');
  const sync = (at < 0 ? [] : JSON.parse(process.argv[at + 1] ?? '[]')) as SyncResponse[];
  // A warm-up run takes only the first step: nothing carries over to the next fresh
  // process but the OS's caches, and the suite's minutes are better spent measuring.
  const steps = kind === 'floor' ? FLOOR_STEPS : STEPS;
  const mine = process.argv.includes('--warm-up') ? steps.slice(0, 1) : steps;
  process.send?.(await (kind === 'floor' ? measureFloor(mine, sync) : measureXds(mine)));
} else {
  await runBenchmark('B4', 'memory', async (emit) => {
    const xds = await runs('xds', STEPS, []);
    const xs = xds.map(slopes);
    // The floor's streams carry what the xDS runs' proxies received.
    const sync = xds.at(-1)!.sync;
    const floor = await runs('floor', FLOOR_STEPS, sync);
    const fs = floor.map(slopes);
    const med = <T>(rs: readonly T[], f: (r: T) => number): number => median(rs.map(f));
    const last = STEPS.at(-1)!;
    const lastIndex = STEPS.length;
    const steps = `${STEPS.join(' → ')}`;
    const failed = xds.reduce((n, r) => n + r.failed, 0);
    // Live memory where gdb could read the allocator in every run; the RSS slope where not.
    const measured = xs.every((s) => Number.isFinite(s.live)) && fs.every((s) => Number.isFinite(s.live));
    const why = measured ? '' : `; live memory not measured (${mallocUnavailable() ?? 'in-use bytes missing in a run'}), so this is the RSS slope, which scatters by tens of KB from run to run`;
    const perStream = (s: ReturnType<typeof slopes>): number => (measured ? s.live : s.rss);
    const ruler = measured ? "live memory (JS heap used, less V8's compiled code, + glibc malloc in use)" : 'RSS';
    const sizes = `(samples ${xs.map((s) => (perStream(s) / KB).toFixed(1)).join(', ')})`;
    emit({
      name: `B4 memory: per idle connected SotW stream, ${SERVICES.toLocaleString('en-US')} services`,
      measures: `slope of the server's ${ruler} over idle, fully ACKed streams in steps of 0 → ${steps}, fitted from ${STEPS[0]} on (the growth of the first step left out), one fresh process per run${why}`,
      unit: 'KB',
      targets: [{ stat: 'median', limit: 40 }],
      samples: xs.map((s) => perStream(s) / KB),
      warmups: WARMUPS,
      notes: [
        ...(measured
          ? [
              `of it, JS heap used ${med(xs, (s) => s.heapData / KB).toFixed(1)} KB and malloc in use ${med(xs, (s) => s.malloc / KB).toFixed(1)} KB per stream (the HTTP/2 session's nghttp2 memory is most of the second) ${sizes}`,
              `left out: V8's compiled code and bytecode, ${med(xs, (s) => s.code / KB).toFixed(1)} KB per stream on the same slope (samples ${xs.map((s) => (s.code / KB).toFixed(1)).join(', ')}), which is what the JIT compiled or flushed during the steps, not what the streams hold`,
              `against the floor (same method, a bare grpc-js stream that carried the same sync): ${med(fs, (s) => s.live / KB).toFixed(1)} KB of it is the transport's, ${(med(xs, (s) => s.live) / KB - med(fs, (s) => s.live) / KB).toFixed(1)} KB comes with the xDS server (its stream state, grpc-js's decoding of real requests)`,
            ]
          : []),
        `RSS, same slope: ${med(xs, (s) => s.rss / KB).toFixed(1)} KB per stream (samples ${xs.map((s) => (s.rss / KB).toFixed(1)).join(', ')}): RSS strays up to ${mb(med(xs, (s) => s.scatter))} from each run's fitted line (median over the runs), ±${(med(xs, (s) => s.scatter) / (last - STEPS[0]!) / KB).toFixed(0)} KB per stream over ${last - STEPS[0]!} streams, because it counts freed memory glibc keeps; anonymous ${med(xs, (s) => s.anon / KB).toFixed(1)} KB, file-backed ${med(xs, (s) => s.file / KB).toFixed(1)} KB`,
        `JS heap + external ${med(xs, (s) => s.heap / KB).toFixed(1)} KB and V8's committed heap (heapTotal) ${med(xs, (s) => s.committed / KB).toFixed(1)} KB per stream, same slope`,
        `the first step (0 → ${STEPS[0]}) costs ${med(xs, (s) => s.firstRss / KB).toFixed(0)} KB RSS per stream: the one-off buffers of the initial syncs, which a ratio would charge to every stream`,
        `one stream's sync: ${syncText(sync)} (the largest response of each type)`,
        `server RSS: ${mb(med(xds, (r) => r.samples[0]!.rss))} with the snapshot and no stream (heap ${mb(med(xds, (r) => r.samples[0]!.heapUsed))}), ${mb(med(xds, (r) => r.samples[lastIndex]!.rss))} with ${last} idle streams`,
        `allocator: ${allocator()}`,
        `each step synced in ${STEPS.map((_, i) => `${(med(xds, (r) => r.stepMs[i]!) / 1000).toFixed(1)} s`).join(', ')} (batches of 20); ${failed} failed streams, ${xds.reduce((n, r) => n + r.complaints, 0)} server warnings`,
      ],
    });

    const floorSteps = FLOOR_STEPS.join(' → ');
    emit({
      name: 'B4 memory floor: per idle gRPC bidi stream, bare @grpc/grpc-js server, same sync',
      measures: `slope of the server's ${ruler} over idle held calls in steps of 0 → ${floorSteps}, fitted from ${FLOOR_STEPS[0]} on; the xDS server's options, one HTTP/2 connection per client channel, responses of the xDS sync's sizes, no xDS logic${why}`,
      unit: 'KB',
      targets: [{ stat: 'median', limit: 40 }],
      samples: fs.map((s) => perStream(s) / KB),
      warmups: WARMUPS,
      notes: [
        ...(measured
          ? [
              `of it, JS heap used ${med(fs, (s) => s.heapData / KB).toFixed(1)} KB and malloc in use ${med(fs, (s) => s.malloc / KB).toFixed(1)} KB per stream`,
              `left out: V8's compiled code and bytecode, ${med(fs, (s) => s.code / KB).toFixed(1)} KB per stream on the same slope`,
            ]
          : []),
        `RSS, same slope: ${med(fs, (s) => s.rss / KB).toFixed(1)} KB per stream (samples ${fs.map((s) => (s.rss / KB).toFixed(1)).join(', ')})`,
        `each stream is sent ${syncText(sync)}, one response after the other, and ACKs each; ${floor.reduce((n, r) => n + r.failed, 0)} failed streams`,
        `held to B4's target: a MISS here means the target is below what the transport alone costs a stream that carried this sync`,
        `allocator: ${allocator()}`,
        proxyClientNote(),
      ],
    });

    // A stream's own state, in-process: SotW, as B4 measures over the network, and delta.
    const sotwState = await stateRuns('sotw');
    const deltaState = await stateRuns('delta');
    emit({
      name: `B4 memory: an idle delta stream's own state, ${SERVICES.toLocaleString('en-US')} services (in-process, no transport)`,
      measures: `JS heap (compiled code left out) that one more idle, fully ACKed delta stream holds, over ${STATE_STREAMS} streams driven in-process after a first one, one fresh process per run; an edge Envoy's subscription: every cluster and listener, every endpoint set by name, the edge route configuration`,
      unit: 'KB',
      targets: [{ stat: 'median', limit: 40 }],
      samples: deltaState.map((b) => b / KB),
      warmups: WARMUPS,
      notes: [
        `a SotW stream measured the same way: ${(median(sotwState) / KB).toFixed(1)} KB (samples ${sotwState.map((b) => (b / KB).toFixed(1)).join(', ')}); the transport comes on top of either (the floor above)`,
        `a delta stream tracks, per type, what the client holds name by name (${SERVICES.toLocaleString('en-US')} services make 21,000 clusters and 20,000 endpoint sets): what it sent and what was ACKed as maps it shares with the snapshot and with every stream in step, its subscription as a set shared by streams that subscribed alike`,
      ],
    });

    // Measured: the RSS with `last` streams at 10,000 services. Derived: the other streams.
    const projected = xds.map((r, i) => (r.samples[lastIndex]!.rss + (PROJECTED_STREAMS - last) * perStream(xs[i]!)) / MB);
    emit({
      name: `B4 memory: ${SERVICES.toLocaleString('en-US')} services with ${PROJECTED_STREAMS.toLocaleString('en-US')} SotW streams`,
      measures: 'server RSS',
      unit: 'MB',
      targets: [{ stat: 'median', limit: 1024 }],
      samples: projected,
      warmups: WARMUPS,
      notes: [
        `at each run's RSS slope instead: ${mb(median(xds.map((r, i) => r.samples[lastIndex]!.rss + (PROJECTED_STREAMS - last) * xs[i]!.rss)))} (median)`,
        `delta streams would each add their own state (above) to this: ${mb(PROJECTED_STREAMS * median(deltaState))} more for ${PROJECTED_STREAMS.toLocaleString('en-US')} of them`,
        `allocator: ${allocator()}`,
      ],
      derived: `partly measured: each run's RSS with ${last} idle streams at ${SERVICES.toLocaleString('en-US')} services is measured (median ${mb(med(xds, (r) => r.samples[lastIndex]!.rss))}); the other ${(PROJECTED_STREAMS - last).toLocaleString('en-US')} streams are derived at that run's measured ${measured ? 'live-memory' : 'RSS'} slope`,
    });
  });
}
