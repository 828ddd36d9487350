// Smoke test for the Consul binary, the test helpers and the `consul` npm client that
// Shadowplane's Consul source uses: an instance registered over HTTP reads back with
// its tag, address and port.
import Consul from 'consul';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deregisterService, registerService, startConsul, type ConsulAgent } from '../helpers/consul.js';
import { showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { hasBinary } from '../helpers/tools.js';
import { waitFor } from '../helpers/wait.js';

interface CatalogServiceNode {
  ServiceID: string;
  ServiceAddress: string;
  ServicePort: number;
  ServiceTags: string[];
  ServiceMeta: Record<string, string>;
}

describe.skipIf(!hasBinary('consul'))('consul smoke (dev agent)', () => {
  let agent: ConsulAgent | undefined;
  let client: Consul | undefined;

  beforeAll(async () => {
    agent = await startConsul();
    client = new Consul({ host: agent.host, port: agent.port });
  });

  afterAll(async () => {
    client?.destroy();
    await stopAllProcesses();
  });

  beforeEach(() => {
    if (agent) showLogsOnFailure(agent);
  });

  it('reads back a registered instance with its tag through the consul client', async () => {
    if (!agent || !client) throw new Error('setup did not finish');
    const consul = client;
    const id = await registerService(agent, {
      name: 'api',
      id: 'api-beta-1',
      address: '127.0.0.1',
      port: 9091,
      tags: ['beta'],
      meta: { version: '2' },
    });

    // The agent syncs its services to the catalog on its own schedule; poll for it.
    const nodes = await waitFor(
      async () => {
        const found = (await consul.catalog.service.nodes('api')) as CatalogServiceNode[];
        return found.length > 0 ? found : undefined;
      },
      { description: 'service api in the Consul catalog' },
    );

    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({
      ServiceID: id,
      ServiceAddress: '127.0.0.1',
      ServicePort: 9091,
      ServiceTags: ['beta'],
      ServiceMeta: { version: '2' },
    });

    await deregisterService(agent, id);
    await waitFor(async () => ((await consul.catalog.service.nodes('api')) as unknown[]).length === 0, {
      description: 'service api to leave the Consul catalog',
    });
  });
});
