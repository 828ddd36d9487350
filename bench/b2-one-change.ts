// B2 one change: among 10,000 services one instance moves; how long until the response
// that carries it is ready to send. The change enters where a registry source hands
// over its next state (app.ts: `registry = next; rebuild()`); the clock stops when a
// connected, fully ACKed proxy's stream hands its EDS response to the transport. All
// of it is synchronous: rebuild → cache.set → the stream's pump → write.
import { runBenchmark, progress } from './lib/report.js';
import { benchModel, withInstanceMoved } from './lib/model.js';
import { AppPipeline, EDGE_GROUP, EDGE_KEY, EDGE_METADATA, EDGE_ROUTE_CONFIG, formatPhases, type Phases } from './lib/pipeline.js';
import { InProcessProxy } from './lib/in-process-proxy.js';
import { Collections, collectYoungGarbage } from './lib/gc.js';
import { Profiler } from './lib/profile.js';
import { median, now } from './lib/stats.js';
import type { Snapshot } from '../src/xds/cache.js';
import { PUSH_ORDER, TYPE_SHORT_NAMES, TypeUrl } from '../src/xds/resources.js';
import type { Model } from '../src/model/types.js';
import { Resource } from '../src/xds/resource.js';

/** Counts encodings: every resource is made by Resource.fromObject or, from the specialised writers, Resource.fromMessage. */
let encodings = 0;
const fromObject = Resource.fromObject.bind(Resource);
Resource.fromObject = (typeUrl, object) => {
  encodings++;
  return fromObject(typeUrl, object);
};
const fromMessage = Resource.fromMessage.bind(Resource);
Resource.fromMessage = (...args: Parameters<typeof Resource.fromMessage>) => {
  encodings++;
  return fromMessage(...args);
};

const SERVICES = 10_000;
const WARMUPS = 2;
const RUNS = 7;

/** Resources of `next` that are new or whose content differs from `prev`'s. */
function changedResources(prev: Snapshot, next: Snapshot): string[] {
  const out: string[] = [];
  for (const typeUrl of PUSH_ORDER) {
    for (const r of next.resources(typeUrl).diffFrom(prev.resources(typeUrl)).upserts) out.push(`${TYPE_SHORT_NAMES[typeUrl]} ${r.name}`);
  }
  return out;
}

await runBenchmark('B2', 'one change', async (emit) => {
  progress(`building a ${SERVICES.toLocaleString('en-US')}-service model and its snapshot`);
  let model: Model = benchModel({ services: SERVICES });
  const pipeline = new AppPipeline();
  pipeline.addGroup(EDGE_KEY);
  let previous = pipeline.rebuild(model).snapshots.get(EDGE_GROUP)!;
  const proxy = new InProcessProxy(pipeline.cache, { id: 'edge-1', metadata: EDGE_METADATA, routeConfigs: [EDGE_ROUTE_CONFIG] });
  proxy.start();
  if (!proxy.synced) throw new Error('the in-process proxy did not sync');

  const samples: number[] = [];
  const phases: Phases[] = [];
  let changed: string[] = [];
  let encoded = 0;
  let responseBytes = 0;
  let edsEntries = 0;
  const profiler = new Profiler();
  const collections = new Collections();
  for (let run = 0; run < WARMUPS + RUNS; run++) {
    if (run === WARMUPS) await profiler.start();
    const next: Model = { ...model, registry: withInstanceMoved(model.registry, 4242, 20_000 + run) };
    collectYoungGarbage();
    const writesBefore = proxy.writes.length;
    const encodingsBefore = encodings;
    const start = now();
    // What app.ts does when the registry source emits: rebuild, publish; the stream pumps.
    const built = pipeline.rebuild(next);
    const end = now();
    encoded = encodings - encodingsBefore;
    const eds = proxy.writes.slice(writesBefore).find((w) => w.head.typeUrl === TypeUrl.ClusterLoadAssignment);
    if (!eds) throw new Error('no EDS response was written after the change');
    proxy.deliver();
    progress(`run ${run + 1}/${WARMUPS + RUNS}: ready to send after ${(eds.at - start).toFixed(1)} ms (rebuild returned after ${(end - start).toFixed(1)} ms)${run < WARMUPS ? ' (warm-up)' : ''}`);
    const snapshot = built.snapshots.get(EDGE_GROUP)!;
    changed = changedResources(previous, snapshot);
    responseBytes = eds.head.bytes;
    edsEntries = eds.head.resources;
    previous = snapshot;
    model = next;
    if (run < WARMUPS) continue;
    samples.push(eds.at - start);
    phases.push(built.phases);
    collections.timed(start, end);
  }
  await profiler.stop('b2-one-change');
  emit({
    name: 'B2 one change: one instance among 10,000 services, ready to send',
    measures: "from the registry's next state to the connected proxy's EDS response handed to the transport",
    unit: 'ms',
    targets: [{ stat: 'median', limit: 2 }],
    samples,
    warmups: WARMUPS,
    notes: [
      `phase medians: ${formatPhases(phases, median)} (groups includes the stream building and writing its response)`,
      `resources whose content changed: ${changed.length} (${changed.slice(0, 3).join(', ')}); resources encoded during the change: ${encoded.toLocaleString('en-US')}`,
      `the SotW EDS response carries ${edsEntries.toLocaleString('en-US')} of 20,000 endpoints resources (only what changed): ${(responseBytes / 1e3).toFixed(2)} KB`,
      collections.summary(),
    ],
  });
});
