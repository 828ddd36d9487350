// B1 full build: 10,000 services (3 instances, 2 subsets each; rules on 10 %) from the
// model to an encoded, checked snapshot published for one proxy group, as src/app.ts
// builds it when it starts: a fresh translator, so nothing is reused.
import { runBenchmark, progress } from './lib/report.js';
import { benchModel } from './lib/model.js';
import { AppPipeline, EDGE_GROUP, EDGE_KEY, formatPhases, snapshotSizes, type Phases } from './lib/pipeline.js';
import { median, now } from './lib/stats.js';
import { Collections, collectYoungGarbage } from './lib/gc.js';
import { Profiler } from './lib/profile.js';
import { PUSH_ORDER } from '../src/xds/resources.js';

const SERVICES = 10_000;
// V8 is still optimising the build's functions for the first few builds of a process
// (the third is still about a third slower than the sixth here): five warm-ups, then
// enough runs for a median that one slow run does not move.
const WARMUPS = 5;
const RUNS = 9;

await runBenchmark('B1', 'full build', async (emit) => {
  progress(`building a ${SERVICES.toLocaleString('en-US')}-service model`);
  const model = benchModel({ services: SERVICES });
  const samples: number[] = [];
  const phases: Phases[] = [];
  let sizes = '';
  let first = 0;
  const profiler = new Profiler();
  const collections = new Collections();
  for (let run = 0; run < WARMUPS + RUNS; run++) {
    const pipeline = new AppPipeline();
    pipeline.addGroup(EDGE_KEY);
    // A registry state of its own, as a new one is to serve: nothing worked out for the last one applies.
    const state = { ...model, registry: { ...model.registry, services: new Map(model.registry.services) } };
    collectYoungGarbage();
    // The profile holds the measured builds alone, not the collections between them.
    if (run >= WARMUPS) await profiler.resume();
    const start = now();
    const built = pipeline.rebuild(state);
    if (run >= WARMUPS) {
      collections.timed(start, now());
      await profiler.pause();
    }
    const total = built.phases.shared + built.phases.groups;
    progress(`run ${run + 1}/${WARMUPS + RUNS}: ${total.toFixed(1)} ms${run < WARMUPS ? ' (warm-up)' : ''}`);
    if (run === 0) first = total;
    if (run < WARMUPS) continue;
    samples.push(total);
    phases.push(built.phases);
    sizes = snapshotSizes(built.snapshots.get(EDGE_GROUP)!, PUSH_ORDER);
  }
  await profiler.stop('b1-full-build');
  emit({
    name: 'B1 full build: 10,000 services to an encoded snapshot',
    measures: "app.ts's rebuild with a fresh IncrementalTranslator: translate, check and encode every resource, index them into the shared snapshot, compose the edge group's snapshot, check it and publish it",
    unit: 'ms',
    targets: [{ stat: 'median', limit: 150 }],
    samples,
    warmups: WARMUPS,
    notes: [
      `phase medians: ${formatPhases(phases, median)}`,
      // The machine's speed moves the median by a third from one hour to the next; the fastest build moves less, and says what the code can do.
      `fastest measured build: ${Math.min(...samples).toFixed(0)} ms`,
      `snapshot: ${sizes}`,
      `the first build of the process, before V8 has optimised anything (as when serve starts): ${first.toFixed(0)} ms`,
      collections.summary(),
    ],
  });
});
