// The ready bootstraps in envoy/ (one per proxy role): Envoy accepts each, and
// Shadowplane reads each node as the role it claims to be.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { proxyKeyOf } from '../../src/translate/proxy.js';
import { repoRoot } from '../helpers/shadowplane.js';
import { hasBinary, requireBinary } from '../helpers/tools.js';

const dir = path.join(repoRoot, 'envoy');
// static-smoke.yaml is the smoke test's template (with ${...} placeholders), not a ready bootstrap.
const ready = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'static-smoke.yaml').sort();
const roleOf: Record<string, string> = { 'gateway.yaml': 'edge', 'access.yaml': 'access', 'sidecar.yaml': 'sidecar' };

describe('ready bootstraps in envoy/', () => {
  it('has one for every role', () => {
    expect(ready).toEqual(Object.keys(roleOf).sort());
  });

  it.each(ready)('%s names its role in a node Shadowplane accepts', (file) => {
    const node = (parse(readFileSync(path.join(dir, file), 'utf8')) as { node: { cluster: string; metadata: Record<string, unknown> } }).node;
    expect(proxyKeyOf(node.cluster, node.metadata).role).toBe(roleOf[file]);
  });

  describe.skipIf(!hasBinary('envoy'))('Envoy', () => {
    it.each(ready)('accepts %s', (file) => {
      const result = spawnSync(requireBinary('envoy'), ['--mode', 'validate', '-c', path.join(dir, file)], { encoding: 'utf8', timeout: 30_000 });
      expect(result.stdout + result.stderr).toContain(`configuration '${path.join(dir, file)}' OK`);
      expect(result.status).toBe(0);
    });
  });
});
