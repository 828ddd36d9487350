// Service names are virtual host domains. Envoy compares domains with ASCII letters
// lowered, and reads a `*` at either end of one as a wildcard: a registry with `Web`
// and `web`, or with `x` and `x:*` (Consul keeps all four), would give the edge and
// access gateways a route configuration the real Envoy refuses whole. Shown here on
// `envoy --mode validate`, before and after refuseNameClashes, with the same static
// bootstraps the golden outputs are checked through.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyRuleSet } from '../../src/model/rules.js';
import type { Model, Registry, Service } from '../../src/model/types.js';
import { refuseNameClashes } from '../../src/translate/name-clashes.js';
import { parseGoldenInput, renderGolden } from '../helpers/golden.js';
import { bootstrapYaml, envoyValidate, staticBootstrap, type ValidateResult } from '../helpers/static-bootstrap.js';
import { hasBinary, requireBinary } from '../helpers/tools.js';

/** The proxies to render (the file registry's names are DNS labels: the registry is made below, as Consul's would read). */
const INPUT = `
registry: {}
proxies:
  - metadata: { role: edge, listener_address: 127.0.0.1, listener_port: 10000 }
  - metadata: { role: access, listener_address: 127.0.0.1, listener_port: 10001, audit_log_path: /dev/stdout }
`;

function registryOf(names: string[]): Registry {
  let port = 9001;
  const service = (name: string): Service => ({ name, instances: [{ id: `${name}-1`, address: '127.0.0.1', port: port++, tags: [], meta: {} }] });
  return { services: new Map(names.map((name) => [name, service(name)])) };
}

describe.skipIf(!hasBinary('envoy'))('service names Envoy would read as one domain: envoy --mode validate', () => {
  let envoy = '';
  let dir = '';
  beforeAll(() => {
    envoy = requireBinary('envoy');
    dir = mkdtempSync(join(tmpdir(), 'domains-envoy-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const golden = parseGoldenInput('domains.yaml', INPUT);

  /** Each proxy's configuration for `model`, as Envoy validates it. */
  async function validate(model: Model, label: string): Promise<ValidateResult[]> {
    const output = renderGolden({ ...golden, model });
    const results: ValidateResult[] = [];
    for (const [i, proxy] of output.proxies.entries()) {
      const file = join(dir, `${label}-${i}.yaml`);
      const bootstrap = staticBootstrap({
        node: { id: `domains-${label}-${i}`, cluster: 'domains', metadata: proxy.metadata },
        clusters: [...output.clusters, ...(proxy.clusters ?? [])],
        endpoints: output.endpoints,
        listeners: proxy.listeners,
        routes: proxy.routes,
      });
      writeFileSync(file, bootstrapYaml(bootstrap));
      results.push(await envoyValidate(envoy, file));
    }
    return results;
  }

  // Code-unit order, as sources hand services over.
  describe.each([
    { label: 'case', names: ['Web', 'api', 'web'], refused: ['Web'], duplicate: 'web' },
    { label: 'wildcard', names: ['api', 'x', 'x:*'], refused: ['x:*'], duplicate: 'x:\\*' },
  ])('$label: $names', ({ label, names, refused: expected, duplicate }) => {
    const registry = registryOf(names);

    it("Envoy refuses both gateways' routes when the registry is served as it is", async () => {
      const results = await validate({ ...golden.model, registry }, `${label}-as-is`);
      expect(results.map((r) => r.code !== 0)).toEqual([true, true]);
      for (const r of results) expect(r.output).toMatch(new RegExp(`Only unique values for domains are permitted\\. Duplicate entry of domain ${duplicate} `));
    });

    it('Envoy accepts them once the service that takes the domain is left out', async () => {
      const { registry: served, refused } = refuseNameClashes(registry, emptyRuleSet());
      expect(refused.map((r) => r.service)).toEqual(expected);
      const results = await validate({ ...golden.model, registry: served }, `${label}-served`);
      for (const r of results) expect(r.code, r.output).toBe(0);
    });
  });
});
