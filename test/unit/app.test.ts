// The control plane in-process, on ports the OS picks: a registry subset whose cluster
// name a rule's mirror has is left out, and that is logged, counted and listed.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createShadowplane, type Shadowplane } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';

const REGISTRY = `services:
  - { name: api, id: api-1, address: 127.0.0.1, port: 9001 }
  - { name: api, id: api-dev-1, address: 127.0.0.1, port: 9002, tags: [dev-a] }
  - { name: api, id: api-odd-1, address: 127.0.0.1, port: 9003, tags: [dev-a.mirror-m] }
  - { name: web, id: web-1, address: 127.0.0.1, port: 9101 }
`;
// Mirror m to api's dev-a subset is cluster api.dev-a.mirror-m, the name of api's subset dev-a.mirror-m.
const RULES = 'services:\n  web:\n    mirrors:\n      - { name: m, to: { service: api, subset: dev-a }, percent: 5 }\n';

describe('the control plane', () => {
  const running: Shadowplane[] = [];
  afterEach(async () => {
    await Promise.all(running.map((s) => s.stop()));
    running.length = 0;
  });

  it('leaves out a registry subset whose cluster name is taken, and says so in the log, the metrics and the status', async () => {
    const registryDir = mkdtempSync(path.join(tmpdir(), 'app-registry-'));
    const rulesDir = mkdtempSync(path.join(tmpdir(), 'app-rules-'));
    writeFileSync(path.join(registryDir, 'services.yaml'), REGISTRY);
    writeFileSync(path.join(rulesDir, 'web.yaml'), RULES);
    const config = loadConfig({
      flags: [
        ['registry.path', registryDir],
        ['rules.path', rulesDir],
        ['xds.address', '127.0.0.1:0'],
        ['admin.address', '127.0.0.1:0'],
      ].map(([key, value]) => ({ key: key!, value: value!, flag: `--set ${key}` })),
    });
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const app = createShadowplane(config, pino({ level: 'error' }, sink));
    running.push(app);
    const { adminPort } = await app.start();

    const errors = lines.filter((l) => l.component === 'translate');
    expect(errors).toEqual([
      expect.objectContaining({
        service: 'api',
        subset: 'dev-a.mirror-m',
        cluster: 'api.dev-a.mirror-m',
        instance_ids: ['api-odd-1'],
        msg: 'subset "dev-a.mirror-m" of service "api" is not served: mirror "m" of "web" has the cluster name "api.dev-a.mirror-m", and Envoy takes each cluster name once',
      }),
    ]);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(metrics).toMatch(/^shadowplane_registry_subsets_refused 1$/m);
    const status = (await (await fetch(`http://127.0.0.1:${adminPort}/v1/status`)).json()) as { refused_subsets: unknown };
    expect(status.refused_subsets).toEqual([expect.objectContaining({ service: 'api', subset: 'dev-a.mirror-m', kind: 'cluster', instances: ['api-odd-1'] })]);
  });
});
