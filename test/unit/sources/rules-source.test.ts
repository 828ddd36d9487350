import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import type { RuleSet } from '../../../src/model/rules.js';
import { DirectoryRulesStore } from '../../../src/sources/rules-directory.js';
import { RulesSource } from '../../../src/sources/rules-source.js';
import { waitFor } from '../../helpers/wait.js';

const BETA = 'services:\n  api:\n    routes:\n      - name: beta\n        match: { headers: [{ name: x-beta, exact: "true" }] }\n        to: beta\n';
const INVALID = 'services:\n  api:\n    routes:\n      - name: beta\n        match: { headers: [{ name: x-beta, regex: "(?=a)" }] }\n        to: beta\n';
const devRoute = (expires: Date): string =>
  `services:\n  api:\n    dev_routes:\n      - { key: laptop-1, to: dev-laptop-1, owner: alice, expires: "${expires.toISOString().replace(/\.\d+Z$/, 'Z')}" }\n`;

describe('RulesSource', () => {
  const running: RulesSource[] = [];
  afterEach(async () => {
    await Promise.all(running.map((s) => s.stop()));
    running.length = 0;
  });

  async function start(dir: string): Promise<{ source: RulesSource; sets: RuleSet[] }> {
    const sets: RuleSet[] = [];
    const source = new RulesSource({ store: new DirectoryRulesStore(dir, { debounceMs: 10, pollMs: 50 }), logger: silentLogger() });
    running.push(source);
    await source.start((s) => sets.push(s));
    return { source, sets };
  }
  const folder = (files: Record<string, string>): string => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rules-src-'));
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
    return dir;
  };
  const routeNames = (s: RuleSet | undefined): string[] => s?.services.api?.routes.map((r) => r.name) ?? [];

  it('refuses an invalid set whole and keeps the last good one', async () => {
    const dir = folder({ 'api.yaml': BETA, 'other.yaml': '{}\n' });
    const { source, sets } = await start(dir);
    expect(routeNames(sets[0])).toEqual(['beta']);
    writeFileSync(path.join(dir, 'other.yaml'), INVALID.replace('api:', 'web:'));
    await waitFor(() => !source.status().healthy, { description: 'the refusal' });
    expect(source.status().lastError).toMatch(/rules refused: 1 problem/);
    expect(sets).toHaveLength(1);
    writeFileSync(path.join(dir, 'other.yaml'), '{}\n');
    await waitFor(() => source.status().healthy, { description: 'recovery' });
    expect(sets).toHaveLength(1); // the same rules as before: nothing to emit
  });

  it('keeps the last good rules when the folder is deleted or emptied, and says so', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'rules-src-'));
    const dir = path.join(root, 'rules');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'api.yaml'), BETA);
    const { source, sets } = await start(dir);
    unlinkSync(path.join(dir, 'api.yaml'));
    await waitFor(() => !source.status().healthy, { description: 'the empty folder to be noticed' });
    expect(source.status().lastError).toMatch(/holds no rule document .*\{\}/);
    rmSync(dir, { recursive: true });
    await waitFor(() => /ENOENT/.test(source.status().lastError ?? ''), { description: 'the deleted folder to be noticed' });
    expect(sets).toHaveLength(1);
    const staging = path.join(root, 'staging');
    mkdirSync(staging);
    writeFileSync(path.join(staging, 'api.yaml'), BETA.replace('name: beta', 'name: beta-2'));
    renameSync(staging, dir);
    await waitFor(() => routeNames(sets.at(-1)).includes('beta-2'), { description: 'the folder to be read again' });
  });

  it('removes every rule only for an explicit empty document', async () => {
    const dir = folder({ 'api.yaml': BETA });
    const { sets } = await start(dir);
    writeFileSync(path.join(dir, 'api.yaml'), '{}\n');
    await waitFor(() => sets.length === 2, { description: 'the empty rule set' });
    expect(sets[1]!.services).toEqual({});
  });

  it('starts without rules (and unhealthy) when the store has none yet', async () => {
    const { source, sets } = await start('/nonexistent/rules');
    expect(sets).toEqual([expect.objectContaining({ services: {} })]);
    expect(source.status()).toMatchObject({ healthy: false, lastError: expect.stringMatching(/ENOENT/) });
  });

  it('drops a dev route by itself when it expires', async () => {
    const dir = folder({ 'api.yaml': devRoute(new Date(Date.now() + 2_000)) });
    const { sets } = await start(dir);
    expect(sets[0]!.services.api?.dev_routes.map((d) => d.key)).toEqual(['laptop-1']);
    await waitFor(() => sets.length === 2, { description: 'the dev route to expire', timeoutMs: 6_000 });
    expect(sets[1]!.services.api?.dev_routes ?? []).toEqual([]);
  });
});
