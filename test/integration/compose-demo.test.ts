// The Compose demo (docker-compose.yml, README "Try it: the Compose demo"). There is no
// Docker engine here, so: Debian's docker-compose checks the file, and the same topology
// is started from the same files with the programs run directly on 127.0.0.1
// (test/helpers/compose.ts: how each container is stood in for). Through it, the
// walk-through's requests to the published ports show beta routing and mirroring.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { request } from '../helpers/ads-envoy.js';
import { backendBody } from '../helpers/backend.js';
import { dockerCompose, hasDockerCompose, planComposeDemo, readCompose, startComposeDemo, type ComposeDemo } from '../helpers/compose.js';
import { getJson } from '../helpers/http.js';
import { formatLogs, showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { hasBinary } from '../helpers/tools.js';
import { waitFor } from '../helpers/wait.js';

interface ApiRules {
  routes?: { name: string; match?: unknown; to?: unknown }[];
  mirrors?: { name: string; to: string; percent: number }[];
}

/** The rules of service `api` in the demo's rules folder (one document holds them). */
function apiRules(rulesPath: string): ApiRules {
  const docs = readdirSync(rulesPath)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => parse(readFileSync(join(rulesPath, f), 'utf8')) as { services?: Record<string, ApiRules> } | null);
  const api = docs.map((d) => d?.services?.api).filter((r) => r !== undefined);
  expect(api, 'exactly one rules document for api').toHaveLength(1);
  return api[0]!;
}

describe('docker-compose.yml', () => {
  it.skipIf(!hasDockerCompose())("passes `docker-compose config` (Debian's docker-compose)", () => {
    const check = dockerCompose(['config', '-q']);
    expect(check.status, check.stderr).toBe(0);
    const services = dockerCompose(['config', '--services']);
    expect(services.status, services.stderr).toBe(0);
    expect(services.stdout.trim().split('\n').sort()).toEqual(Object.keys(readCompose().services).sort());
  });

  it('uses pinned public images and names only addresses, ports and files it has', () => {
    const compose = readCompose();
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.image, name).toMatch(/^(hashicorp\/consul|hashicorp\/http-echo|envoyproxy\/envoy|node):[^:]+$/);
      expect(service.image, name).not.toMatch(/:latest$/);
    }
    // planComposeDemo throws when a Consul definition, a bootstrap's xDS address, an
    // app_port or a published port names something no container serves.
    const plan = planComposeDemo(compose);
    expect(plan.backends.map((b) => `${b.service}=${b.name}`)).toEqual(['api-stable=stable', 'api-beta=beta', 'api-shadow=shadow', 'web=web']);
    expect(Object.fromEntries(plan.definitions)).toEqual({
      'api-stable-1': 'api-stable:5678',
      'api-beta-1': 'api-beta:5678',
      'api-shadow-1': 'api-shadow:5678',
      'web-1': 'web:15006', // web-sidecar's inbound listener, in web's network namespace
    });
    expect(plan.envoys.map((e) => [e.service, e.xds, e.bootstrap.node.metadata.role])).toEqual([
      ['edge', 'shadowplane:18000', 'edge'],
      ['web-sidecar', 'shadowplane:18000', 'sidecar'],
    ]);
    expect(plan.published).toEqual(
      expect.arrayContaining([
        { hostPort: 10000, to: 'edge:10000' },
        { hostPort: 15001, to: 'web:15001' },
      ]),
    );
  });
});

