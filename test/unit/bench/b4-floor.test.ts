import { describe, expect, it, vi } from 'vitest';
import { paddedResponse } from '../../../bench/lib/bare-grpc.js';
import { parseMallocStats } from '../../../bench/lib/malloc-stats.js';
import { readResponse } from '../../../bench/proxy/wire.js';

const CLUSTER = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';

describe("the B4 floor's padded responses", () => {
  it.each([200, 1_000, 127 + 60, 16_384, 2_500_123, 6_000_000])('are exactly %i bytes', (bytes) => {
    expect(paddedResponse({ typeUrl: CLUSTER, bytes }).length).toBe(bytes);
  });

  it('read as a response of the type with a version, a nonce and no resources, as the simulated proxies read them', () => {
    const head = readResponse(paddedResponse({ typeUrl: CLUSTER, bytes: 100_000 }), true);
    expect(head).toMatchObject({ typeUrl: CLUSTER, version: '1', nonce: '1', resources: 0, edsNames: [] });
  });
});

describe('parseMallocStats', () => {
  it('reads the in-use bytes of the total over all arenas and mmapped blocks', () => {
    const text = [
      'Arena 0:',
      'system bytes     =  189472768',
      'in use bytes     =  160357040',
      'Arena 1:',
      'system bytes     =    2318336',
      'in use bytes     =     405424',
      'Total (incl. mmap):',
      'system bytes     =  212099072',
      'in use bytes     =  180842432',
      'max mmap regions =         41',
      'max mmap bytes   =   54542336',
    ].join('\n');
    expect(parseMallocStats(text)).toBe(180_842_432);
  });

  it('gives undefined for anything else', () => {
    expect(parseMallocStats('Arena 0:\nsystem bytes = 1\nin use bytes = 1\n')).toBeUndefined();
    expect(parseMallocStats('')).toBeUndefined();
  });
});

describe('mallocInUse without gdb', () => {
  it('gives undefined and says why, so B4 falls back to the RSS slope', async () => {
    vi.stubEnv('GDB', '/nonexistent/gdb');
    vi.resetModules();
    try {
      const probe = await import('../../../bench/lib/malloc-stats.js');
      expect(probe.mallocInUse()).toBeUndefined();
      expect(probe.mallocUnavailable()).toMatch(process.platform === 'linux' ? /\/nonexistent\/gdb/ : /not Linux/);
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  });
});
