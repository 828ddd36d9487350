import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectoryRulesStore } from '../../../src/sources/rules-directory.js';
import { RulesUnavailableError } from '../../../src/sources/rules-store.js';
import { rulesStoreContract } from '../../helpers/rules-store-contract.js';

const fresh = (): DirectoryRulesStore => new DirectoryRulesStore(mkdtempSync(path.join(tmpdir(), 'rules-')), { debounceMs: 10, pollMs: 50 });

describe('DirectoryRulesStore', () => {
  rulesStoreContract(fresh);

  it('writes <name>.yaml and leaves no temporary files', async () => {
    const store = fresh();
    await store.put('api', 'services: {}\n', { actor: 'alice' });
    expect(readdirSync(store.dir).sort()).toEqual(['.history.jsonl', 'api.yaml']);
  });

  it('reports a missing folder as unavailable', async () => {
    const store = new DirectoryRulesStore('/nonexistent/rules');
    await expect(store.read()).rejects.toBeInstanceOf(RulesUnavailableError);
    await expect(store.read()).rejects.toThrow(/cannot read the rules folder \(ENOENT\)/);
  });
});
