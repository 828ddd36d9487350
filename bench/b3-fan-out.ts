// B3 fan-out: 1,000 and then 10,000 connected streams (simulated proxies in their own
// processes, each on its own HTTP/2 connection) have ACKed a snapshot; one instance
// changes; how long until every stream has ACKed the new endpoints. The clock starts
// when the registry's next state enters the rebuild and stops when the server has
// received the last ACK. At 1,000 streams the same proxies then meet a bare grpc-js
// server that does nothing but write one response of the same size to every call and
// count the ACKs: the floor under the figure on this machine.
import os from 'node:os';
import { runBenchmark, progress } from './lib/report.js';
import { benchModel, withInstanceMoved } from './lib/model.js';
import { AppPipeline, EDGE_GROUP, EDGE_KEY, EDGE_METADATA, EDGE_ROUTE_CONFIG } from './lib/pipeline.js';
import { connectFleet, startControlPlane, waitUntil } from './lib/control-plane.js';
import { outPath } from './lib/paths.js';
import { Fleet, proxyClientNote } from './lib/fleet.js';
import { Collections, collectGarbage, collectYoungGarbage } from './lib/gc.js';
import { Profiler } from './lib/profile.js';
import { median, now } from './lib/stats.js';
import { BareGrpcServer, paddedResponse } from './lib/bare-grpc.js';
import { encodeDiscoveryResponse } from '../src/xds/wire.js';
import { TypeUrl } from '../src/xds/resources.js';
import type { Snapshot } from '../src/xds/cache.js';
import type { Model } from '../src/model/types.js';
import type { Figure } from './lib/report.js';

const SERVICES = Number(process.env.BENCH_B3_SERVICES ?? 100);
const STREAM_COUNTS = (process.env.BENCH_B3_STREAMS ?? '1000,10000').split(',').map(Number);
const TARGET_MS: Record<number, number> = { 1000: 150, 10000: 1500 };
/** Warm-up and measured runs per stream count: 10,000 streams take a while per run. */
const RUNS_FOR: Record<number, [warmups: number, runs: number]> = { 1000: [2, 7], 10000: [1, 5] };
const PROCESSES = 4;
/** The stream count whose floor is measured (bench/lib/bare-grpc.ts). */
const FLOOR_STREAMS = 1000;

interface Memory {
  rss: number;
  heap: number;
}

function memory(): Memory {
  collectGarbage();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.external };
}

