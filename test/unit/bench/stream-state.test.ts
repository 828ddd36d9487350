import { describe, expect, it } from 'vitest';
import { benchModel } from '../../../bench/lib/model.js';
import { AppPipeline, EDGE_GROUP, EDGE_KEY } from '../../../bench/lib/pipeline.js';
import { openSynced } from '../../../bench/lib/stream-state.js';
import { PUSH_ORDER } from '../../../src/xds/resources.js';

describe("B4's in-process streams", () => {
  const pipeline = new AppPipeline();
  pipeline.addGroup(EDGE_KEY);
  pipeline.rebuild(benchModel({ services: 50 }));
  const snapshot = pipeline.cache.get(EDGE_GROUP)!;

  it.each(['sotw', 'delta'] as const)('bring a %s stream to a full sync, every resource of every type ACKed', (kind) => {
    const stream = openSynced(pipeline.cache, EDGE_GROUP, kind, 1);
    const status = stream.status();
    expect(status.map((s) => s.typeUrl)).toEqual(PUSH_ORDER);
    for (const s of status) {
      const all = snapshot.resources(s.typeUrl);
      expect(s.acked.size, s.typeUrl).toBe(all.size);
      for (const [name, r] of all) expect(s.acked.get(name)?.version, name).toBe(r.version);
    }
    stream.close('test');
  });
});
