// One behaviour for every rules store: the same tests run against the directory store
// and against Consul KV, so the admin API can rely on either.
import { expect, it } from 'vitest';
import { StaleVersionError, type RulesStore } from '../../src/sources/rules-store.js';
import { waitFor } from './wait.js';

export function rulesStoreContract(make: () => RulesStore): void {
  it('creates, reads, replaces with the current version and deletes a document', async () => {
    const store = make();
    const created = await store.put('api', 'services: {}\n', { expectedVersion: '', actor: 'alice' });
    expect(await store.get('api')).toEqual(created);
    const replaced = await store.put('api', 'services:\n  api: {}\n', { expectedVersion: created.version, actor: 'bob' });
    expect(replaced.version).not.toBe(created.version);
    expect((await store.read()).map((d) => d.name)).toEqual(['api']);
    await store.delete('api', { expectedVersion: replaced.version, actor: 'carol' });
    expect(await store.get('api')).toBeUndefined();
  });

  it('refuses a write with a stale version, and a create over an existing document', async () => {
    const store = make();
    const first = await store.put('web', 'a: 1\n', { actor: 'alice' });
    await store.put('web', 'a: 2\n', { expectedVersion: first.version, actor: 'bob' });
    await expect(store.put('web', 'a: 3\n', { expectedVersion: first.version, actor: 'carol' })).rejects.toBeInstanceOf(StaleVersionError);
    await expect(store.put('web', 'a: 4\n', { expectedVersion: '', actor: 'dave' })).rejects.toThrow(/already exists/);
    await expect(store.delete('web', { expectedVersion: first.version, actor: 'erin' })).rejects.toBeInstanceOf(StaleVersionError);
    expect((await store.get('web'))?.text).toBe('a: 2\n');
  });

  it('lets exactly one of two concurrent writers with the same version win', async () => {
    const store = make();
    const base = await store.put('race', 'v: 0\n', { actor: 'setup' });
    const results = await Promise.allSettled([
      store.put('race', 'v: 1\n', { expectedVersion: base.version, actor: 'one' }),
      store.put('race', 'v: 2\n', { expectedVersion: base.version, actor: 'two' }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const winner = results.find((r) => r.status === 'fulfilled')!;
    expect((await store.get('race'))?.text).toBe(winner.value.text);
  });

  it('keeps a history of who changed what, newest first', async () => {
    const store = make();
    const a = await store.put('hist', 'x: 1\n', { actor: 'alice' });
    await store.put('hist', 'x: 2\n', { expectedVersion: a.version, actor: 'bob' });
    const history = (await store.history()).filter((h) => h.name === 'hist');
    expect(history.map((h) => [h.actor, h.action, h.text])).toEqual([
      ['bob', 'put', 'x: 2\n'],
      ['alice', 'put', 'x: 1\n'],
    ]);
    expect(history[0]!.previousVersion).toBe(a.version);
    expect(Date.parse(history[0]!.at)).toBeGreaterThan(0);
  });

  it('refuses names that are not document names', async () => {
    const store = make();
    await expect(store.put('../etc', 'x', { actor: 'mallory' })).rejects.toThrow(/not a rule document name/);
    await expect(store.put('api.yaml', 'x', { actor: 'mallory' })).rejects.toThrow(/not a rule document name/);
  });

  it('tells a watcher about changes', async () => {
    const store = make();
    let changes = 0;
    const stop = store.watch(() => changes++);
    try {
      const before = changes;
      await store.put('watched', 'w: 1\n', { actor: 'alice' });
      await waitFor(() => changes > before, { description: 'a change notice', timeoutMs: 10_000 });
    } finally {
      stop();
    }
  });
}
