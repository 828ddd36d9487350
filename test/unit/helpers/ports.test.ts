// The ports tests tell programs to bind: free, distinct, and out of the range the
// kernel hands out for port 0 and for outgoing connections' source ports.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePorts } from '../../helpers/ports.js';

const ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);

const bindable = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });

describe('freePorts', () => {
  it('hands out distinct free ports below the ephemeral range, and other ones on the next call', async () => {
    const first = await freePorts(6);
    const second = await freePorts(6);
    const all = [...first, ...second];
    expect(new Set(all).size).toBe(all.length);
    for (const port of all) {
      expect(port).toBeGreaterThanOrEqual(10_000);
      expect(port).toBeLessThan(ephemeralLow);
      expect(await bindable(port)).toBe(true);
    }
  });

  it('passes over a port something else holds', async () => {
    const [probe] = (await freePorts(1)) as [number];
    // The next port in this worker's walk, held by another listener: it must be skipped.
    const held = createServer();
    await new Promise<void>((resolve) => held.listen({ host: '127.0.0.1', port: probe + 1, exclusive: true }, resolve));
    try {
      const [next] = (await freePorts(1)) as [number];
      expect(next).not.toBe(probe + 1);
      expect(await bindable(next)).toBe(true);
    } finally {
      await new Promise<void>((resolve) => held.close(() => resolve()));
    }
  });
});