await runBenchmark('B3', 'fan-out', async (emit) => {
  let model: Model = benchModel({ services: SERVICES });
  const cp = await startControlPlane(outPath('b3-server.log'));
  const pipeline = new AppPipeline(cp.cache);
  pipeline.addGroup(EDGE_KEY);
  pipeline.rebuild(model);
  const fleet = await Fleet.start(PROCESSES);
  let port = 9000;
  const atRest = memory();
  try {
    for (const streams of STREAM_COUNTS) {
      const [WARMUPS, RUNS] = RUNS_FOR[streams] ?? [1, 5];
      progress(`opening ${streams} streams over ${PROCESSES} processes`);
      const took = await connectFleet(cp, fleet, EDGE_GROUP, streams, 500, { port: cp.port, spreadMs: 0, metadata: EDGE_METADATA, routeConfigs: [EDGE_ROUTE_CONFIG] });
      progress(`${streams} streams synced in ${(took / 1000).toFixed(1)} s`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const idle = memory();

      const samples: number[] = [];
      const rebuildMs: number[] = [];
      /** CPU time during each change, ms: the server's, and the proxies' (they share the machine). */
      const serverCpu: number[] = [];
      const proxyCpu: number[] = [];
      let responseBytes = 0;
      const profiler = new Profiler();
      const collections = new Collections();
      for (let run = 0; run < WARMUPS + RUNS; run++) {
        model = { ...model, registry: withInstanceMoved(model.registry, 1, ++port) };
        collectYoungGarbage();
        const before = await fleet.stats();
        // The profile holds the measured changes alone: not the forced collections, the
        // next model or the proxies' stats between them (a third of it was those).
        if (run >= WARMUPS) await profiler.resume();
        const cpuBefore = process.cpuUsage();
        const start = now();
        // rebuild is synchronous (every stream's response is written inside it), so no
        // ACK can arrive before the expectation is set.
        const { snapshots } = pipeline.rebuild(model);
        const rebuilt = now() - start;
        const end = await cp.tracker.expect(snapshots.get(EDGE_GROUP)!, streams, 60_000);
        const cpu = process.cpuUsage(cpuBefore);
        if (run >= WARMUPS) await profiler.pause();
        const after = await fleet.stats();
        responseBytes = (after.responseBytes - before.responseBytes) / streams;
        progress(`run ${run + 1}/${WARMUPS + RUNS}: ${(end - start).toFixed(1)} ms${run < WARMUPS ? ' (warm-up)' : ''}`);
        if (run >= WARMUPS) {
          collections.timed(start, end);
          samples.push(end - start);
          rebuildMs.push(rebuilt);
          serverCpu.push((cpu.user + cpu.system) / 1000);
          proxyCpu.push(after.cpuMs - before.cpuMs);
        }
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      await profiler.stop(`b3-fan-out-${streams}`);
      const fs = await fleet.stats();
      emit({
        name: `B3 fan-out: one change to ${streams.toLocaleString('en-US')} streams`,
        measures: "from the registry's next state entering app.ts's rebuild to the last stream's EDS ACK, as the server receives it",
        unit: 'ms',
        targets: [{ stat: 'median', limit: TARGET_MS[streams] ?? Number.NaN }],
        samples,
        warmups: WARMUPS,
        notes: [
          `${SERVICES} services (${model.registry.services.size * 2} EDS resources); the change moves one instance, so each stream gets one SotW EDS response of ${(responseBytes / 1024).toFixed(1)} KB`,
          `the synchronous rebuild (translate, publish, the first streams' pumps and writes; the rest follow in later turns of the event loop) median ${median(rebuildMs).toFixed(1)} ms of it`,
          `${PROCESSES} proxy processes, one HTTP/2 connection per stream; ${fs.failed} streams failed, ${cp.tracker.nacks} NACKs, ${cp.complaints().count} server warnings`,
          proxyClientNote(),
          `CPU time per change (medians): the server ${median(serverCpu).toFixed(0)} ms, the proxies ${median(proxyCpu).toFixed(0)} ms (until their stats were read, just after the last ACK), on ${os.availableParallelism()} cores shared by both`,
          collections.summary(),
          `idle, before the runs: server RSS ${(idle.rss / 2 ** 20).toFixed(0)} MB, ${((idle.rss - atRest.rss) / streams / 1024).toFixed(1)} KB RSS and ${((idle.heap - atRest.heap) / streams / 1024).toFixed(1)} KB heap + external per stream over the server before any stream`,
        ],
      });
      await fleet.close();
      await waitUntil(() => cp.server.streams().length === 0, 'the server to see every stream close', 60_000);
      if (streams === FLOOR_STREAMS) emit(await measureFloor(fleet, cp.cache.get(EDGE_GROUP)!, streams, responseBytes, WARMUPS, RUNS));
    }
  } finally {
    await fleet.stop();
    await cp.stop();
  }
});

/**
 * The same fan-out with no server work in it. A bare grpc-js server syncs each proxy
 * with the xDS server's own CDS response (so their EDS requests, and so their ACKs,
 * name the same clusters), then writes one EDS response of the xDS runs' size to every
 * call and waits for every ACK. Proxies, transport and machine are the xDS runs'.
 */
async function measureFloor(fleet: Fleet, snapshot: Snapshot, streams: number, responseBytes: number, warmups: number, runs: number): Promise<Figure> {
  const clusters = encodeDiscoveryResponse({
    versionInfo: snapshot.version(TypeUrl.Cluster),
    typeUrl: TypeUrl.Cluster,
    nonce: '1',
    resources: [...snapshot.resources(TypeUrl.Cluster).values()],
    controlPlaneId: 'shadowplane/bench',
  });
  const server = new BareGrpcServer([clusters]);
  const port = await server.start();
  const response = paddedResponse({ typeUrl: TypeUrl.ClusterLoadAssignment, bytes: Math.round(responseBytes) });
  try {
    progress(`floor: opening ${streams} streams to a bare grpc-js server`);
    await fleet.open(streams, { port, spreadMs: 0, metadata: EDGE_METADATA, routeConfigs: [EDGE_ROUTE_CONFIG] });
    // Each proxy asks for clusters and listeners, then for the endpoints of the clusters it got, and ACKs them.
    await waitUntil(() => server.held === streams && server.synced === streams && server.requests >= 4 * streams, `${streams} proxies synced with the bare server`, 120_000, 20);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const samples: number[] = [];
    const serverCpu: number[] = [];
    const proxyCpu: number[] = [];
    const collections = new Collections();
    for (let run = 0; run < warmups + runs; run++) {
      collectYoungGarbage();
      const before = await fleet.stats();
      const cpuBefore = process.cpuUsage();
      const start = now();
      const end = await server.fanOut(response, 60_000);
      const cpu = process.cpuUsage(cpuBefore);
      const after = await fleet.stats();
      progress(`floor run ${run + 1}/${warmups + runs}: ${(end - start).toFixed(1)} ms${run < warmups ? ' (warm-up)' : ''}`);
      if (run >= warmups) {
        collections.timed(start, end);
        samples.push(end - start);
        serverCpu.push((cpu.user + cpu.system) / 1000);
        proxyCpu.push(after.cpuMs - before.cpuMs);
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const { failed } = await fleet.stats();
    return {
      name: `B3 fan-out floor: one response to ${streams.toLocaleString('en-US')} streams from a bare @grpc/grpc-js server`,
      measures: "from writing one response of the xDS runs' size to every held call to the last ACK, as the bare server receives it; the same proxy processes, their ACKs naming the same clusters",
      unit: 'ms',
      targets: [{ stat: 'median', limit: TARGET_MS[streams] ?? Number.NaN }],
      samples,
      warmups,
      notes: [
        `what no change to the xDS server can take away: the proxies' work and the transport's on the same ${os.availableParallelism()} cores; ${failed} streams failed`,
        `CPU time per fan-out (medians): the bare server ${median(serverCpu).toFixed(0)} ms, the proxies ${median(proxyCpu).toFixed(0)} ms`,
        collections.summary(),
      ],
    };
  } finally {
    await fleet.close();
    await server.stop();
  }
}
