// Profiles of a benchmark's measured stretches, taken one after the other, read as one.
import { describe, expect, it } from 'vitest';
import { joinProfiles, summarizeProfile, type CpuProfile } from '../../../bench/lib/profile.js';

const frame = (functionName: string): { functionName: string; url: string; lineNumber: number } => ({ functionName, url: '', lineNumber: 0 });

/** A profile whose root calls `fn`, sampled `n` times 1 ms apart in it. */
function profileOf(fn: string, n: number, firstId = 1): CpuProfile {
  return {
    nodes: [
      { id: firstId, callFrame: frame('(root)'), children: [firstId + 1] },
      { id: firstId + 1, callFrame: frame(fn), children: [] },
    ],
    startTime: 1000,
    endTime: 1000 + n * 1000,
    samples: Array.from({ length: n }, () => firstId + 1),
    timeDeltas: Array.from({ length: n }, () => 1000),
  };
}

describe('joinProfiles', () => {
  it('hangs every stretch from one root, with ids of their own, and keeps each sample where it was', () => {
    const joined = joinProfiles([profileOf('build', 3), profileOf('build', 2), profileOf('encode', 4, 7)]);
    const ids = joined.nodes.map((n) => n.id);
    expect(new Set(ids).size).toBe(ids.length);
    const root = joined.nodes.find((n) => n.callFrame.functionName === '(root)')!;
    expect(joined.nodes.filter((n) => n.callFrame.functionName === '(root)')).toHaveLength(1);
    expect(root.children).toHaveLength(3);
    const nameOf = new Map(joined.nodes.map((n) => [n.id, n.callFrame.functionName]));
    expect(joined.samples.map((s) => nameOf.get(s))).toEqual([...Array(5).fill('build'), ...Array(4).fill('encode')]);
    expect(joined.timeDeltas).toHaveLength(joined.samples.length);
    expect(summarizeProfile(joined)).toMatch(/busy 9 ms/);
  });

  it("does not charge the profiler's start-up before a stretch's first sample to the stretch before it", () => {
    // V8 takes tens of milliseconds from Profiler.start to the first sample.
    const late = profileOf('encode', 3, 7);
    late.timeDeltas[0] = 60_000;
    const summary = summarizeProfile(joinProfiles([profileOf('build', 3), late]));
    expect(summary).toMatch(/busy 6 ms/);
    expect(summary).toMatch(/3 ms +50\.0 % {2}build/);
  });

  it('gives back a single stretch as it is', () => {
    const one = profileOf('build', 2);
    expect(joinProfiles([one])).toBe(one);
  });
});
