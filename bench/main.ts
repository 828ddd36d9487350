// `npm run bench [-- b3 b5] [-- --profile]`: runs the benchmarks one after another, each
// in a fresh Node process (its own heap, JIT and RSS), prints every figure as it comes,
// then a summary table, and writes it to dist/bench/out/results.{json,md}.
//
// Benchmarks are not tests: a MISS never changes the exit code. Only a benchmark that
// could not run (it crashed, or timed out against its own deadline) makes it 1.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './lib/report.js';
import { describeMachine, describeTargets, formatNumber, machine } from './lib/report.js';
import { speedProbe } from './lib/speed-probe.js';
import { outPath, repoRoot } from './lib/paths.js';
import { serveNodeFlags } from './lib/node-flags.js';

const BENCHMARKS: { id: string; file: string; title: string; deadlineMin?: number }[] = [
  { id: 'b1', file: 'b1-full-build.js', title: 'full build' },
  { id: 'b2', file: 'b2-one-change.js', title: 'one change' },
  { id: 'b3', file: 'b3-fan-out.js', title: 'fan-out' },
  // Twelve fresh processes, each syncing 160 proxies with 6 MB and reading the allocator eight times: 4 to 5 minutes on a slow day.
  { id: 'b4', file: 'b4-memory.js', title: 'memory', deadlineMin: 10 },
  { id: 'b5', file: 'b5-reconnect-storm.js', title: 'reconnect storm' },
  { id: 'b6', file: 'b6-end-to-end.js', title: 'end to end' },
];

/** No benchmark may run longer than this, or than its own `deadlineMin`; the whole suite stays near ten minutes. */
const BENCH_DEADLINE_MIN = 6;

const here = path.dirname(fileURLToPath(import.meta.url));

function git(args: string[]): string {
  const r = spawnSync('git', args, { cwd: repoRoot, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

function usage(): never {
  console.error(`usage: npm run bench [-- [--profile] [${BENCHMARKS.map((b) => b.id).join(' ')}]]`);
  process.exit(2);
}

const args = process.argv.slice(2);
const profile = args.includes('--profile');
const wanted = args.filter((a) => a !== '--profile').map((a) => a.toLowerCase());
for (const w of wanted) if (!BENCHMARKS.some((b) => b.id === w)) usage();
const selected = wanted.length === 0 ? BENCHMARKS : BENCHMARKS.filter((b) => wanted.includes(b.id));

// src/version.ts reads `../package.json` next to itself; compiled to dist/bench/src/,
// it finds this copy.
mkdirSync(path.join(repoRoot, 'dist', 'bench'), { recursive: true });
copyFileSync(path.join(repoRoot, 'package.json'), path.join(repoRoot, 'dist', 'bench', 'package.json'));

function runOne(file: string, resultFile: string, deadlineMin: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', ...serveNodeFlags(), path.join(here, file)], {
      cwd: repoRoot,
      stdio: 'inherit',
      env: { ...process.env, BENCH_RESULT_FILE: resultFile, BENCH_PROFILE: profile ? '1' : '0' },
    });
    const timer = setTimeout(() => {
      console.error(`${file}: still running after ${deadlineMin} min; stopping it`);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }, deadlineMin * 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

const commit = git(['rev-parse', 'HEAD']);
const changed = git(['status', '--porcelain'])
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => l.slice(3));
const dirty = changed.length > 0;
// What is measured is src/: say whether it is the commit's.
const changedSrc = changed.filter((f) => f.startsWith('src/'));
const srcState = changedSrc.length === 0 ? 'src/ as committed' : `src/ with uncommitted changes to ${changedSrc.join(', ')}`;
const started = new Date();
const m = machine();
console.log(`Shadowplane benchmarks at ${commit || 'an unknown commit'}${dirty ? ' (working tree has uncommitted changes)' : ''}; ${srcState}`);
console.log(`machine: ${describeMachine(m)}; load average ${m.load.map((l) => l.toFixed(2)).join(' ')}`);
const probeBefore = speedProbe();
console.log(`speed probe: ${probeBefore.toFixed(0)} ms (bench/lib/speed-probe.ts: fixed work, none of it Shadowplane's)`);

const results: BenchResult[] = [];
const crashed: string[] = [];
for (const b of selected) {
  const resultFile = outPath(`${b.id}.json`);
  rmSync(resultFile, { force: true });
  const code = await runOne(b.file, resultFile, b.deadlineMin ?? BENCH_DEADLINE_MIN);
  if (existsSync(resultFile)) results.push(JSON.parse(readFileSync(resultFile, 'utf8')) as BenchResult);
  if (code !== 0) crashed.push(`${b.id} (exit ${String(code)})`);
}

const table = [
  '| benchmark | target | median | p99 | runs | result |',
  '|---|---|---|---|---|---|',
  ...results.flatMap((r) =>
    r.figures.map(
      (f) =>
        `| ${f.name}${f.derived ? ' (derived)' : ''} | ${describeTargets(f)} | ${formatNumber(f.median, f.unit)} | ${formatNumber(f.p99, f.unit)} | ${f.runs} | ${f.verdict} |`,
    ),
  ),
];
const probeAfter = speedProbe();
const minutes = ((Date.now() - started.getTime()) / 60_000).toFixed(1);
const header = [
  `Commit ${commit || 'unknown'}${dirty ? ' with uncommitted changes in the working tree' : ''} (${srcState}), ${started.toISOString()}; the run took ${minutes} min.`,
  `Machine: ${describeMachine(m)}. Load average at the start: ${m.load.map((l) => l.toFixed(2)).join(' ')}.`,
  `Speed probe (bench/lib/speed-probe.ts, fixed single-threaded work that none of Shadowplane's code takes part in; lower is faster): ${probeBefore.toFixed(0)} ms before the benchmarks, ${probeAfter.toFixed(0)} ms after.`,
];
console.log(`\n=== summary ===\n${header.join('\n')}\n\n${table.join('\n')}`);
if (crashed.length > 0) console.log(`\nDid not complete: ${crashed.join(', ')}`);
// A profiled run's timings carry the profiler's cost: keep them apart from the real ones.
// A run of some benchmarks only leaves the full run's files alone.
const base = `results${profile ? '-profiled' : ''}${wanted.length > 0 ? `-${selected.map((b) => b.id).join('-')}` : ''}`;
writeFileSync(outPath(`${base}.json`), JSON.stringify({ commit, dirty, changed, profiled: profile, started_at: started.toISOString(), machine: m, speed_probe_ms: { before: probeBefore, after: probeAfter }, results }, null, 2));
writeFileSync(outPath(`${base}.md`), `${header.join('\n')}\n\n${table.join('\n')}\n`);
console.log(`\nwritten: ${path.relative(repoRoot, outPath(`${base}.md`))} and ${base}.json${profile ? ' (profiled: timings include the profiler)' : ''}`);
process.exitCode = crashed.length > 0 ? 1 : 0;
