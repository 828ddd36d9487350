import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
// Memory per connected stream as a slope: one process connects streams in steps
// (0 → N1 → N2 → …), lets each step go idle, collects garbage and samples its memory.
// The first step also pays for one-off costs that do not grow with the streams (the
// buffers of the initial transfers, which the allocator keeps once it has them, code
// compiled on first use); a ratio over one step charges those to every stream. The
// slope between the later steps does not.
import { collectGarbage } from './gc.js';
import { mallocInUse } from './malloc-stats.js';

export interface MemorySample {
  /** Streams connected (and idle) when the sample was taken. */
  streams: number;
  rss: number;
  heapUsed: number;
  /**
   * The part of `heapUsed` that is the program's compiled form: bytecode and machine
   * code with their metadata (v8.getHeapCodeStatistics). It moves with what V8 decides
   * to compile, optimise or flush while the steps run (it optimises functions as they
   * grow hot, and flushes bytecode not run for a number of full collections), not with
   * the streams: a slope over 120 streams read +1.1 KB a stream of it in one process
   * and -3.0 KB in another.
   */
  code: number;
  /**
   * RSS split as Linux counts it (/proc/self/status): anonymous pages (heaps, buffers:
   * what streams take) and file-backed pages (the node binary's and libraries' code and
   * data, which the kernel drops and reads back as it likes). 0 where there is no /proc.
   */
  rssAnon: number;
  rssFile: number;
  /** What V8 has committed for its heap (the young generation's semi-spaces included). */
  heapTotal: number;
  /** Memory outside the JS heap that V8 knows of (Buffers and other ArrayBuffers included). */
  external: number;
  /**
   * glibc's in-use bytes (bench/lib/malloc-stats.ts): every live malloc'd block, the
   * HTTP/2 sessions' nghttp2 memory and ArrayBuffers' backing stores among them, and
   * none of the freed memory the allocator keeps. Absent where it cannot be read.
   */
  mallocInUse?: number;
}

/**
 * Waits `quietMs` for in-flight writes and ACKs to finish, collects garbage, samples;
 * with `malloc`, glibc's in-use bytes too (which stops the process for about a second).
 */
export async function idleSample(streams: number, quietMs: number, options: { malloc?: boolean } = {}): Promise<MemorySample> {
  await new Promise((resolve) => setTimeout(resolve, quietMs));
  collectGarbage();
  // Let finalizers that free native memory (Buffers' backing stores) run, then again.
  await new Promise((resolve) => setImmediate(resolve));
  collectGarbage();
  const inUse = options.malloc ? mallocInUse() : undefined;
  const m = process.memoryUsage();
  const codeStats = v8.getHeapCodeStatistics();
  const status = procStatus();
  return {
    streams,
    rss: m.rss,
    rssAnon: status.RssAnon ?? 0,
    rssFile: status.RssFile ?? 0,
    heapUsed: m.heapUsed,
    code: codeStats.code_and_metadata_size + codeStats.bytecode_and_metadata_size,
    heapTotal: m.heapTotal,
    external: m.external,
    ...(inUse === undefined ? {} : { mallocInUse: inUse }),
  };
}

/** The `kB` fields of /proc/self/status, in bytes; empty where there is none. */
function procStatus(): Record<string, number> {
  let text: string;
  try {
    text = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return {};
  }
  const out: Record<string, number> = {};
  for (const match of text.matchAll(/^(\w+):\s+(\d+) kB$/gm)) out[match[1]!] = Number(match[2]) * 1024;
  return out;
}

export const heapAndExternal = (s: MemorySample): number => s.heapUsed + s.external;

/** The JS heap's objects other than the program's compiled code (see `code`). */
export const heapData = (s: MemorySample): number => s.heapUsed - s.code;

/**
 * Live memory: the JS objects V8 holds (heap used, less the compiled code) plus every
 * live malloc'd block (ArrayBuffers' backing stores, which `external` counts, are
 * malloc'd, so they are in the second and not counted twice). NaN without in-use bytes.
 */
export const live = (s: MemorySample): number => heapData(s) + (s.mallocInUse ?? Number.NaN);

/**
 * The least-squares slope of `value` over the streams of `samples`, in bytes per stream.
 * With three equally spaced steps it is the slope between the outer two: the middle
 * one does not weigh on it.
 */
export function slope(samples: readonly MemorySample[], value: (s: MemorySample) => number): number {
  const n = samples.length;
  if (n < 2) return Number.NaN;
  const mx = samples.reduce((a, s) => a + s.streams, 0) / n;
  const my = samples.reduce((a, s) => a + value(s), 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const s of samples) {
    sxy += (s.streams - mx) * (value(s) - my);
    sxx += (s.streams - mx) ** 2;
  }
  return sxy / sxx;
}

/** Parses a list of step sizes such as "50,100,150" (an environment override). */
export function parseSteps(text: string): number[] {
  const steps = text.split(',').map((s) => Number(s.trim()));
  if (steps.length < 3 || steps.some((s, i) => !Number.isInteger(s) || s <= 0 || (i > 0 && s <= steps[i - 1]!))) {
    throw new Error(`steps must be at least three increasing positive integers, e.g. "50,100,150"; got "${text}"`);
  }
  return steps;
}
