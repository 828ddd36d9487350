// serve with both inputs in Consul: the catalog as registry and KV as the rules store,
// as several replicas would run. Rules written through one admin API are read from KV;
// a conflicting write is refused; instances follow their tags.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConsul, registerService, type ConsulAgent } from '../helpers/consul.js';
import { getJson } from '../helpers/http.js';
import { showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { logRecords, startServe, type ServeProcess } from '../helpers/shadowplane.js';
import { hasBinary } from '../helpers/tools.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'consul-e2e-token-0123456789';
const BETA = 'services:\n  api:\n    routes:\n      - name: beta-users\n        match: { headers: [{ name: x-beta, exact: "true" }] }\n        to: beta\n';

interface Status {
  sources: { source: string; healthy: boolean; updates: number }[];
}

describe.skipIf(!hasBinary('consul'))('serve on Consul (catalog and KV)', () => {
  let consul: ConsulAgent;
  let replicas: ServeProcess[];
  const args = (): string[] => ['--registry', 'consul', '--rules-store', 'consul', '--consul-address', consul.httpAddr];

  beforeAll(async () => {
    consul = await startConsul();
    await registerService(consul, { name: 'api', id: 'api-1', port: 9001 });
    await fetch(`${consul.url}/v1/kv/shadowplane/rules/docs/base`, { method: 'PUT', body: '{}\n' });
    // Two replicas on one Consul: they hold no state of their own.
    replicas = [await startServe(args(), { SHADOWPLANE_ADMIN_TOKEN: TOKEN }), await startServe(args(), { SHADOWPLANE_ADMIN_TOKEN: TOKEN })];
  });
  afterAll(stopAllProcesses);

  it('reads services from the catalog and rules from KV, in every replica', async () => {
    for (const r of replicas) showLogsOnFailure(r.process);
    const [one, two] = replicas as [ServeProcess, ServeProcess];
    const put = await fetch(`${one.adminUrl}/v1/rules/api`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml', 'if-none-match': '*' },
      body: BETA,
    });
    expect(put.status).toBe(200);
    for (const r of replicas) {
      await waitFor(() => logRecords(r.process).some((l) => l.msg === 'rules loaded' && l.services === 1), { description: 'each replica to load the rule from KV' });
    }
    // The second replica serves the document the first one wrote, at the same version.
    const fromTwo = await getJson<{ version: string }>(`${two.adminUrl}/v1/rules/api`);
    expect(fromTwo.version).toBe(((await put.json()) as { document: { version: string } }).document.version);
  });

  it('refuses a write made with a version another replica has replaced', async () => {
    const [one, two] = replicas as [ServeProcess, ServeProcess];
    const { version } = await getJson<{ version: string }>(`${one.adminUrl}/v1/rules/api`);
    const write = (url: string, text: string) =>
      fetch(`${url}/v1/rules/api`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml', 'if-match': `"${version}"` }, body: text });
    expect((await write(one.adminUrl, BETA.replace('beta-users', 'beta-a'))).status).toBe(200);
    const late = await write(two.adminUrl, BETA.replace('beta-users', 'beta-b'));
    expect(late.status).toBe(409);
    expect(((await late.json()) as { error: { code: string } }).error.code).toBe('SP_RULES_STALE_VERSION');
  });

  it('follows a tag added in the catalog', async () => {
    const [one] = replicas as [ServeProcess];
    const before = logRecords(one.process).filter((l) => l.msg === 'registry from Consul').length;
    await registerService(consul, { name: 'api', id: 'api-1', port: 9001, tags: ['beta'] });
    await waitFor(() => logRecords(one.process).filter((l) => l.msg === 'registry from Consul').length > before, { description: 'the tag change to arrive' });
    const status = await getJson<Status>(`${one.adminUrl}/v1/status`);
    expect(status.sources.find((s) => s.source === 'consul-catalog')).toMatchObject({ healthy: true });
  });
});
