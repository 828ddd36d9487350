// The admin API in-process (fastify inject), over a real directory store: rules are
// listed, read, validated, written and deleted with optimistic concurrency; changes
// need the bearer token; errors carry stable codes.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildAdminServer } from '../../../src/admin/server.js';
import { createMetrics } from '../../../src/admin/metrics.js';
import { createRulesService } from '../../../src/admin/rules-service.js';
import { silentLogger } from '../../../src/log.js';
import { loadRegistryDir } from '../../../src/sources/file-registry.js';
import { DirectoryRulesStore } from '../../../src/sources/rules-directory.js';

const TOKEN = 'test-token-0123456789';
const BETA = 'services:\n  api:\n    routes:\n      - name: beta-users\n        match: { headers: [{ name: x-beta, exact: "true" }] }\n        to: beta\n';
const BAD_REGEX = 'services:\n  api:\n    routes:\n      - name: beta-users\n        match: { headers: [{ name: x-beta, regex: "(?=x)" }] }\n        to: beta\n';

function setup(options: { token?: string; ready?: boolean } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'admin-rules-'));
  writeFileSync(path.join(dir, 'base.yaml'), '{}\n');
  const store = new DirectoryRulesStore(dir);
  const registry = loadRegistryDir('examples/registry');
  const app = buildAdminServer({
    logger: silentLogger(),
    token: 'token' in options ? options.token : TOKEN,
    metrics: createMetrics().registry,
    rules: createRulesService({ store, registry: () => registry }),
    proxies: () => [],
    notReady: () => (options.ready === false ? ['registry'] : []),
    status: () => ({ ok: true }),
  });
  return { app, dir };
}

const auth = { authorization: `Bearer ${TOKEN}` };
const yamlBody = (text: string) => ({ 'content-type': 'application/yaml', ...auth, payload: text });

