// Every golden output is configuration the real Envoy accepts: for each case and each
// proxy, the static bootstrap equivalent to what that proxy gets over ADS
// (test/helpers/static-bootstrap.ts) goes through `envoy --mode validate`. Envoy then
// checks what our protobuf encoding cannot: its own validation rules, that each
// extension exists and accepts its config, that every route's cluster exists.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GOLDEN_DIR, UPDATE_HINT, listGoldenCases, readGoldenOutput } from '../helpers/golden.js';
import { bootstrapYaml, envoyValidate, staticBootstrap } from '../helpers/static-bootstrap.js';
import { hasBinary, requireBinary } from '../helpers/tools.js';

describe.skipIf(!hasBinary('envoy'))('golden outputs: envoy --mode validate', () => {
  // Looked up in the hooks, not while collecting: a skipped suite is still collected.
  let envoy = '';
  let dir = '';
  beforeAll(() => {
    envoy = requireBinary('envoy');
    dir = mkdtempSync(join(tmpdir(), 'golden-envoy-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // Never rewrites: listing with update=false only reads the folder.
  for (const name of listGoldenCases(GOLDEN_DIR, false).cases) {
    const output = readGoldenOutput(name);
    if (!output) {
      it(name, () => expect.fail(`test/golden/${name}/output.yaml is missing: create it with ${UPDATE_HINT}`));
      continue;
    }
    output.proxies.forEach((proxy, i) => {
      const role = typeof proxy.metadata.role === 'string' ? proxy.metadata.role : 'edge';
      it(`${name}: proxies[${i}] (${role})`, async () => {
        const bootstrap = staticBootstrap({
          node: { id: `golden-${name}-${i}`, cluster: proxy.cluster || 'golden', metadata: proxy.metadata },
          clusters: [...output.clusters, ...(proxy.clusters ?? [])],
          endpoints: output.endpoints,
          listeners: proxy.listeners,
          routes: proxy.routes,
        });
        const file = join(dir, `${name}-${i}.yaml`);
        const yaml = bootstrapYaml(bootstrap);
        writeFileSync(file, yaml);

        const result = await envoyValidate(envoy, file);
        expect(result.code, `Envoy refused the bootstrap of test/golden/${name} proxies[${i}]:\n${result.output}\n--- ${file}:\n${yaml}`).toBe(0);
        expect(result.deprecated, `Envoy warns about deprecated fields:\n${result.output}`).toEqual([]);
      });
    });
  }
});
