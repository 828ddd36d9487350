// What every benchmark prints: its figures (median and p99 over the measured runs),
// the target each is held to, the machine, and PASS or MISS. A MISS is information,
// never a failure: a benchmark exits 0 whatever its numbers (docs/benchmarks.md).
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { max, median, percentile } from './stats.js';

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  os: string;
  memory_gb: number;
  /** 1, 5 and 15 minute load averages when the benchmark started: others' work skews timings. */
  load: number[];
}

export function machine(): Machine {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    node: process.version,
    os: `${os.platform()} ${os.release()} ${os.arch()}`,
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    load: os.loadavg(),
  };
}

export type Stat = 'median' | 'p99' | 'max';

/** `stat` of the samples must be at most `limit` (in the figure's unit). */
export interface Target {
  stat: Stat;
  limit: number;
}

export interface Figure {
  /** e.g. `B3 fan-out, 1,000 streams`. */
  name: string;
  /** What one sample is, in words. */
  measures: string;
  unit: 'ms' | 'KB' | 'MB' | 's';
  targets: Target[];
  samples: number[];
  warmups: number;
  /** Anything a reader needs to trust the number: sizes, counts, breakdowns. */
  notes?: string[];
  /** Set when the figure was not measured but derived (e.g. extrapolated). */
  derived?: string;
}

export interface FigureResult extends Figure {
  median: number;
  p99: number;
  max: number;
  runs: number;
  verdict: 'PASS' | 'MISS' | 'NO DATA';
}

export interface BenchResult {
  id: string;
  title: string;
  machine: Machine;
  figures: FigureResult[];
  started_at: string;
  duration_s: number;
}

const statOf = (stat: Stat, samples: readonly number[]): number =>
  stat === 'median' ? median(samples) : stat === 'p99' ? percentile(samples, 99) : max(samples);

export function evaluate(figure: Figure): FigureResult {
  const ok = figure.samples.length > 0 && figure.targets.every((t) => statOf(t.stat, figure.samples) <= t.limit);
  return {
    ...figure,
    median: median(figure.samples),
    p99: percentile(figure.samples, 99),
    max: max(figure.samples),
    runs: figure.samples.length,
    verdict: figure.samples.length === 0 ? 'NO DATA' : ok ? 'PASS' : 'MISS',
  };
}

export function formatNumber(value: number, unit: string): string {
  if (!Number.isFinite(value)) return 'n/a';
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })} ${unit}`;
}

export const describeTargets = (f: Pick<Figure, 'targets' | 'unit'>): string =>
  f.targets.map((t) => `${t.stat} ≤ ${formatNumber(t.limit, f.unit)}`).join(' and ');

export const describeMachine = (m: Machine): string => `${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.os}, ${m.memory_gb} GB`;

export function printFigure(r: FigureResult, m: Machine): void {
  const lines = [
    `${r.name}`,
    `  measures  ${r.measures}`,
    `  target    ${describeTargets(r)}`,
    `  median    ${formatNumber(r.median, r.unit)}   p99 ${formatNumber(r.p99, r.unit)}   runs ${r.runs} (after ${r.warmups} warm-up)`,
    `  samples   ${r.samples.length === 0 ? 'none' : `${r.samples.map((s) => formatNumber(s, '').trim()).join(', ')} ${r.unit}`}`,
    ...(r.derived ? [`  derived   ${r.derived}`] : []),
    ...(r.notes ?? []).map((n) => `  note      ${n}`),
    `  machine   ${describeMachine(m)} (load average ${m.load.map((l) => l.toFixed(2)).join(' ')} at the start)`,
    `  ${r.verdict}`,
  ];
  console.log(lines.join('\n'));
}

/**
 * Runs one benchmark's body, prints each figure as it is produced, and writes the
 * whole result as JSON to $BENCH_RESULT_FILE for the runner. Always exits 0 on
 * numbers; a crash of the benchmark itself is an error (exit 1).
 */
export async function runBenchmark(id: string, title: string, body: (emit: (f: Figure) => void) => Promise<void>): Promise<void> {
  const m = machine();
  const started = new Date();
  const figures: FigureResult[] = [];
  console.log(`\n=== ${id} ${title} ===`);
  const emit = (f: Figure): void => {
    const r = evaluate(f);
    figures.push(r);
    printFigure(r, m);
  };
  try {
    await body(emit);
  } catch (err) {
    console.error(`${id} failed:`, err);
    process.exitCode = 1;
  }
  const result: BenchResult = {
    id,
    title,
    machine: m,
    figures,
    started_at: started.toISOString(),
    duration_s: Math.round((Date.now() - started.getTime()) / 100) / 10,
  };
  const file = process.env.BENCH_RESULT_FILE;
  if (file) writeFileSync(file, JSON.stringify(result, null, 2));
}

/** A line of progress on stderr, so stdout holds only results. */
export function progress(message: string): void {
  process.stderr.write(`  … ${message}\n`);
}
