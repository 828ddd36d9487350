import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RegistryError, loadRegistryDir } from '../../../src/sources/file-registry.js';

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'shadowplane-registry-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

function problemsOf(dir: string): string {
  try {
    loadRegistryDir(dir);
  } catch (err) {
    if (err instanceof RegistryError) return err.problems.join('\n');
    throw err;
  }
  throw new Error('expected a RegistryError');
}

describe('file registry', () => {
  it('reads the example registry', () => {
    const registry = loadRegistryDir('examples/registry');
    expect([...registry.services.keys()]).toEqual(['api', 'web']);
    const beta = registry.services.get('api')!.instances.find((i) => i.id === 'api-beta-1');
    expect(beta).toEqual({ id: 'api-beta-1', address: '127.0.0.1', port: 9003, tags: ['beta'], meta: {} });
  });

  it('merges files and gives instances without id a stable one', () => {
    const dir = dirWith({
      'a.yaml': 'services:\n  - { name: api, address: 10.0.0.1, port: 80 }\n',
      'b.yml': 'services:\n  - { name: api, address: 10.0.0.2, port: 80, tags: [beta] }\n',
      'notes.txt': 'ignored',
    });
    const api = loadRegistryDir(dir).services.get('api')!;
    expect(api.instances.map((i) => i.id)).toEqual(['api-10.0.0.1-80', 'api-10.0.0.2-80']);
  });

  const refusals = [
    { name: 'a port out of range', yaml: 'services:\n  - name: api\n    address: a\n    port: 70000\n', expected: /x\.yaml:4:5: services\.0\.port: .*65535/ },
    { name: 'an unknown field', yaml: 'services:\n  - name: api\n    address: a\n    port: 1\n    tagz: [beta]\n', expected: /x\.yaml:5:5: services\.0\.tagz: Unrecognized key/ },
    { name: 'a bad service name', yaml: 'services:\n  - name: Api_1\n    address: a\n    port: 1\n', expected: /x\.yaml:2:5: services\.0\.name: lower-case/ },
    { name: 'a half-written file', yaml: 'services:\n  - name: api\n    address: "10.0.', expected: /x\.yaml:\d+:\d+: / },
    { name: 'a missing address', yaml: 'services:\n  - name: api\n    port: 1\n', expected: /services\.0\.address/ },
  ];

  it.each(refusals)('refuses $name with file, line and field', ({ yaml, expected }) => {
    expect(problemsOf(dirWith({ 'x.yaml': yaml }))).toMatch(expected);
  });

  it('refuses an instance id used twice, naming both files', () => {
    const dir = dirWith({
      'a.yaml': 'services:\n  - { name: api, id: api-1, address: a, port: 1 }\n',
      'b.yaml': 'services:\n  - { name: api, id: api-1, address: b, port: 1 }\n',
    });
    expect(problemsOf(dir)).toMatch(/b\.yaml: services\.0\.id: instance id "api-1" is already used in .*a\.yaml/);
  });

  it('refuses a missing folder', () => {
    expect(problemsOf('/nonexistent/registry')).toMatch(/cannot read the registry folder \(ENOENT\)/);
  });
});
