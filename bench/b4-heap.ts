// What B4's per-stream memory is made of (not part of `npm run bench`: run it by hand,
// `npx tsc -p tsconfig.bench.json && MALLOC_MMAP_THRESHOLD_=131072 node --expose-gc
// --max-semi-space-size=64 --initial-old-space-size=256 dist/bench/bench/b4-heap.js [N]`;
// the allocator setting and the Node flags are B4's, see b4-memory.ts and node-flags.ts).
//
// In one process: the 10,000-service snapshot, N idle streams (the step that absorbs
// one-off costs), a heap snapshot, N more idle streams, a second heap snapshot. What
// grows between the two, over N, is what one more stream costs the JS heap and the
// native objects Node reports into the snapshot (the HTTP/2 sessions with nghttp2's
// memory among them). Printed, and written to dist/bench/out/b4-heap.md; with
// `--floor`, the same on B4's floor (bench/lib/bare-grpc.ts), to b4-floor-heap.md.
import { writeFileSync } from 'node:fs';
import v8 from 'node:v8';
import { benchModel } from './lib/model.js';
import { AppPipeline, EDGE_GROUP, EDGE_KEY, EDGE_METADATA, EDGE_ROUTE_CONFIG } from './lib/pipeline.js';
import { connectFleet, startControlPlane, waitUntil } from './lib/control-plane.js';
import { BareGrpcServer, type SyncResponse } from './lib/bare-grpc.js';
import { PUSH_ORDER } from '../src/xds/resources.js';
import { encodeDiscoveryResponse } from '../src/xds/wire.js';
import { Fleet } from './lib/fleet.js';
import { HeapSnapshot } from './lib/heap-snapshot.js';
import { heapAndExternal, heapData, idleSample, type MemorySample } from './lib/memory-steps.js';
import { outPath } from './lib/paths.js';
import { progress } from './lib/report.js';

const SERVICES = 10_000;
const N = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 100);
/** Categories whose instances are per stream: their retained sizes are reported too. */
const PER_STREAM_ROOTS = [
  // Ours (src/xds): the stream and its per-type state.
  'SotwStream',
  'TypeState',
  // grpc-js's call (1.14 has no Http2ServerCallStream: the call is these two).
  'ServerDuplexStreamImpl',
  'BaseServerInterceptingCall',
  // Node's HTTP/2 and TCP objects, and their native halves.
  'ServerHttp2Session',
  'ServerHttp2Stream',
  'Socket',
  '(native) Node / Http2Session',
  '(native) Node / nghttp2_memory',
  '(synthetic) Node / HttpNStream',
  '(synthetic) Node / TCPSocketWrap',
];

/** `--floor`: the same on B4's floor (a bare grpc-js server sending padding of the sync's sizes), to set beside the xDS server's. */
const FLOOR = process.argv.includes('--floor');
const LABEL = FLOOR ? 'b4-floor' : 'b4';

/** The sizes of the responses an edge proxy is sent at this size, as B4's floor pads them. */
function edgeSyncSizes(): SyncResponse[] {
  const pipeline = new AppPipeline();
  pipeline.addGroup(EDGE_KEY);
  const snapshot = pipeline.rebuild(benchModel({ services: SERVICES })).snapshots.get(EDGE_GROUP)!;
  return PUSH_ORDER.map((typeUrl) => ({
    typeUrl,
    bytes: encodeDiscoveryResponse({ versionInfo: snapshot.version(typeUrl), typeUrl, nonce: '1', resources: [...snapshot.resources(typeUrl).values()], controlPlaneId: 'shadowplane/bench' }).length,
  }));
}

async function floorSnapshots(): Promise<{ files: [string, string]; memory: [MemorySample, MemorySample] }> {
  const server = new BareGrpcServer(edgeSyncSizes());
  const port = await server.start();
  const fleet = await Fleet.start(2, 4096);
  try {
    const files: string[] = [];
    const memory: MemorySample[] = [];
    for (const step of [1, 2]) {
      const target = step * N;
      while (server.held < target) {
        const next = Math.min(target, server.held + 20);
        await fleet.open(next - server.held, { port, spreadMs: 0, metadata: EDGE_METADATA, routeConfigs: [EDGE_ROUTE_CONFIG] });
        const settled = async (): Promise<boolean> => server.held === next && server.requests >= 2 * next && (await fleet.stats()).synced >= next;
        await waitUntil(settled, `${next} held calls`, 120_000, 50);
      }
      memory.push(await idleSample(server.held, 1000));
      files.push(v8.writeHeapSnapshot(outPath(`${LABEL}-${target}-streams.heapsnapshot`)));
      progress(`${target} idle streams: heap snapshot ${files.at(-1)}`);
    }
    return { files: files as [string, string], memory: memory as [MemorySample, MemorySample] };
  } finally {
    await fleet.close().catch(() => {});
    await fleet.stop();
    await server.stop();
  }
}

