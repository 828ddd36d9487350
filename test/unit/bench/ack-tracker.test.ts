import { describe, expect, it } from 'vitest';
import { AckTracker } from '../../../bench/lib/control-plane.js';
import type { Snapshot } from '../../../src/xds/cache.js';
import { PUSH_ORDER } from '../../../src/xds/resources.js';

/** Only what the tracker reads of a snapshot: a version per type. */
const snapshotAt = (version: string): Snapshot => ({ version: (t: string) => `${version}:${t}` }) as unknown as Snapshot;

function ackAll(tracker: AckTracker, id: number, version: string): void {
  for (const t of PUSH_ORDER) tracker.callbacks.onAck!({ stream_id: id, node_id: 'n', type_url: t, version: `${version}:${t}`, nonce: '1' });
}

function open(tracker: AckTracker, id: number): void {
  tracker.callbacks.onStreamOpen!({ stream_id: id, kind: 'sotw', peer: 'p' });
}

function close(tracker: AckTracker, id: number): void {
  tracker.callbacks.onStreamClose!({ stream_id: id, kind: 'sotw', peer: 'p', node_id: 'n', reason: 'test' });
}

const settled = async (p: Promise<number>): Promise<'resolved' | 'pending'> =>
  Promise.race([p.then(() => 'resolved' as const), new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);

describe("the benchmarks' ACK tracker", () => {
  it('resolves once the given number of open streams have ACKed every type at the snapshot version', async () => {
    const tracker = new AckTracker();
    for (let id = 1; id <= 3; id++) open(tracker, id);
    ackAll(tracker, 1, 'v1'); // already there when the expectation starts
    const synced = tracker.expect(snapshotAt('v1'), 3, 5_000);
    ackAll(tracker, 2, 'v1');
    ackAll(tracker, 2, 'v1'); // a repeated ACK counts once
    expect(await settled(synced)).toBe('pending');
    // Three types of four are not enough.
    for (const t of PUSH_ORDER.slice(0, 3)) tracker.callbacks.onAck!({ stream_id: 3, node_id: 'n', type_url: t, version: `v1:${t}`, nonce: '1' });
    expect(await settled(synced)).toBe('pending');
    ackAll(tracker, 3, 'v1');
    expect(await settled(synced)).toBe('resolved');
    expect(tracker.streams).toBe(3);
  });

  it('does not count a stream that closed or moved to another version, and grows past its first size', async () => {
    const tracker = new AckTracker();
    for (let id = 1; id <= 200; id++) open(tracker, id);
    for (let id = 1; id <= 200; id++) ackAll(tracker, id, 'v1');
    close(tracker, 7);
    expect(tracker.streams).toBe(199);
    expect(await settled(tracker.expect(snapshotAt('v1'), 200, 5_000).catch(() => 0))).toBe('pending');
    const next = tracker.expect(snapshotAt('v2'), 2, 5_000);
    ackAll(tracker, 1, 'v2');
    ackAll(tracker, 1, 'v3'); // no longer at v2
    ackAll(tracker, 2, 'v2');
    expect(await settled(next)).toBe('pending');
    ackAll(tracker, 3, 'v2');
    expect(await settled(next)).toBe('resolved');
  });

  it('rejects after its deadline, saying how many streams had ACKed', async () => {
    const tracker = new AckTracker();
    open(tracker, 1);
    open(tracker, 2);
    ackAll(tracker, 1, 'v1');
    await expect(tracker.expect(snapshotAt('v1'), 2, 10)).rejects.toThrow('only 1 of 2 streams ACKed the snapshot within 10 ms (2 open, 0 NACKs)');
  });
});