describe.skipIf(!hasBinary('envoy') || !hasBinary('consul'))('the Compose demo, run directly', () => {
  let demo: ComposeDemo;
  let rules: ApiRules;
  /** `localhost:10000` of the walk-through: the edge listener. */
  let edge: number;
  /** `localhost:15001`: web-sidecar's outbound listener ("web calling api"). */
  let webOutbound: number;

  const body = async (port: number, host: string, headers: Record<string, string> = {}): Promise<string> => {
    const r = await request(port, host, '/', { headers });
    return `${r.status} ${r.body}`;
  };
  const ok = (name: string): string => `200 ${backendBody(name)}`;

  beforeAll(async () => {
    const plan = planComposeDemo();
    rules = apiRules(plan.shadowplane.rulesPath);
    demo = await startComposeDemo(plan);
    edge = demo.published(10000);
    webOutbound = demo.published(15001);
    // The Envoys are ready once they hold their first configuration; wait until the
    // rules and every instance are in it. A wait that fails says what it last got and
    // shows every process's recent output (no test is running yet to show it).
    const ready = async (port: number, host: string, headers: Record<string, string>, want: string, description: string): Promise<void> => {
      let last = 'no answer yet';
      try {
        await waitFor(async () => (last = await body(port, host, headers)) === want, { description, timeoutMs: 20_000 });
      } catch (err) {
        const logs = [demo.serve.process, demo.consul, ...Object.values(demo.envoys)].map(formatLogs).join('\n');
        throw new Error(`${err instanceof Error ? err.message : String(err)}; the last answer was "${last}"\n${logs}`, { cause: err });
      }
    };
    for (const [port, via] of [[edge, 'edge'], [webOutbound, 'web-sidecar']] as const) {
      await ready(port, 'api', { 'x-beta': 'true' }, ok('beta'), `${via} to route x-beta: true to beta`);
    }
    await ready(edge, 'web', {}, ok('web'), 'the edge to reach web');
  });

  afterAll(async () => {
    await demo?.stop();
    await stopAllProcesses();
  });

  beforeEach(() => showLogsOnFailure(demo.serve.process, demo.consul, ...Object.values(demo.envoys)));

  it("gives Consul the demo's service definitions, at the stand-ins' addresses", async () => {
    const catalog = await getJson<{ ServiceID: string; ServiceAddress: string; ServicePort: number; ServiceTags: string[] }[]>(
      `${demo.consul.url}/v1/catalog/service/api`,
    );
    expect(catalog.map((s) => [s.ServiceID, s.ServiceAddress, s.ServicePort, s.ServiceTags]).sort()).toEqual([
      ['api-beta-1', '127.0.0.1', demo.backends['api-beta']!.port, ['beta']],
      ['api-shadow-1', '127.0.0.1', demo.backends['api-shadow']!.port, ['shadow']],
      ['api-stable-1', '127.0.0.1', demo.backends['api-stable']!.port, []],
    ]);
  });

  it('routes x-beta: true to beta and every other request to stable at the edge (localhost:10000)', async () => {
    expect(rules.routes).toContainEqual({ name: 'beta-users', match: { headers: [{ name: 'x-beta', exact: 'true' }] }, to: 'beta' });
    for (let i = 0; i < 10; i++) {
      expect(await body(edge, 'api', { 'x-beta': 'true' })).toBe(ok('beta'));
      expect(await body(edge, 'api')).toBe(ok('stable'));
      expect(await body(edge, 'api', { 'x-beta': 'false' })).toBe(ok('stable'));
    }
  });

  it("routes web's calls to api the same way through web's sidecar (localhost:15001)", async () => {
    for (let i = 0; i < 10; i++) {
      expect(await body(webOutbound, 'api', { 'x-beta': 'true' })).toBe(ok('beta'));
      expect(await body(webOutbound, 'api')).toBe(ok('stable'));
    }
  });

  it("reaches web through its sidecar's inbound listener, where Consul has it", async () => {
    const web = (await demo.envoys.edge!.clusters()).find((c) => c.name === 'web');
    expect(web?.host_statuses?.map((h) => h.address?.socket_address?.port_value)).toEqual([demo.local('web-sidecar', 15006)]);
    const before = demo.backends.web!.requests.length;
    expect(await body(edge, 'web')).toBe(ok('web'));
    expect(demo.backends.web!.requests.length).toBe(before + 1);
  });

  it('copies about the declared share of requests to shadow while stable answers every one', async () => {
    const mirror = rules.mirrors?.[0];
    expect(mirror).toMatchObject({ to: 'shadow', percent: expect.any(Number) });
    const { name, percent } = mirror!;
    const cluster = `api.shadow.mirror-${name}`; // README, "Names Envoy sees"
    const envoy = demo.envoys.edge!;
    const stats = async (): Promise<{ sent: number; inFlight: number }> => {
      const s = await envoy.stats(`^cluster\\.${cluster.replace(/\./g, '\\.')}\\.upstream_rq_(total|active|pending_active)$`);
      const get = (stat: string): number => s.get(`cluster.${cluster}.${stat}`) ?? 0;
      return { sent: get('upstream_rq_total'), inFlight: get('upstream_rq_active') + get('upstream_rq_pending_active') };
    };
    // This run's requests carry their own header, so copies made earlier (by the sidecar,
    // too) are not counted; copies keep the caller's headers.
    const run = `mirror-${Date.now()}`;
    const ofRun = (name: string) => demo.backends[name]!.requests.filter((r) => r.headers['x-demo-run'] === run);
    const sentBefore = (await stats()).sent;

    const total = 1_000;
    const answers = new Map<string, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < total) {
        next++;
        const answer = await body(edge, 'api', { 'x-demo-run': run });
        answers.set(answer, (answers.get(answer) ?? 0) + 1);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    expect(Object.fromEntries(answers)).toEqual({ [ok('stable')]: total });
    expect(ofRun('api-stable')).toHaveLength(total);

    // Copies are fire-and-forget: wait until every copy the edge sent has arrived.
    const copies = await waitFor(
      async () => {
        const now = await stats();
        const received = ofRun('api-shadow').length;
        return now.inFlight === 0 && now.sent - sentBefore === received ? { received } : undefined;
      },
      { description: `every copy the edge sent on ${cluster} to reach api-shadow`, timeoutMs: 15_000, intervalMs: 50 },
    ).then((r) => r.received);
    const share = copies / total;
    console.log(`compose demo: mirror ${name} (${percent} %): shadow received ${copies} of ${total} requests`);
    // A loose bound: five standard deviations of the binomial share either side.
    const p = percent / 100;
    const slack = 5 * Math.sqrt((p * (1 - p)) / total);
    expect(share).toBeGreaterThanOrEqual(p - slack);
    expect(share).toBeLessThanOrEqual(p + slack);
    for (const copy of ofRun('api-shadow')) {
      expect(copy.headers.host).toBe('api-shadow');
      expect(copy.headers['x-shadowplane-mirror']).toBe(name);
    }
  });
});
