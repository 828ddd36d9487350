// How fast the machine is right now, on a fixed piece of work that none of
// Shadowplane's code takes part in: the same work on the same Node reads the same on an
// idle machine of one speed, so a timing that moved while the probe moved with it is the
// machine's, not the code's. This shared two-core VM has run the same build at 115 ms
// and at 296 ms on different days (docs/benchmarks.md, "Margins").
//
// The work is of the kind a full build does (B1): short strings made and indexed in a
// Map, small objects kept alive, small buffers written and hashed with SHA-256, one
// thread. It takes about a tenth of a second.
import { hash } from 'node:crypto';
import { median } from './stats.js';

const ITEMS = 40_000;

interface Item {
  name: string;
  index: number;
  digest: string;
}

function work(): number {
  const started = performance.now();
  const byName = new Map<string, Item>();
  const bytes = Buffer.alloc(112);
  let check = 0;
  for (let i = 0; i < ITEMS; i++) {
    const name = `service-${i % 10_007}.subset-${i % 7}.port-${8000 + (i % 13)}-${i}`;
    bytes.write(name, 0, 'latin1');
    bytes.writeUInt32LE(i, 108);
    const item: Item = { name, index: i, digest: hash('sha256', bytes, 'binary') };
    byName.set(name, item);
    check ^= item.digest.charCodeAt(i & 31);
  }
  for (let i = 0; i < ITEMS; i += 3) {
    const item = byName.get(`service-${i % 10_007}.subset-${i % 7}.port-${8000 + (i % 13)}-${i}`);
    if (item) check ^= item.index;
  }
  // Keep the result observable, so the work cannot be optimised away.
  if (check === -1) console.log(check);
  return performance.now() - started;
}

/** Median of `runs` timings of the probe's work, after five warm-ups (V8 is still optimising it in the first few), in ms. */
export function speedProbe(runs = 9): number {
  for (let i = 0; i < 5; i++) work();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) samples.push(work());
  return median(samples);
}
