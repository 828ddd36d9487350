// CPU profiles of the measured runs only, with V8's sampling profiler (the one behind
// `node --cpu-prof`) driven through node:inspector, so set-up (models, connections)
// stays out of the picture. On with BENCH_PROFILE=1 (`npm run bench -- --profile`).
// The .cpuprofile files open in Chrome DevTools; `summarizeProfile` prints where the
// time went: self time by function, and by file.
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { outPath, repoRoot } from './paths.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime?: number;
  endTime?: number;
  samples: number[];
  timeDeltas: number[];
}

export const profiling = (): boolean => process.env.BENCH_PROFILE === '1';

export class Profiler {
  private session?: Session;
  private running = false;
  /** Profiles of the stretches sampled so far (one unless the benchmark paused). */
  private readonly parts: CpuProfile[] = [];

  /** Starts sampling every `intervalUs` µs, if profiling is on. */
  async start(intervalUs = 250): Promise<void> {
    if (!profiling()) return;
    this.session = new Session();
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await this.session.post('Profiler.start');
    this.running = true;
  }

  /**
   * Stops sampling until `resume`: what a benchmark does between its measured stretches
   * (forced collections, reading sizes) stays out of the profile.
   */
  async pause(): Promise<void> {
    if (!this.session || !this.running) return;
    const { profile } = await this.session.post('Profiler.stop');
    this.parts.push(profile as unknown as CpuProfile);
    this.running = false;
  }

  /** Samples again after `pause`, or starts if nothing was sampled yet. */
  async resume(): Promise<void> {
    if (!this.session) return this.start();
    if (this.running) return;
    await this.session.post('Profiler.start');
    this.running = true;
  }

  /** Stops, writes `<name>.cpuprofile` (the stretches sampled, one after the other) and prints its summary. */
  async stop(name: string): Promise<void> {
    if (!this.session) return;
    await this.pause();
    this.session.disconnect();
    this.session = undefined;
    const profile = joinProfiles(this.parts.splice(0));
    const file = outPath(`${name}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    console.log(`\nCPU profile of the measured runs: ${path.relative(repoRoot, file)}`);
    console.log(summarizeProfile(profile));
  }
}

/**
 * Profiles taken one after the other as one: their call trees hang from one root, and
 * their samples follow each other without the gaps between them.
 */
export function joinProfiles(parts: readonly CpuProfile[]): CpuProfile {
  if (parts.length === 1) return parts[0]!;
  const root: ProfileNode = { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [] };
  const nodes: ProfileNode[] = [root];
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  let offset = 1;
  for (const part of parts) {
    const ownRoot = part.nodes[0]!.id;
    let largest = 0;
    const id = (n: number): number => (n === ownRoot ? root.id : n + offset);
    for (const n of part.nodes) {
      largest = Math.max(largest, n.id);
      const children = (n.children ?? []).map(id);
      if (n.id === ownRoot) root.children!.push(...children);
      else nodes.push({ ...n, id: id(n.id), children });
    }
    samples.push(...part.samples.map(id));
    // A part's first delta runs from Profiler.start to its first sample, and V8 spends
    // tens of milliseconds starting up in between (it logs the code already compiled):
    // summarizeProfile would charge that to the previous part's last sample. It counts
    // as one sampling interval, as the part's other samples do.
    timeDeltas.push(part.timeDeltas.length > 1 ? part.timeDeltas[1]! : 0, ...part.timeDeltas.slice(1));
    offset += largest;
  }
  const startTime = parts[0]!.startTime ?? 0;
  return { nodes, startTime, endTime: startTime + timeDeltas.reduce((a, b) => a + b, 0), samples, timeDeltas };
}

/** `src/xds/wire.ts`, `@grpc/grpc-js/…/http2.js`, `node:internal/…`, or a V8 pseudo-frame. */
function shortUrl(url: string): string {
  if (url === '') return '';
  let u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 'node_modules/'.length);
  u = u.replace(repoRoot, '').replace(/^dist\/bench\//, '');
  return u;
}

function area(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)';
  const u = shortUrl(url);
  if (u.startsWith('node:')) return u.split('/').slice(0, 2).join('/');
  if (!u.startsWith('src/') && !u.startsWith('bench/')) return u.startsWith('@') ? u.split('/').slice(0, 2).join('/') : u.split('/')[0]!;
  return u;
}

const IDLE = new Set(['(idle)', '(program)']);

const keyOf = (frame: CallFrame): string => {
  const fn = frame.functionName || '(anonymous)';
  return frame.url ? `${fn}  ${shortUrl(frame.url)}:${frame.lineNumber + 1}` : fn;
};

/**
 * Top functions by self time, self time by file or package, and the project's own
 * functions (src/) by total time (self and everything they call; a function counts
 * once per sample however deep it recurses). Idle time is left out of the shares.
 */
export function summarizeProfile(profile: CpuProfile, top = 15): string {
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const totalByFn = new Map<string, number>();
  const selfByFn = new Map<string, number>();
  const selfByArea = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byNode.get(profile.samples[i]!);
    const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const fn = functionName || '(anonymous)';
    if (IDLE.has(fn)) {
      idle += dt;
      continue;
    }
    busy += dt;
    const key = keyOf({ functionName, url, lineNumber });
    selfByFn.set(key, (selfByFn.get(key) ?? 0) + dt);
    const onStack = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byNode.get(id)!.callFrame;
      if (shortUrl(frame.url).startsWith('src/')) onStack.add(keyOf(frame));
    }
    for (const k of onStack) totalByFn.set(k, (totalByFn.get(k) ?? 0) + dt);
    const a = area(url, fn);
    selfByArea.set(a, (selfByArea.get(a) ?? 0) + dt);
  }
  const rows = (m: Map<string, number>, n: number): string[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, ms]) => `  ${ms.toFixed(0).padStart(7)} ms ${((100 * ms) / busy).toFixed(1).padStart(5)} %  ${k}`);
  return [
    `busy ${busy.toFixed(0)} ms, idle ${idle.toFixed(0)} ms`,
    `self time by function (top ${top}):`,
    ...rows(selfByFn, top),
    'self time by file or package (top 10):',
    ...rows(selfByArea, 10),
    `src/ functions by total time, callees included (top ${top}):`,
    ...rows(totalByFn, top),
  ].join('\n');
}

/** For profiles written by `node --cpu-prof` (B6's serve process). */
export function summarizeProfileFile(file: string): string {
  return summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
}
