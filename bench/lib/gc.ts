// Collections the benchmarks ask for (the runner starts them with --expose-gc; without
// the flag these are no-ops), and a count of the ones V8 makes on a run's clock.
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';

type Gc = (options?: { type: 'minor' | 'major' }) => void;
const gc = (): Gc | undefined => (globalThis as { gc?: Gc }).gc;

/**
 * Before measuring memory: the whole heap, twice (what the first one finds dead may hold
 * the last references to more).
 */
export function collectGarbage(): void {
  gc()?.();
  gc()?.();
}

/**
 * Between timed runs: the young generation, where a run leaves its garbage, so the next
 * run's clock does not pay for collecting it.
 *
 * Not the whole heap: a full collection also throws away optimised code that holds
 * (weakly, as V8 embeds some objects in it) an object the collection finds dead, and
 * the hot paths of a build and of a fan-out are such code. With a full collection
 * before every run, `--trace-deopt` showed each one deoptimising ("reason: weak
 * objects") B1's snapshot
 * builder (`add`, `has`, `sharedParts`) and, in B3, `decodeDiscoveryRequest`,
 * grpc-js's `decompressAndMaybePush` and Node's stream writes; every run then ran them
 * unoptimised while V8 compiled them again beside it. A server does not collect its
 * whole heap before each change. Old-generation garbage that builds up over the runs is
 * collected when V8 decides, on whichever run's clock that falls, as it would be in
 * service: `Collections` counts those.
 */
export function collectYoungGarbage(): void {
  gc()?.({ type: 'minor' });
}

/** The collections V8 made inside the timed runs' windows. */
export class Collections {
  private readonly entries: PerformanceEntry[] = [];
  private readonly windows: [start: number, end: number][] = [];
  private readonly observer = new PerformanceObserver((list) => {
    this.entries.push(...list.getEntries());
  });

  constructor() {
    this.observer.observe({ entryTypes: ['gc'] });
  }

  /** A timed run, from `start` to `end` (performance.now()). */
  timed(start: number, end: number): void {
    this.windows.push([start, end]);
  }

  /** Stops watching; says e.g. "collections on the runs' clocks: 1 full (31 ms), 4 young (9 ms); …". */
  summary(): string {
    this.entries.push(...this.observer.takeRecords());
    this.observer.disconnect();
    const full = { count: 0, ms: 0 };
    const young = { count: 0, ms: 0 };
    for (const e of this.entries) {
      if (!this.windows.some(([start, end]) => e.startTime >= start && e.startTime <= end)) continue;
      const kind = (e as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        young.count++;
        young.ms += e.duration;
      } else {
        // Incremental marking's steps and weak callbacks are parts of a full collection: their time is its.
        if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) full.count++;
        full.ms += e.duration;
      }
    }
    return `collections on the runs' clocks: ${full.count} full (${full.ms.toFixed(0)} ms), ${young.count} young (${young.ms.toFixed(0)} ms); between runs only the young generation is collected (see Method)`;
  }
}
