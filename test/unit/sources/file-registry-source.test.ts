import { mkdtempSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import type { Registry } from '../../../src/model/types.js';
import { FileRegistrySource } from '../../../src/sources/file-registry.js';
import { waitFor } from '../../helpers/wait.js';

const apiOn = (port: number, tags = '[]'): string => `services:\n  - { name: api, id: api-1, address: 127.0.0.1, port: ${port}, tags: ${tags} }\n`;

describe('FileRegistrySource (hot reload)', () => {
  const sources: FileRegistrySource[] = [];
  afterEach(async () => {
    await Promise.all(sources.map((s) => s.stop()));
    sources.length = 0;
  });

  async function started(dir: string): Promise<{ source: FileRegistrySource; updates: Registry[] }> {
    const updates: Registry[] = [];
    const source = new FileRegistrySource({ dir, logger: silentLogger(), debounceMs: 20, pollMs: 50 });
    sources.push(source);
    await source.start((r) => updates.push(r));
    return { source, updates };
  }
  const portOf = (r: Registry | undefined): number | undefined => r?.services.get('api')?.instances[0]?.port;

  it('reloads an edited file, and moves an instance when its tag changes', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'reg-'));
    writeFileSync(path.join(dir, 's.yaml'), apiOn(1));
    const { updates } = await started(dir);
    expect(portOf(updates[0])).toBe(1);
    writeFileSync(path.join(dir, 's.yaml'), apiOn(1, '[beta]'));
    await waitFor(() => updates.at(-1)?.services.get('api')?.instances[0]?.tags.includes('beta'), { description: 'the beta tag' });
  });

  it('refuses a half-written file and keeps the previous registry, then takes the finished one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'reg-'));
    writeFileSync(path.join(dir, 's.yaml'), apiOn(1));
    const { source, updates } = await started(dir);
    writeFileSync(path.join(dir, 's.yaml'), 'services:\n  - { name: api, id: api-1, address: 127.0.0.1, po');
    await waitFor(() => !source.status().healthy, { description: 'the source to report the bad file' });
    expect(source.status().lastError).toMatch(/s\.yaml:\d+:\d+/);
    expect(updates).toHaveLength(1);
    writeFileSync(path.join(dir, 's.yaml'), apiOn(2));
    await waitFor(() => portOf(updates.at(-1)) === 2, { description: 'the finished file' });
    expect(source.status()).toMatchObject({ healthy: true, updates: 2 });
  });

  it('keeps the last registry when the folder is deleted, and picks it up again when it is back', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'reg-'));
    const dir = path.join(root, 'registry');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 's.yaml'), apiOn(1));
    const { source, updates } = await started(dir);
    rmSync(dir, { recursive: true });
    await waitFor(() => !source.status().healthy, { description: 'the source to notice the deleted folder' });
    expect(source.status().lastError).toMatch(/cannot read the registry folder \(ENOENT\)/);
    expect(updates).toHaveLength(1);
    const staging = path.join(root, 'staging');
    mkdirSync(staging);
    writeFileSync(path.join(staging, 's.yaml'), apiOn(3));
    renameSync(staging, dir);
    await waitFor(() => portOf(updates.at(-1)) === 3, { description: 'the folder to be read again' });
  });

  it('does not emit when a rewrite changes nothing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'reg-'));
    writeFileSync(path.join(dir, 's.yaml'), apiOn(1));
    const { source, updates } = await started(dir);
    writeFileSync(path.join(dir, 's.yaml'), `# same content, new comment\n${apiOn(1)}`);
    writeFileSync(path.join(dir, 't.yaml'), 'services: []\n');
    await waitFor(() => (source.status().lastSuccessMs ?? 0) > 0 && source.status().healthy, { description: 'a reload' });
    // A later, real change proves the watcher ran after the no-op edits.
    writeFileSync(path.join(dir, 's.yaml'), apiOn(4));
    await waitFor(() => portOf(updates.at(-1)) === 4, { description: 'the real change' });
    expect(updates.map(portOf)).toEqual([1, 4]);
  });

  it('refuses to start on a bad registry', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'reg-'));
    writeFileSync(path.join(dir, 's.yaml'), 'services: [');
    const source = new FileRegistrySource({ dir, logger: silentLogger() });
    await expect(source.start(() => {})).rejects.toThrow(/s\.yaml:1:\d+/);
  });
});
