// B4 memory: what an idle connected stream costs the server, with 10,000 services.
// Each run is a fresh process (a clean RSS): it publishes the 10,000-service snapshot,
// measures the server at rest, connects STREAMS simulated proxies (own processes, own
// connections) that ACK everything, lets them go idle, and measures again. Per stream
// is the RSS difference over STREAMS. Opening 10,000 streams that each take a
// 10,000-service snapshot (about 6 MB) is beyond a ten-minute suite on two cores, so
// the 10,000-stream figure is derived: the measured baseline plus 10,000 times the
// measured per-stream cost, and it says so.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runBenchmark, progress } from './lib/report.js';
import { benchModel } from './lib/model.js';
import { AppPipeline, EDGE_GROUP, EDGE_KEY, EDGE_METADATA, EDGE_ROUTE_CONFIG } from './lib/pipeline.js';
import { connectFleet, startControlPlane } from './lib/control-plane.js';
import { Fleet } from './lib/fleet.js';
import { collectGarbage } from './lib/gc.js';
import { outPath } from './lib/paths.js';
import { median } from './lib/stats.js';

const SERVICES = 10_000;
const STREAMS = Number(process.env.BENCH_B4_STREAMS ?? 50);
const PROJECTED_STREAMS = 10_000;
const WARMUPS = 1;
const RUNS = 5;
const MB = 2 ** 20;

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
}

interface RunResult {
  baseline: Memory;
  idle: Memory;
  streams: number;
  syncMs: number;
  complaints: number;
}

async function settle(ms: number): Promise<Memory> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  collectGarbage();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

/** One run, in this (fresh) process; the result goes to the parent over IPC. */
async function measureOnce(): Promise<void> {
  const cp = await startControlPlane(outPath('b4-server.log'));
  const pipeline = new AppPipeline(cp.cache);
  pipeline.addGroup(EDGE_KEY);
  pipeline.rebuild(benchModel({ services: SERVICES }));
  const fleet = await Fleet.start(2, 4096);
  try {
    const baseline = await settle(1000);
    const syncMs = await connectFleet(cp, fleet, EDGE_GROUP, STREAMS, 25, {
      port: cp.port,
      spreadMs: 0,
      metadata: EDGE_METADATA,
      routeConfigs: [EDGE_ROUTE_CONFIG],
    });
    const idle = await settle(2000);
    const result: RunResult = { baseline, idle, streams: cp.server.streams().length, syncMs, complaints: cp.complaints().count };
    process.send?.(result);
  } finally {
    await fleet.close().catch(() => {});
    await fleet.stop();
    await cp.stop();
  }
}

function runInFreshProcess(): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--measure'], { execArgv: ['--expose-gc'], stdio: 'inherit', env: { ...process.env, BENCH_RESULT_FILE: '' } });
    let result: RunResult | undefined;
    child.on('message', (m: RunResult) => (result = m));
    child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`the measuring process exited with ${String(code)} and no result`))));
  });
}

if (process.argv.includes('--measure')) {
  await measureOnce();
} else {
  await runBenchmark('B4', 'memory', async (emit) => {
    const perStream: number[] = [];
    const projected: number[] = [];
    const runs: RunResult[] = [];
    for (let run = 0; run < WARMUPS + RUNS; run++) {
      const r = await runInFreshProcess();
      const kb = (r.idle.rss - r.baseline.rss) / r.streams / 1024;
      progress(
        `run ${run + 1}/${WARMUPS + RUNS}: ${r.streams} streams synced in ${(r.syncMs / 1000).toFixed(1)} s; RSS ${(r.baseline.rss / MB).toFixed(0)} → ${(r.idle.rss / MB).toFixed(0)} MB, ${kb.toFixed(0)} KB per stream${run < WARMUPS ? ' (warm-up)' : ''}`,
      );
      if (run < WARMUPS) continue;
      runs.push(r);
      perStream.push(kb);
      projected.push((r.baseline.rss + PROJECTED_STREAMS * (r.idle.rss - r.baseline.rss) / r.streams) / MB);
    }
    const med = (f: (r: RunResult) => number): number => median(runs.map(f));
    const heapPerStream = med((r) => (r.idle.heapUsed + r.idle.external - r.baseline.heapUsed - r.baseline.external) / r.streams / 1024);
    emit({
      name: `B4 memory: per idle connected stream, ${SERVICES.toLocaleString('en-US')} services`,
      measures: `server RSS with ${STREAMS} idle, fully ACKed streams minus RSS before they connected, over ${STREAMS}`,
      unit: 'KB',
      targets: [{ stat: 'median', limit: 40 }],
      samples: perStream,
      warmups: WARMUPS,
      notes: [
        `of which JS heap + external: ${heapPerStream.toFixed(0)} KB per stream`,
        `server RSS before the streams: ${med((r) => r.baseline.rss / MB).toFixed(0)} MB (heap ${med((r) => r.baseline.heapUsed / MB).toFixed(0)} MB), with ${STREAMS} idle streams ${med((r) => r.idle.rss / MB).toFixed(0)} MB`,
        `each run in a fresh process; ${runs.reduce((n, r) => n + r.complaints, 0)} server warnings`,
      ],
    });
    emit({
      name: `B4 memory: ${SERVICES.toLocaleString('en-US')} services with ${PROJECTED_STREAMS.toLocaleString('en-US')} streams`,
      measures: 'server RSS',
      unit: 'MB',
      targets: [{ stat: 'median', limit: 1024 }],
      samples: projected,
      warmups: WARMUPS,
      derived: `not measured at 10,000 streams: each run's RSS before the streams + 10,000 × its per-stream RSS (measured with ${STREAMS} streams)`,
    });
  });
}
