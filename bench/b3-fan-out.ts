// B3 fan-out: 1,000 and then 10,000 connected streams (simulated proxies in their own
// processes, each on its own HTTP/2 connection) have ACKed a snapshot; one instance
// changes; how long until every stream has ACKed the new endpoints. The clock starts
// when the registry's next state enters the rebuild and stops when the server has
// received the last ACK.
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
import type { Model } from '../src/model/types.js';

const SERVICES = Number(process.env.BENCH_B3_SERVICES ?? 100);
const STREAM_COUNTS = (process.env.BENCH_B3_STREAMS ?? '1000,10000').split(',').map(Number);
const TARGET_MS: Record<number, number> = { 1000: 150, 10000: 1500 };
/** Warm-up and measured runs per stream count: 10,000 streams take a while per run. */
const RUNS_FOR: Record<number, [warmups: number, runs: number]> = { 1000: [2, 7], 10000: [1, 5] };
const PROCESSES = 4;

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
    }
  } finally {
    await fleet.stop();
    await cp.stop();
  }
});