async function snapshots(): Promise<{ files: [string, string]; memory: [MemorySample, MemorySample] }> {
  if (FLOOR) return floorSnapshots();
  const cp = await startControlPlane(outPath('b4-heap-server.log'));
  const pipeline = new AppPipeline(cp.cache);
  pipeline.addGroup(EDGE_KEY);
  pipeline.rebuild(benchModel({ services: SERVICES }));
  const fleet = await Fleet.start(2, 4096);
  const options = { port: cp.port, spreadMs: 0, metadata: EDGE_METADATA, routeConfigs: [EDGE_ROUTE_CONFIG] };
  try {
    const files: string[] = [];
    const memory: MemorySample[] = [];
    for (const step of [1, 2]) {
      await connectFleet(cp, fleet, EDGE_GROUP, N, 20, options);
      memory.push(await idleSample(cp.server.streams().length, 1000));
      files.push(v8.writeHeapSnapshot(outPath(`b4-${step * N}-streams.heapsnapshot`)));
      progress(`${step * N} idle streams: heap snapshot ${files.at(-1)}`);
    }
    return { files: files as [string, string], memory: memory as [MemorySample, MemorySample] };
  } finally {
    await fleet.close().catch(() => {});
    await fleet.stop();
    await cp.stop();
  }
}

const { files, memory } = await snapshots();
const [a, b] = files.map((f) => {
  progress(`reading ${f}`);
  return new HeapSnapshot(f);
}) as [HeapSnapshot, HeapSnapshot];

const perStream = (bytes: number): string => `${(bytes / N).toFixed(0)} B`;
const lines: string[] = [];
const say = (line = ''): void => {
  lines.push(line);
  console.log(line);
};

say(`# B4${FLOOR ? "'s floor (a bare grpc-js server, padded sync)" : ''}: what one more idle stream holds (${N} → ${2 * N} streams, ${SERVICES.toLocaleString('en-US')} services)`);
say();
say(`process.memoryUsage(), per stream: RSS ${perStream(memory[1].rss - memory[0].rss)}, heap + external ${perStream(heapAndExternal(memory[1]) - heapAndExternal(memory[0]))} (heap ${perStream(memory[1].heapUsed - memory[0].heapUsed)}, external ${perStream(memory[1].external - memory[0].external)}); of the heap, compiled code and bytecode ${perStream(memory[1].code - memory[0].code)} (what V8 compiled or flushed meanwhile, which B4 leaves out) and the rest ${perStream(heapData(memory[1]) - heapData(memory[0]))}`);
say(`heap snapshot nodes: ${a.nodeCount.toLocaleString('en-US')} → ${b.nodeCount.toLocaleString('en-US')}`);
say();

const before = a.byCategory();
const after = b.byCategory();
// Every category of either snapshot: one that shrank to nothing counts as shrinking.
const growth = [...new Set([...before.keys(), ...after.keys()])]
  .map((category) => {
    const was = before.get(category) ?? { count: 0, self: 0 };
    const now = after.get(category) ?? { count: 0, self: 0 };
    return { category, count: now.count - was.count, self: now.self - was.self };
  })
  .sort((x, y) => y.self - x.self);
const total = growth.reduce((s, g) => s + g.self, 0);
const fresh = b.newSince(a);
say(`## Self size that grows, per stream (all categories: ${perStream(total)})`);
say();
say('| category | bytes per stream | objects per stream | largest retainers of the new ones (self size over all N new streams) |');
say('|---|---|---|---|');
for (const g of growth.slice(0, 25)) {
  const retainers = b
    .retainersOf(g.category, fresh)
    .map((r) => `${r.via} (${(r.self / 1024).toFixed(0)} KB)`)
    .join('; ');
  say(`| ${g.category.replace(/\|/g, '\\|')} | ${perStream(g.self)} | ${(g.count / N).toFixed(1)} | ${retainers.replace(/\|/g, '\\|')} |`);
}
say();

say('## Retained size of per-stream objects (what each one alone keeps alive)');
say();
say('| object | instances | retained per stream | retained per instance |');
say('|---|---|---|---|');
const retainedA = a.retainedSizes();
const retainedB = b.retainedSizes();
for (const root of PER_STREAM_ROOTS) {
  const sum = (s: HeapSnapshot, retained: Float64Array): { count: number; bytes: number } => {
    let count = 0;
    let bytes = 0;
    for (let n = 0; n < s.nodeCount; n++) {
      if (s.category(n) !== root) continue;
      count++;
      bytes += retained[n]!;
    }
    return { count, bytes };
  };
  const [x, y] = [sum(a, retainedA), sum(b, retainedB)];
  say(`| ${root} | ${x.count} → ${y.count} | ${perStream(y.bytes - x.bytes)} | ${y.count ? (y.bytes / y.count).toFixed(0) : '-'} B |`);
}
writeFileSync(outPath(`${LABEL}-heap.md`), `${lines.join('\n')}\n`);
