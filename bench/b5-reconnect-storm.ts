// B5 reconnect storm: 1,000 proxies, connected and in sync with a 1,000-service
// snapshot, all lose their streams at once and come back within one second, as new
// streams that ask for everything (each receives the whole snapshot). The clock runs
// from the first reconnect until the server has received every stream's ACK of every
// type; the server's event-loop delay is sampled throughout the storm.
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { runBenchmark, progress } from './lib/report.js';
import { benchModel } from './lib/model.js';
import { AppPipeline, EDGE_GROUP, EDGE_KEY, EDGE_METADATA, EDGE_ROUTE_CONFIG, snapshotSizes } from './lib/pipeline.js';
import { startControlPlane, waitUntil } from './lib/control-plane.js';
import { Fleet, proxyClientNote } from './lib/fleet.js';
import { Collections, collectYoungGarbage } from './lib/gc.js';
import { outPath } from './lib/paths.js';
import { Profiler } from './lib/profile.js';
import { median, now } from './lib/stats.js';
import { PUSH_ORDER } from '../src/xds/resources.js';

const SERVICES = 1_000;
const PROXIES = 1_000;
const SPREAD_MS = 1_000;
const PROCESSES = 4;
const WARMUPS = 1;
const RUNS = 5;

await runBenchmark('B5', 'reconnect storm', async (emit) => {
  const cp = await startControlPlane(outPath('b5-server.log'));
  const pipeline = new AppPipeline(cp.cache);
  pipeline.addGroup(EDGE_KEY);
  const snapshot = pipeline.rebuild(benchModel({ services: SERVICES })).snapshots.get(EDGE_GROUP)!;
  const fleet = await Fleet.start(PROCESSES);
  const options = { port: cp.port, spreadMs: SPREAD_MS, metadata: EDGE_METADATA, routeConfigs: [EDGE_ROUTE_CONFIG] };
  const allAcked: number[] = [];
  const delayP99: number[] = [];
  const delayMax: number[] = [];
  /** CPU time during each storm, ms: the server's, and the proxies' (they share the machine). */
  const serverCpu: number[] = [];
  const proxyCpu: number[] = [];
  const profiler = new Profiler();
  const collections = new Collections();
  let bytesPerProxy = 0;
  try {
    // The fleet as it was before the storm: connected and in sync.
    progress(`connecting ${PROXIES} proxies`);
    const first = cp.tracker.expect(snapshot, PROXIES, 120_000);
    await fleet.open(PROXIES, options);
    await first;
    for (let run = 0; run < WARMUPS + RUNS; run++) {
      // Every stream drops at once (a network blip, a control plane restart)...
      await fleet.close();
      await waitUntil(() => cp.server.streams().length === 0, 'the server to see every stream close', 60_000);
      collectYoungGarbage();
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (run === WARMUPS) await profiler.start();
      const before = await fleet.stats();
      // ...and comes back within SPREAD_MS.
      const histogram = monitorEventLoopDelay({ resolution: 10 });
      histogram.enable();
      const cpuBefore = process.cpuUsage();
      const start = now();
      const acked = cp.tracker.expect(snapshot, PROXIES, 60_000);
      await fleet.open(PROXIES, options);
      const end = await acked;
      const cpu = process.cpuUsage(cpuBefore);
      histogram.disable();
      const after = await fleet.stats();
      bytesPerProxy = (after.responseBytes - before.responseBytes) / PROXIES;
      const p99 = histogram.percentile(99) / 1e6;
      const max = histogram.max / 1e6;
      progress(`run ${run + 1}/${WARMUPS + RUNS}: all ACKed after ${(end - start).toFixed(0)} ms; event-loop delay p99 ${p99.toFixed(0)} ms, max ${max.toFixed(0)} ms${run < WARMUPS ? ' (warm-up)' : ''}`);
      if (run < WARMUPS) continue;
      collections.timed(start, end);
      allAcked.push(end - start);
      serverCpu.push((cpu.user + cpu.system) / 1000);
      proxyCpu.push(after.cpuMs - before.cpuMs);
      delayP99.push(p99);
      delayMax.push(max);
    }
    await profiler.stop('b5-reconnect-storm');
  } finally {
    await fleet.close().catch(() => {});
    await fleet.stop();
    await cp.stop();
  }
  const complaints = cp.complaints();
  const notes = [
    `${SERVICES.toLocaleString('en-US')} services: ${snapshotSizes(snapshot, PUSH_ORDER)}; each proxy received ${(bytesPerProxy / 1e6).toFixed(2)} MB`,
    `${PROCESSES} proxy processes, one HTTP/2 connection per proxy, reconnects spread evenly over ${SPREAD_MS} ms`,
    proxyClientNote(),
    `CPU time per storm (medians): the server ${median(serverCpu).toFixed(0)} ms, the proxies ${median(proxyCpu).toFixed(0)} ms, on ${os.availableParallelism()} cores shared by both`,
    collections.summary(),
    `server warnings: ${complaints.count}${complaints.first ? ` (first: "${complaints.first}")` : ''}; NACKs: ${cp.tracker.nacks}`,
  ];
  emit({
    name: 'B5 reconnect storm: 1,000 proxies back within 1 s, all ACKed',
    measures: "from the first reconnect to the server's receipt of the last ACK (every type, every proxy)",
    unit: 'ms',
    targets: [{ stat: 'median', limit: 3000 }],
    samples: allAcked,
    warmups: WARMUPS,
    notes,
  });
  emit({
    name: 'B5 reconnect storm: event-loop delay p99 during the storm',
    measures: "the p99 of the server's event-loop delay (perf_hooks, 10 ms resolution) over one storm; one sample per storm",
    unit: 'ms',
    targets: [{ stat: 'max', limit: 100 }],
    samples: delayP99,
    warmups: WARMUPS,
    notes: [`largest single delay per storm: median ${median(delayMax).toFixed(0)} ms, worst ${Math.max(...delayMax).toFixed(0)} ms`],
  });
});
