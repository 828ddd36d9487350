// The cache tells its watchers of a new snapshot in slices of the event loop, and a
// newer snapshot overtakes a fan-out still under way.
import { describe, expect, it } from 'vitest';
import { SnapshotCache, type Snapshot } from '../../../src/xds/cache.js';
import { ingressSnapshot } from '../../helpers/xds-fixtures.js';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function untilAllSeen(seen: (Snapshot | undefined)[], snapshot: Snapshot): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!seen.every((s) => s === snapshot)) {
    if (Date.now() > deadline) throw new Error('the fan-out did not finish');
    await nextTurn();
  }
}

describe('SnapshotCache fan-out', () => {
  it('tells the first watchers at once and the rest in later turns', async () => {
    const cache = new SnapshotCache();
    const seen: (Snapshot | undefined)[] = Array.from({ length: 1_200 });
    seen.forEach((_, i) => cache.watch('g', { onSnapshot: (s) => (seen[i] = s) }));
    const first = ingressSnapshot();
    cache.set('g', first);
    const told = seen.filter((s) => s === first).length;
    expect(told).toBeGreaterThan(0);
    expect(told).toBeLessThan(seen.length);
    await untilAllSeen(seen, first);
  });

  it('sends a newer snapshot to everyone, including those the older one had not reached', async () => {
    const cache = new SnapshotCache();
    const seen: (Snapshot | undefined)[] = Array.from({ length: 1_200 });
    const calls: number[] = seen.map(() => 0);
    seen.forEach((_, i) =>
      cache.watch('g', {
        onSnapshot: (s) => {
          seen[i] = s;
          calls[i]! += 1;
        },
      }),
    );
    const older = ingressSnapshot();
    const newer = ingressSnapshot({ apiPort: 9009 });
    cache.set('g', older);
    cache.set('g', newer);
    await untilAllSeen(seen, newer);
    await nextTurn();
    await nextTurn();
    expect(seen.every((s) => s === newer)).toBe(true);
    expect(Math.max(...calls)).toBe(2); // the older fan-out stopped where it was
    expect(calls.filter((c) => c === 1).length).toBeGreaterThan(0);
  });

  it('does not call a watcher that left during the fan-out', async () => {
    const cache = new SnapshotCache();
    for (let i = 0; i < 1_000; i++) cache.watch('g', { onSnapshot: () => {} });
    let lateCalls = 0;
    const late = { onSnapshot: () => (lateCalls += 1) }; // beyond the first slice
    cache.watch('g', late);
    cache.set('g', ingressSnapshot());
    cache.unwatch('g', late);
    for (let i = 0; i < 5; i++) await nextTurn();
    expect(lateCalls).toBe(0);
  });
});
