// The Consul KV rules store against a real Consul agent: the same contract as the
// directory store, with check-and-set done by Consul itself.
import { afterAll, beforeAll, describe } from 'vitest';
import { ConsulKvRulesStore } from '../../src/sources/rules-consul-kv.js';
import { startConsul, type ConsulAgent } from '../helpers/consul.js';
import { stopAllProcesses } from '../helpers/process.js';
import { rulesStoreContract } from '../helpers/rules-store-contract.js';
import { hasBinary } from '../helpers/tools.js';

describe.skipIf(!hasBinary('consul'))('ConsulKvRulesStore (real Consul)', () => {
  let consul: ConsulAgent;
  let n = 0;

  beforeAll(async () => {
    consul = await startConsul();
  });
  afterAll(stopAllProcesses);

  // Each test gets its own prefix in the one agent.
  rulesStoreContract(() => new ConsulKvRulesStore({ address: consul.httpAddr, prefix: `shadowplane/test-${++n}`, wait: '2s' }));
});
