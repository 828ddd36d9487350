// Golden translation tests: test/golden/<case>/input.yaml → output.yaml (see
// test/golden/README.md). Rewrite the outputs with
//   UPDATE_GOLDEN=1 npx vitest run test/unit/translate/golden.test.ts
// and read the diff before committing it: an output is the review of the translator.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  GoldenInputError,
  casePaths,
  checkGoldenFile,
  listGoldenCases,
  parseGoldenInput,
  runGoldenCase,
  updateGolden,
} from '../../helpers/golden.js';

describe('golden translation', () => {
  const listing = listGoldenCases();

  it('has an output for every input and no stale output or stray file', () => {
    expect(listing.problems, listing.problems.join('\n')).toEqual([]);
    expect(listing.cases.length).toBeGreaterThan(0);
  });

  for (const name of listing.cases) {
    it(`${name}${updateGolden() ? ' (rewriting output.yaml)' : ''}`, () => {
      const problem = runGoldenCase(name);
      if (problem) expect.fail(problem);
    });
  }
});

describe('the golden machinery', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'golden-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  const INPUT = [
    'registry:',
    '  services:',
    '    - { name: api, id: api-1, address: 127.0.0.1, port: 9001 }',
    'proxies:',
    '  - metadata: { role: edge }',
    '',
  ].join('\n');

  it('reports an input without output, and an output without input, as stale', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'new-case'));
    writeFileSync(casePaths('new-case', dir).input, INPUT);
    mkdirSync(join(dir, 'gone'));
    writeFileSync(casePaths('gone', dir).output, 'clusters: []\n');
    writeFileSync(join(dir, 'gone', 'notes.txt'), '');

    const listing = listGoldenCases(dir, false);
    expect(listing.cases).toEqual(['new-case']);
    expect(listing.problems).toEqual([
      expect.stringMatching(/gone\/notes\.txt: a stray file/),
      expect.stringMatching(/gone\/output\.yaml: stale: there is no input\.yaml beside it/),
    ]);
    expect(runGoldenCase('new-case', dir, false)).toMatch(/new-case\/output\.yaml is missing: create it with UPDATE_GOLDEN=1/);
  });

  it('with the flag, writes missing outputs and removes stale ones', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'new-case'));
    writeFileSync(casePaths('new-case', dir).input, INPUT);
    mkdirSync(join(dir, 'gone'));
    writeFileSync(casePaths('gone', dir).output, 'clusters: []\n');

    expect(listGoldenCases(dir, true)).toEqual({ cases: ['new-case'], problems: [] });
    expect(existsSync(join(dir, 'gone'))).toBe(false);
    expect(runGoldenCase('new-case', dir, true)).toBeUndefined();
    const written = readFileSync(casePaths('new-case', dir).output, 'utf8');
    expect(written).toContain('cluster_name: api');
    expect(runGoldenCase('new-case', dir, false)).toBeUndefined();
  });

  it('shows a difference as a unified diff with the way to rewrite', () => {
    const dir = tempDir();
    const file = join(dir, 'output.yaml');
    writeFileSync(file, 'clusters:\n  - name: api\n');
    const problem = checkGoldenFile(file, 'clusters:\n  - name: api.beta\n', false);
    expect(problem).toContain('UPDATE_GOLDEN=1');
    expect(problem).toContain('-  - name: api\n+  - name: api.beta');
  });

  it('refuses an input whose rules do not validate, listing every problem with its place', () => {
    const text = [
      'registry:',
      '  services:',
      '    - { name: api, id: api-1, address: 127.0.0.1, port: 9001 }',
      'rules:',
      '  services:',
      '    api:',
      '      routes:',
      '        - { name: Beta, to: beta }',
      '    nope:',
      '      routes: [{ name: x, to: beta }]',
      'proxies:',
      '  - metadata: { role: bouncer }',
      '',
    ].join('\n');
    let error: unknown;
    try {
      parseGoldenInput('case/input.yaml', text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(GoldenInputError);
    const problems = (error as GoldenInputError).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^case\/input\.yaml:8:\d+: services\.api\.routes\[0\]\.name: .*\[SP_RULE_INVALID_VALUE\]$/),
        expect.stringMatching(/^case\/input\.yaml:9:\d+: services\.nope: .*\[SP_RULE_UNKNOWN_SERVICE\]$/),
        expect.stringMatching(/^case\/input\.yaml:12:\d+: proxies\[0\]: node\.metadata\.role: "bouncer" is not a role/),
      ]),
    );
  });

  it('refuses an input of the wrong shape', () => {
    expect(() => parseGoldenInput('case/input.yaml', 'registry: {}\nproxies: []\nextra: 1\n')).toThrow(/proxies: list at least one proxy[\s\S]*extra/);
  });
});