describe('admin API', () => {
  const apps: { close(): Promise<unknown> }[] = [];
  afterEach(async () => {
    await Promise.all(apps.map((a) => a.close()));
    apps.length = 0;
  });
  const make = (options?: Parameters<typeof setup>[0]) => {
    const s = setup(options);
    apps.push(s.app);
    return s;
  };

  it('answers health, readiness and metrics', async () => {
    const { app } = make({ ready: false });
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ ready: false, missing: ['registry'] });
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.headers['content-type']).toMatch(/text\/plain/);
    expect(metrics.body).toContain('shadowplane_xds_nacks_total');
  });

  it('creates, reads, replaces with the version and deletes a rule document', async () => {
    const { app, dir } = make();
    const { payload, ...headers } = yamlBody(BETA);
    const created = await app.inject({ method: 'PUT', url: '/v1/rules/api', headers: { ...headers, 'if-none-match': '*', 'x-shadowplane-actor': 'alice' }, payload });
    expect(created.statusCode).toBe(200);
    const version = created.json().document.version as string;
    expect(created.headers.etag).toBe(`"${version}"`);
    expect(readFileSync(path.join(dir, 'api.yaml'), 'utf8')).toBe(BETA);

    const got = await app.inject({ url: '/v1/rules/api' });
    expect(got.json()).toEqual({ name: 'api', text: BETA, version });
    expect((await app.inject({ url: '/v1/rules' })).json().documents.map((d: { name: string }) => d.name)).toEqual(['api', 'base']);

    const replaced = await app.inject({ method: 'PUT', url: '/v1/rules/api', headers: { ...headers, 'if-match': `"${version}"` }, payload: BETA.replace('x-beta', 'x-beta-user') });
    expect(replaced.statusCode).toBe(200);
    const deleted = await app.inject({ method: 'DELETE', url: '/v1/rules/api', headers: { ...auth, 'if-match': replaced.json().document.version } });
    expect(deleted.statusCode).toBe(200);
    expect(readdirSync(dir)).not.toContain('api.yaml');

    const history = (await app.inject({ url: '/v1/rules/history' })).json().history as { actor: string; action: string }[];
    expect(history.map((h) => `${h.actor}:${h.action}`)).toEqual(['admin-api:delete', 'admin-api:put', 'alice:put']);
  });

    const refusals: { name: string; request: () => InjectOptions; status: number; code: string }[] = [
    { name: 'a change without a token', request: () => ({ method: 'PUT', url: '/v1/rules/api', headers: { 'content-type': 'application/yaml' }, payload: BETA }), status: 401, code: 'SP_ADMIN_UNAUTHORIZED' },
    { name: 'a change with a wrong token', request: () => ({ method: 'PUT', url: '/v1/rules/api', headers: { 'content-type': 'application/yaml', authorization: 'Bearer nope' }, payload: BETA }), status: 401, code: 'SP_ADMIN_UNAUTHORIZED' },
    { name: 'a replace without a version', request: () => ({ method: 'PUT', url: '/v1/rules/base', headers: { 'content-type': 'application/yaml', ...auth }, payload: BETA }), status: 428, code: 'SP_RULES_VERSION_REQUIRED' },
    { name: 'a replace with a stale version', request: () => ({ method: 'PUT', url: '/v1/rules/base', headers: { 'content-type': 'application/yaml', ...auth, 'if-match': '"0000000000000000"' }, payload: BETA }), status: 409, code: 'SP_RULES_STALE_VERSION' },
    { name: 'an invalid document', request: () => ({ method: 'PUT', url: '/v1/rules/api', headers: { 'content-type': 'application/yaml', ...auth }, payload: BAD_REGEX }), status: 422, code: 'SP_RULES_INVALID' },
    { name: 'a bad document name', request: () => ({ method: 'PUT', url: '/v1/rules/Bad_Name', headers: { 'content-type': 'application/yaml', ...auth }, payload: BETA }), status: 400, code: 'SP_ADMIN_BAD_REQUEST' },
    { name: 'a missing document', request: () => ({ url: '/v1/rules/nope' }), status: 404, code: 'SP_ADMIN_NOT_FOUND' },
    { name: 'an unknown route', request: () => ({ url: '/v2/everything' }), status: 404, code: 'SP_ADMIN_NOT_FOUND' },
  ];

  it.each(refusals)('refuses $name with $status $code and changes nothing', async ({ request, status, code }) => {
    const { app, dir } = make();
    const before = readdirSync(dir).sort();
    const response = await app.inject(request());
    expect(response.statusCode).toBe(status);
    expect(response.json().error.code).toBe(code);
    expect(response.json().error.message).toEqual(expect.any(String));
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it('reports every problem of an invalid document with its place and code', async () => {
    const { app } = make();
    const response = await app.inject({ method: 'PUT', url: '/v1/rules/api', headers: { 'content-type': 'application/yaml', ...auth }, payload: BAD_REGEX });
    expect(response.json().error.problems).toEqual([
      expect.objectContaining({ code: 'SP_RULE_REGEX_INVALID', path: 'services.api.routes[0].match.headers[0].regex', at: expect.stringMatching(/api\.yaml:5:\d+$/) }),
    ]);
  });

  it('refuses changes when no token is configured, saying how to set one', async () => {
    const { app } = make({ token: undefined });
    const response = await app.inject({ method: 'PUT', url: '/v1/rules/api', headers: { 'content-type': 'application/yaml', ...auth }, payload: BETA });
    expect(response.statusCode).toBe(401);
    expect(response.json().error).toMatchObject({ code: 'SP_ADMIN_TOKEN_NOT_CONFIGURED', message: expect.stringContaining('SHADOWPLANE_ADMIN_TOKEN') });
  });

  it('validates without writing, with warnings for subsets not registered yet', async () => {
    const { app, dir } = make();
    const ok = await app.inject({ method: 'POST', url: '/v1/rules/validate?name=api', headers: { 'content-type': 'application/yaml' }, payload: BETA.replace('to: beta', 'to: canary') });
    expect(ok.json()).toMatchObject({ valid: true, errors: [], warnings: [expect.objectContaining({ code: 'SP_RULE_SUBSET_EMPTY' })] });
    const bad = await app.inject({ method: 'POST', url: '/v1/rules/validate?name=api', headers: { 'content-type': 'application/yaml' }, payload: BAD_REGEX });
    expect(bad.json()).toMatchObject({ valid: false, errors: [expect.objectContaining({ code: 'SP_RULE_REGEX_INVALID' })] });
    expect(readdirSync(dir)).toEqual(['base.yaml']);
  });

  it('refuses rules whose translation Envoy would reject, naming the resource', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'admin-rules-'));
    writeFileSync(path.join(dir, 'base.yaml'), '{}\n');
    // An instance without an address: sources refuse it; here it stands for any input
    // the rule validator cannot see that would make Envoy refuse the result.
    const broken = { services: new Map([['api', { name: 'api', instances: [{ id: 'a', address: '', port: 1, tags: ['beta'], meta: {} }] }]]) };
    const app = buildAdminServer({
      logger: silentLogger(),
      token: TOKEN,
      metrics: createMetrics().registry,
      rules: createRulesService({ store: new DirectoryRulesStore(dir), registry: () => broken }),
      proxies: () => [],
      notReady: () => [],
      status: () => ({}),
    });
    apps.push(app);
    const response = await app.inject({ method: 'PUT', url: '/v1/rules/api', headers: { 'content-type': 'application/yaml', ...auth }, payload: BETA });
    expect(response.statusCode).toBe(422);
    expect(response.json().error.problems).toEqual([
      expect.objectContaining({ code: 'SP_RULE_ENVOY_REJECTS', message: expect.stringMatching(/ClusterLoadAssignment "api\.beta".*address/) }),
    ]);
    expect(readdirSync(dir)).toEqual(['base.yaml']);
  });

  it('refuses a mirror whose cluster name another service\'s mirror already makes, naming both, and writes nothing', async () => {
    const { app, dir } = make();
    const mirror = (service: string) => `services:\n  ${service}:\n    mirrors:\n      - { name: shadow-10, to: { service: api, subset: shadow }, percent: 10 }\n`;
    const create = (name: string, text: string) => {
      const { payload, ...headers } = yamlBody(text);
      return app.inject({ method: 'PUT', url: `/v1/rules/${name}`, headers: { ...headers, 'if-none-match': '*' }, payload });
    };
    expect((await create('api', mirror('api'))).statusCode).toBe(200);
    const check = await app.inject({ method: 'POST', url: '/v1/rules/validate?name=web', headers: { 'content-type': 'application/yaml' }, payload: mirror('web') });
    const problem = {
      code: 'SP_RULE_NAME_CLASH',
      path: 'services.web.mirrors[0].name',
      at: expect.stringMatching(/web\.yaml:4:\d+$/),
      message: expect.stringMatching(/"api\.shadow\.mirror-shadow-10", and so would mirror "shadow-10" of "api" \(.*api\.yaml:4:\d+\)/),
    };
    expect(check.json()).toMatchObject({ valid: false, errors: [problem] });
    const put = await create('web', mirror('web'));
    expect(put.statusCode).toBe(422);
    expect(put.json().error.problems).toEqual([expect.objectContaining(problem)]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()).toEqual(['api.yaml', 'base.yaml']);
  });

  it('takes a document as JSON {text} too', async () => {
    const { app } = make();
    const response = await app.inject({ method: 'PUT', url: '/v1/rules/api', headers: { ...auth, 'content-type': 'application/json' }, payload: { text: BETA } });
    expect(response.statusCode).toBe(200);
  });
});
