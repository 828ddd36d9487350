// The Consul catalog source against a real Consul agent (-dev): tag changes and
// deregistrations come through, a stopped Consul leaves the last registry in force and
// the source unhealthy, and a Consul restarted on the same port is picked up again.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { Registry } from '../../src/model/types.js';
import { ConsulCatalogSource, type ConsulCatalogOptions } from '../../src/sources/consul-catalog.js';
import { deregisterService, registerService, startConsul, type ConsulAgent } from '../helpers/consul.js';
import { showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { hasBinary } from '../helpers/tools.js';
import { waitFor } from '../helpers/wait.js';

/** `id@address:port[tags]` per instance of `service` in the latest registry. */
const instancesOf = (updates: Registry[], service: string): string[] | undefined =>
  updates.at(-1)?.services.get(service)?.instances.map((i) => `${i.id}@${i.address}:${i.port}[${i.tags.join(',')}]`);

const sameList = (a: string[] | undefined, b: string[]): boolean => JSON.stringify(a) === JSON.stringify(b);


describe.skipIf(!hasBinary('consul'))('ConsulCatalogSource against a real Consul', () => {
  let agent: ConsulAgent | undefined;
  const sources: ConsulCatalogSource[] = [];

  beforeAll(async () => {
    agent = await startConsul();
  });

  afterEach(async () => {
    await Promise.all(sources.map((s) => s.stop()));
    sources.length = 0;
  });

  afterAll(async () => {
    await stopAllProcesses();
  });

  beforeEach(() => {
    if (agent) showLogsOnFailure(agent);
  });

  async function started(httpAddr: string, options: Partial<ConsulCatalogOptions> = {}): Promise<{ source: ConsulCatalogSource; updates: Registry[] }> {
    const updates: Registry[] = [];
    const source = new ConsulCatalogSource({ address: httpAddr, logger: silentLogger(), wait: '10s', ...options });
    sources.push(source);
    await source.start((r) => updates.push(r));
    return { source, updates };
  }

  it('reflects tags added to and removed from an instance', async () => {
    if (!agent) throw new Error('setup did not finish');
    const consul = agent;
    await registerService(consul, { name: 'api', id: 'api-1', port: 9001, meta: { version: '1' } });
    const { updates } = await started(consul.httpAddr);
    await waitFor(() => sameList(instancesOf(updates, 'api'), ['api-1@127.0.0.1:9001[]']), { description: 'api-1 without tags' });
    expect(updates.at(-1)?.services.get('api')?.instances[0]?.meta).toEqual({ version: '1' });
    expect(updates.at(-1)?.services.has('consul')).toBe(false);

    // Re-registering the same id replaces the instance: that is how CI changes tags.
    await registerService(consul, { name: 'api', id: 'api-1', port: 9001, tags: ['beta', 'shadow'], meta: { version: '1' } });
    await waitFor(() => sameList(instancesOf(updates, 'api'), ['api-1@127.0.0.1:9001[beta,shadow]']), { description: 'the beta and shadow tags' });

    await registerService(consul, { name: 'api', id: 'api-1', port: 9001, tags: ['shadow'], meta: { version: '1' } });
    await waitFor(() => sameList(instancesOf(updates, 'api'), ['api-1@127.0.0.1:9001[shadow]']), { description: 'the beta tag removed' });

    await registerService(consul, { name: 'api', id: 'api-1', port: 9001, meta: { version: '1' } });
    await waitFor(() => sameList(instancesOf(updates, 'api'), ['api-1@127.0.0.1:9001[]']), { description: 'every tag removed' });
    await deregisterService(consul, 'api-1');
  });

  it('drops a deregistered instance, and the service with its last instance', async () => {
    if (!agent) throw new Error('setup did not finish');
    const consul = agent;
    await registerService(consul, { name: 'web', id: 'web-2', port: 9102 });
    await registerService(consul, { name: 'web', id: 'web-1', port: 9101 });
    const { source, updates } = await started(consul.httpAddr);
    await waitFor(() => sameList(instancesOf(updates, 'web'), ['web-1@127.0.0.1:9101[]', 'web-2@127.0.0.1:9102[]']), { description: 'both web instances' });

    await deregisterService(consul, 'web-1');
    await waitFor(() => sameList(instancesOf(updates, 'web'), ['web-2@127.0.0.1:9102[]']), { description: 'web-1 to go' });

    await deregisterService(consul, 'web-2');
    await waitFor(() => updates.at(-1)?.services.has('web') === false, { description: 'the web service to go' });
    expect(source.status()).toMatchObject({ healthy: true, failingWatches: 0, knownLeader: true });
  });

  it('keeps the last registry while Consul is down, and refreshes from a Consul restarted on the same port', async () => {
    // Its own agent: this test stops it.
    const first = await startConsul();
    showLogsOnFailure(first);
    await registerService(first, { name: 'api', id: 'api-1', port: 9001, tags: ['beta'] });
    const { source, updates } = await started(first.httpAddr, { backoff: { baseMs: 50, maxMs: 500 } });
    await waitFor(() => sameList(instancesOf(updates, 'api'), ['api-1@127.0.0.1:9001[beta]']), { description: 'api-1 from the first Consul' });
    const emitted = updates.length;

    // Stopped under open blocking queries.
    await first.stop();
    await waitFor(() => !source.status().healthy, { description: 'the source to notice Consul is gone' });
    // A stopping agent may first answer 500 ("the client connection is closing"), then
    // refuse connections: both are failures, neither is an empty catalog.
    expect(source.status().lastError).toMatch(/^(catalog|service:api): GET /);
    const goodSince = source.status().lastSuccessMs;
    expect(goodSince).toBeGreaterThan(0);
    // Retries go on for a while; none of them changes what was emitted.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(updates).toHaveLength(emitted);
    expect(instancesOf(updates, 'api')).toEqual(['api-1@127.0.0.1:9001[beta]']);
    expect(source.status()).toMatchObject({ healthy: false, lastSuccessMs: goodSince });

    // -dev keeps nothing on disk: the restarted agent starts empty, so register again.
    const second = await startConsul({ httpPort: first.port });
    showLogsOnFailure(second);
    await registerService(second, { name: 'api', id: 'api-1', port: 9002, tags: ['canary'] });
    await waitFor(() => sameList(instancesOf(updates, 'api'), ['api-1@127.0.0.1:9002[canary]']), {
      description: 'api-1 from the restarted Consul',
      timeoutMs: 15_000,
    });
    await waitFor(() => source.status().healthy, { description: 'the source to be healthy again' });
    expect(source.status().lastSuccessMs).toBeGreaterThan(goodSince!);
    await second.process.stop();
  });
});
