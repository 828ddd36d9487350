// The roles that guard production, end to end with real Envoys configured by a real
// `shadowplane serve`: the edge routes on a verified JWT claim and ignores forged
// claim headers; the access gateway allows only what its policy says, rate-limits and
// audits; a shadow's sidecar reads production but never writes to it.
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { request } from '../helpers/ads-envoy.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import type { Envoy } from '../helpers/envoy.js';
import { makeTestIssuer, type TestIssuer } from '../helpers/jwt.js';
import { freePorts } from '../helpers/ports.js';
import { showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { startRoleEnvoy } from '../helpers/role-envoy.js';
import { startServe, type ServeProcess } from '../helpers/shadowplane.js';
import { hasBinary } from '../helpers/tools.js';
import { waitFor } from '../helpers/wait.js';

describe.skipIf(!hasBinary('envoy'))('edge, access gateway and shadow sidecar', () => {
  let issuer: TestIssuer;
  let stable: TestBackend;
  let beta: TestBackend;
  let web: TestBackend;
  let serve: ServeProcess;
  let edge: Envoy;
  let access: Envoy;
  let shadowSidecar: Envoy;
  let ports: number[];
  let auditLog: string;

  beforeAll(async () => {
    issuer = makeTestIssuer('https://issuer.test');
    [stable, beta, web] = await Promise.all([startBackend('stable'), startBackend('beta'), startBackend('web')]);
    const dir = mkdtempSync(path.join(tmpdir(), 'gateways-'));
    const registry = path.join(dir, 'registry');
    const rules = path.join(dir, 'rules');
    mkdirSync(registry);
    mkdirSync(rules);
    auditLog = path.join(dir, 'audit.log');
    writeFileSync(
      path.join(registry, 'services.yaml'),
      [
        'services:',
        `  - { name: api, id: api-1, address: 127.0.0.1, port: ${stable.port} }`,
        `  - { name: api, id: api-beta-1, address: 127.0.0.1, port: ${beta.port}, tags: [beta] }`,
        `  - { name: web, id: web-1, address: 127.0.0.1, port: ${web.port} }`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      path.join(rules, 'edge.yaml'),
      [
        'jwt_issuers:',
        `  main: { issuer: "${issuer.issuer}", jwks: ${JSON.stringify(issuer.jwks)} }`,
        'services:',
        '  api:',
        '    routes:',
        '      - name: beta-claim',
        '        match: { claim: { issuer: main, name: beta, exact: "true" } }',
        '        to: beta',
        '',
      ].join('\n'),
    );
    writeFileSync(
      path.join(rules, 'access.yaml'),
      [
        'access_gateway:',
        '  rate_limit: { requests_per_second: 1, burst: 5 }',
        '  allow:',
        '    - service: api',
        '      methods: [GET]',
        '      paths: [{ prefix: /v1/ }]',
        '',
      ].join('\n'),
    );
    serve = await startServe(['--registry-path', registry, '--rules-path', rules]);
    ports = await freePorts(4);
    const [edgePort, accessPort, outboundPort, inboundPort] = ports as [number, number, number, number];
    [edge, access, shadowSidecar] = await Promise.all([
      startRoleEnvoy({ xdsPort: serve.xdsPort, nodeId: 'edge-1', metadata: { role: 'edge', listener_port: edgePort } }),
      startRoleEnvoy({ xdsPort: serve.xdsPort, nodeId: 'access-1', metadata: { role: 'access', listener_port: accessPort, audit_log_path: auditLog } }),
      startRoleEnvoy({
        xdsPort: serve.xdsPort,
        nodeId: 'web-shadow-1',
        cluster: 'web',
        metadata: { role: 'sidecar', subset: 'shadow', outbound_port: outboundPort, inbound_port: inboundPort, app_port: web.port },
      }),
    ]);
  });

  afterAll(async () => {
    await stopAllProcesses();
    await Promise.all([stable, beta, web].map((b) => b?.close()));
  });

  beforeEach(() => showLogsOnFailure(serve.process, edge, access, shadowSidecar));

  describe('edge: routing on a verified JWT claim', () => {
    const edgePort = (): number => ports[0]!;
    const viaEdge = (headers: Record<string, string>) => request(edgePort(), 'api', '/account', { headers });

    it('sends a token with the beta claim to beta, and other tokens or none to stable', async () => {
      for (let i = 0; i < 5; i++) {
        expect(await viaEdge({ authorization: `Bearer ${issuer.token({ beta: 'true' })}` })).toMatchObject({ status: 200, backend: 'beta' });
        expect(await viaEdge({ authorization: `Bearer ${issuer.token({ beta: 'false' })}` })).toMatchObject({ status: 200, backend: 'stable' });
        expect(await viaEdge({})).toMatchObject({ status: 200, backend: 'stable' });
      }
    });

    it('ignores a claim header forged by an outside caller', async () => {
      for (let i = 0; i < 5; i++) {
        expect(await viaEdge({ 'x-shadowplane-claim-main.beta': 'true' })).toMatchObject({ status: 200, backend: 'stable' });
      }
      expect(stable.requests.at(-1)?.headers['x-shadowplane-claim-main.beta']).toBeUndefined();
    });

    it('refuses a token it cannot verify', async () => {
      const forged = makeTestIssuer(issuer.issuer).token({ beta: 'true' }); // same issuer name, another key
      expect((await viaEdge({ authorization: `Bearer ${forged}` })).status).toBe(401);
    });
  });

  describe('access gateway', () => {
    const accessPort = (): number => ports[1]!;
    const viaAccess = (method: string, urlPath: string, caller: string) => request(accessPort(), 'api', urlPath, { method, headers: { 'x-caller': caller } });
    const audit = (): Record<string, string>[] =>
      readFileSync(auditLog, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, string>);

    it('lets an allowed GET through, answers 403 to a POST or another path, and audits each decision', async () => {
      expect(await viaAccess('GET', '/v1/orders', 'dev-alice')).toMatchObject({ status: 200, backend: 'stable' });
      expect((await viaAccess('POST', '/v1/orders', 'dev-alice')).status).toBe(403);
      expect((await viaAccess('GET', '/admin', 'dev-bob')).status).toBe(403);
      await waitFor(() => audit().length >= 3, { description: 'three audit lines' });
      expect(audit().slice(-3)).toEqual([
        expect.objectContaining({ caller: 'dev-alice', method: 'GET', path: '/v1/orders', status: 200, decision: 'allowed', rule: 'allow/api/0' }),
        expect.objectContaining({ caller: 'dev-alice', method: 'POST', path: '/v1/orders', status: 403, decision: 'denied' }),
        expect.objectContaining({ caller: 'dev-bob', method: 'GET', path: '/admin', status: 403, decision: 'denied' }),
      ]);
    });

    it('answers 429 past the rate limit, and audits it', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 15; i++) statuses.push((await viaAccess('GET', '/v1/items', 'dev-carol')).status);
      // A burst of 5 with 1 more each second: 15 quick requests cannot all pass.
      expect(statuses[0]).toBe(200);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(8);
      expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
      await waitFor(() => audit().some((l) => l.caller === 'dev-carol' && String(l.status) === '429'), { description: 'a 429 audit line' });
      expect(audit().find((l) => l.caller === 'dev-carol' && String(l.status) === '429')).toMatchObject({ response_flags: 'RL' });
    });
  });

  describe("a shadow's sidecar", () => {
    const outbound = (): number => ports[2]!;

    it('reads production, but answers writes itself and never sends them on', async () => {
      const seenBefore = stable.requests.length;
      expect(await request(outbound(), 'api', '/v1/orders/1')).toMatchObject({ status: 200 });
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        expect(await request(outbound(), 'api', '/v1/orders', { method })).toMatchObject({ status: 204, backend: null });
      }
      const reached = stable.requests.slice(seenBefore).concat(beta.requests).map((r) => r.method);
      expect(reached).not.toContain('POST');
      expect(reached).not.toContain('PUT');
      expect(reached).not.toContain('DELETE');
      expect(reached).not.toContain('PATCH');
    });
  });
});
