// B1's full build, this tree against another, in one process and in turn (not part of
// `npm run bench`: run it by hand). Two processes minutes apart can differ by a third
// on this kind of machine; builds of both trees alternating in one process meet the
// same machine, so a cut of a few milliseconds shows. Build the other tree's bench
// output first (e.g. `git worktree add /tmp/old <commit>`, link node_modules, `npx tsc
// -p tsconfig.bench.json` there), then:
//
//   npx tsc -p tsconfig.bench.json && node --expose-gc --max-semi-space-size=64 \
//     --initial-old-space-size=256 dist/bench/bench/ab-build.js /tmp/old/dist/bench [builds]
//
// Both pipelines live in one heap, so each build runs somewhat slower than in B1
// alone: compare the two sides, not these figures with B1's.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchModel } from './lib/model.js';
import { collectYoungGarbage } from './lib/gc.js';
import type { Model } from '../src/model/types.js';
import type { ProxyKey } from '../src/translate/proxy.js';

/** What this tool needs of a tree's bench/lib/pipeline.js (any tree since the pipeline had phases). */
interface PipelineModule {
  AppPipeline: new () => { addGroup(key: ProxyKey): string; rebuild(model: Model): { phases: { shared: number; groups: number } } };
  EDGE_KEY: ProxyKey;
}

const [otherDir, buildsArg] = process.argv.slice(2);
if (!otherDir) {
  console.error('usage: node dist/bench/bench/ab-build.js <other tree>/dist/bench [builds]');
  process.exit(2);
}
const BUILDS = Number(buildsArg ?? 20);
/** Builds of each side left out first: V8 is still optimising them. */
const WARMUPS = 4;

const load = async (benchDir: string): Promise<PipelineModule> =>
  (await import(pathToFileURL(path.resolve(benchDir, 'bench', 'lib', 'pipeline.js')).href)) as PipelineModule;
const sides = { this: await load(path.resolve(import.meta.dirname, '..')), other: await load(otherDir) };

const model = benchModel({ services: 10_000 });
const samples: Record<keyof typeof sides, { total: number; shared: number; groups: number }[]> = { this: [], other: [] };
for (let run = 0; run < WARMUPS + BUILDS; run++) {
  // Each side goes first in every other round.
  for (const side of run % 2 === 0 ? (['this', 'other'] as const) : (['other', 'this'] as const)) {
    const { AppPipeline, EDGE_KEY } = sides[side];
    const pipeline = new AppPipeline();
    pipeline.addGroup(EDGE_KEY);
    // A registry state of its own for every build, as in B1.
    const state: Model = { ...model, registry: { ...model.registry, services: new Map(model.registry.services) } };
    collectYoungGarbage();
    const { phases } = pipeline.rebuild(state);
    if (run >= WARMUPS) samples[side].push({ total: phases.shared + phases.groups, ...phases });
  }
}

const summary = (values: number[]): string => {
  const sorted = [...values].sort((a, b) => a - b);
  return `fastest ${sorted[0]!.toFixed(1)} ms, median ${sorted[sorted.length >> 1]!.toFixed(1)} ms`;
};
for (const side of ['this', 'other'] as const) {
  const list = samples[side];
  console.log(
    `${side === 'this' ? 'this tree ' : `${otherDir}`}: build ${summary(list.map((s) => s.total))}; shared ${summary(list.map((s) => s.shared))}; groups ${summary(list.map((s) => s.groups))} (${list.length} builds)`,
  );
}
