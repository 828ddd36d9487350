// The count of collections that V8 made on the benchmarks' timed runs' clocks.
import { describe, expect, it } from 'vitest';
import { Collections } from '../../../bench/lib/gc.js';

/** Makes young garbage until V8 has had to collect it: objects kept a moment in a ring. */
function churn(): void {
  const ring: { i: number }[] = new Array<{ i: number }>(1024);
  for (let i = 0; i < 3_000_000; i++) ring[i & 1023] = { i };
}

describe('Collections', () => {
  it('counts the young collections inside a timed window and none outside it', async () => {
    const inside = new Collections();
    const outside = new Collections();
    const start = performance.now();
    churn();
    const end = performance.now();
    inside.timed(start, end);
    outside.timed(start - 1_000_000, start - 500_000);
    // Entries reach observers in a later turn.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(inside.summary()).toMatch(/: \d+ full \(\d+ ms\), [1-9]\d* young \(\d+ ms\)/);
    expect(outside.summary()).toMatch(/: 0 full \(0 ms\), 0 young \(0 ms\)/);
  });
});
