// The rules CLI and admin API end to end, against a running `shadowplane serve` with a
// directory store: what a platform engineer does on an ordinary day.
import { cpSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { logRecords, repoRoot, runCli, startServe, type ServeProcess } from '../helpers/shadowplane.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'e2e-token-0123456789abcdef';

describe('rules CLI against a running serve', () => {
  let serve: ServeProcess;
  let rulesDir: string;
  let work: string;
  let cli: (args: string[], env?: NodeJS.ProcessEnv) => ReturnType<typeof runCli>;
  const rulesLoaded = (): number => logRecords(serve.process).filter((r) => r.msg === 'rules loaded').length;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'rules-cli-'));
    rulesDir = path.join(work, 'rules');
    cpSync(path.join(repoRoot, 'examples/rules'), rulesDir, { recursive: true });
    serve = await startServe(['--rules-path', rulesDir], { SHADOWPLANE_ADMIN_TOKEN: TOKEN });
    cli = (args, env = {}) =>
      runCli(args, { SHADOWPLANE_ADMIN_URL: serve.adminUrl, SHADOWPLANE_ADMIN_TOKEN: TOKEN, ...env });
  });
  afterAll(stopAllProcesses);

  it('validates files offline, with every problem located', () => {
    const bad = path.join(work, 'bad.yaml');
    writeFileSync(bad, 'services:\n  api:\n    routes:\n      - name: x\n        match: { headers: [{ name: x-beta, regex: "a\\\\1" }] }\n        to: beta\n');
    const result = runCli(['rules', 'validate', bad]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/error: .*bad\.yaml:5:\d+: services\.api\.routes\[0\]\.match\.headers\[0\]\.regex: .*\[SP_RULE_REGEX_INVALID\]/);
    expect(runCli(['rules', 'validate', path.join(repoRoot, 'examples/rules'), '--registry', path.join(repoRoot, 'examples/registry')]).status).toBe(0);
  });

  it('lists documents and shows the rules of a service', () => {
    showLogsOnFailure(serve.process);
    const list = cli(['rules', 'get']);
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(/^api\t[0-9a-f]{16}\ngateway\t[0-9a-f]{16}\n$/);
    const api = cli(['rules', 'get', 'api']);
    expect(api.stdout).toContain('# api (version');
    expect(api.stdout).toContain('name: beta-users');
    expect(cli(['rules', 'get', 'nosuch']).status).toBe(1);
  });

  it('applies a new document, says when nothing changed, and shows a diff before a change', () => {
    const file = path.join(work, 'web.yaml');
    writeFileSync(file, 'services:\n  web:\n    mirrors:\n      - { name: copy, to: { service: api, subset: shadow }, percent: 1 }\n');
    const before = rulesLoaded();
    const applied = cli(['rules', 'apply', '-f', file]);
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toMatch(/^web: created \(version [0-9a-f]{16}\)/);
    expect(readFileSync(path.join(rulesDir, 'web.yaml'), 'utf8')).toBe(readFileSync(file, 'utf8'));
    expect(cli(['rules', 'apply', '-f', file]).stdout).toMatch(/web: unchanged/);

    writeFileSync(file, readFileSync(file, 'utf8').replace('percent: 1', 'percent: 2'));
    const diff = cli(['rules', 'diff', '-f', file]);
    expect(diff.status).toBe(1);
    expect(diff.stdout).toMatch(/^-.*percent: 1/m);
    expect(diff.stdout).toMatch(/^\+.*percent: 2/m);
    // serve's rules source picked the new document up.
    return waitFor(() => rulesLoaded() > before, { description: 'serve to reload the rules' });
  });

  it('refuses an invalid document as a whole, leaving the store as it was', () => {
    const file = path.join(work, 'api.yaml');
    writeFileSync(file, 'services:\n  api:\n    routes:\n      - name: beta-users\n        match: { headers: [{ name: x-beta, exact: "true", present: true }] }\n        to: beta\n');
    const stored = readFileSync(path.join(rulesDir, 'api.yaml'), 'utf8');
    const result = cli(['rules', 'apply', '-f', file]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/SP_RULES_INVALID: rule document "api" is invalid; nothing was changed/);
    expect(result.stderr).toMatch(/\[SP_RULE_MATCHER_COUNT\]/);
    expect(readFileSync(path.join(rulesDir, 'api.yaml'), 'utf8')).toBe(stored);
  });

  it('refuses changes without the token', () => {
    const result = cli(['mirror', 'set', 'api', '--to', 'shadow', '--percent', '5'], { SHADOWPLANE_ADMIN_TOKEN: '' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/SP_ADMIN_UNAUTHORIZED/);
  });

  it('sets a mirror percentage and a time-boxed dev route with the shorthands, keeping comments', () => {
    const mirror = cli(['mirror', 'set', 'api', '--to', 'shadow', '--percent', '0.5', '--name', 'shadow-10', '--actor', 'alice']);
    expect(mirror.stderr).toBe('');
    expect(mirror.stdout).toMatch(/mirror of api to shadow at 0\.5%: api \(version/);
    const dev = cli(['route', 'dev', 'api', '--key', 'laptop-1', '--to', 'dev-laptop-1', '--for', '2h', '--actor', 'bob']);
    expect(dev.status).toBe(0);
    // No instance carries dev-laptop-1 yet: written, with a warning.
    expect(dev.stderr).toMatch(/warning: .*\[SP_RULE_SUBSET_EMPTY\]/);

    const text = readFileSync(path.join(rulesDir, 'api.yaml'), 'utf8');
    expect(text).toContain('# Beta users (flagged by a header)');
    const doc = parse(text) as { services: { api: { mirrors: { name: string; percent: number }[]; dev_routes: { key: string; owner: string; expires: string }[] } } };
    expect(doc.services.api.mirrors).toEqual([expect.objectContaining({ name: 'shadow-10', percent: 0.5 })]);
    const route = doc.services.api.dev_routes[0]!;
    expect(route).toMatchObject({ key: 'laptop-1', owner: 'bob' });
    const hours = (Date.parse(route.expires) - Date.now()) / 3_600_000;
    expect(hours).toBeGreaterThan(1.9);
    expect(hours).toBeLessThanOrEqual(2);

    const history = cli(['rules', 'history']);
    expect(history.stdout.split('\n').slice(0, 2).map((l) => l.split('\t').slice(1).join(' '))).toEqual(['bob put api', 'alice put api']);
    expect(readdirSync(rulesDir)).not.toContain(expect.stringMatching(/\.tmp$/));
  });

  it('reports a server that is not there', () => {
    const result = runCli(['rules', 'get'], { SHADOWPLANE_ADMIN_URL: 'http://127.0.0.1:1' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/cannot reach the admin API at http:\/\/127\.0\.0\.1:1/);
  });
});
