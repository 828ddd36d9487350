// End-to-end traffic tests: a real Consul, the real `shadowplane serve` reading rules
// from a folder, and a real edge Envoy on its ADS stream, with HTTP backends that record
// what they receive. Also the tools to drive and read such a stack: bounded request
// loops with concurrent workers, backends that answer slowly or with errors, and waits
// on what Envoy actually holds (its config dump, /clusters, stats).
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, startAdsEnvoy } from './ads-envoy.js';
import { backendBody, listenOnLoopback } from './backend.js';
import { registerService, startConsul, type ConsulAgent, type ServiceInstance } from './consul.js';
import type { Envoy } from './envoy.js';
import { getJson } from './http.js';
import { freePort } from './ports.js';
import { startServe, type ServeProcess } from './shadowplane.js';
import { waitFor } from './wait.js';

// ---------------------------------------------------------------------------------
// Backends

export interface ScriptedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** False until the backend has sent its answer. */
  answered: boolean;
}

export interface BackendBehaviour {
  /** Answer after this long (the request is recorded at once). Default 0. */
  delayMs?: number;
  /** Status to answer with. Default 200. */
  status?: number;
}

export interface ScriptedBackend {
  readonly name: string;
  readonly port: number;
  /** Every request received so far, oldest first. */
  readonly requests: readonly ScriptedRequest[];
  /** Requests that carry header `name` (any value, or exactly `value`). */
  withHeader(name: string, value?: string): ScriptedRequest[];
  close(): Promise<void>;
}

/**
 * A backend like test/helpers/backend.ts (header `x-backend: <name>`, body
 * `backend <name>`), which can answer late or with an error status: a slow or failing
 * shadow. It records each request when it arrives and marks it when answered.
 */
export async function startScriptedBackend(name: string, behaviour: BackendBehaviour = {}): Promise<ScriptedBackend> {
  const requests: ScriptedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    const record: ScriptedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, answered: false };
    requests.push(record);
    req.resume();
    req.on('end', () => {
      const answer = (): void => {
        record.answered = true;
        res.writeHead(behaviour.status ?? 200, { 'content-type': 'text/plain', 'x-backend': name });
        res.end(backendBody(name));
      };
      if (!behaviour.delayMs) return answer();
      const timer = setTimeout(() => {
        timers.delete(timer);
        answer();
      }, behaviour.delayMs);
      timers.add(timer);
    });
  });
  const port = await listenOnLoopback(server);
  return {
    name,
    port,
    requests,
    withHeader: (header, value) =>
      requests.filter((r) => (value === undefined ? r.headers[header] !== undefined : r.headers[header] === value)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        server.close(() => resolve());
        // Envoy keeps upstream connections alive; without this, close() waits on them.
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------
// The stack

export interface TrafficStack {
  consul: ConsulAgent;
  serve: ServeProcess;
  envoy: Envoy;
  /** The edge Envoy's HTTP listener port. */
  port: number;
  /** Envoy's listener and route configuration name: `edge_<port>`. */
  listener: string;
  rulesDir: string;
  /**
   * Replaces rule document `<name>.yaml` (atomically, as the rules store writes) and
   * waits until serve has loaded it. The new text must change the rule set.
   */
  writeRules(name: string, text: string): Promise<void>;
  /** Removes the temporary rules folder (processes stop with stopAllProcesses). */
  cleanup(): Promise<void>;
}

export interface TrafficStackOptions {
  /** Rule documents by name, in the folder before serve starts. At least one: `{}` is no rules. */
  rules: Record<string, string>;
  /** Registered in Consul before serve starts. */
  instances: ServiceInstance[];
  /** Wait until Envoy's route configuration has a virtual host per service named here. */
  services: string[];
}

async function writeAtomically(dir: string, name: string, text: string): Promise<void> {
  // Not `.yaml`: the rules folder reader skips the temporary file.
  const temp = join(dir, `.${name}.tmp`);
  await writeFile(temp, text);
  await rename(temp, join(dir, `${name}.yaml`));
}

/** How many rule sets serve has loaded (its admin API's status). */
async function rulesUpdates(serve: ServeProcess): Promise<number> {
  const status = await getJson<{ sources: { source: string; updates: number }[] }>(`${serve.adminUrl}/v1/status`);
  return status.sources.find((s) => s.source === 'rules')?.updates ?? 0;
}

/** Consul, then `shadowplane serve` on it and a rules folder, then an edge Envoy. */
export async function startTrafficStack(options: TrafficStackOptions): Promise<TrafficStack> {
  const rulesDir = await mkdtemp(join(tmpdir(), 'shadowplane-rules-'));
  const cleanup = () => rm(rulesDir, { recursive: true, force: true });
  try {
    for (const [name, text] of Object.entries(options.rules)) await writeAtomically(rulesDir, name, text);
    const consul = await startConsul();
    for (const instance of options.instances) await registerService(consul, instance);
    const serve = await startServe(['--registry', 'consul', '--consul-address', consul.httpAddr, '--rules-path', rulesDir]);
    const port = await freePort();
    const envoy = await startAdsEnvoy({ xdsPort: serve.xdsPort, listenerPort: port, nodeId: 'traffic-edge' });
    const listener = `edge_${port}`;
    await waitForRouteConfig(envoy, listener, (rc) => options.services.every((s) => rc.virtual_hosts.some((vh) => vh.name === s)), `virtual hosts ${options.services.join(', ')}`);
    return {
      consul,
      serve,
      envoy,
      port,
      listener,
      rulesDir,
      writeRules: async (name, text) => {
        const before = await rulesUpdates(serve);
        await writeAtomically(rulesDir, name, text);
        await waitFor(async () => (await rulesUpdates(serve)) > before, { description: `serve to load the new ${name}.yaml`, intervalMs: 50 });
      },
      cleanup,
    };
  } catch (error) {
    // The processes started so far stop with stopAllProcesses; the folder goes now.
    await cleanup();
    throw error;
  }
}

// ---------------------------------------------------------------------------------
// What Envoy holds

export interface EnvoyRoute {
  name?: string;
  match: { prefix?: string; headers?: { name: string }[] };
  route?: {
    cluster?: string;
    weighted_clusters?: { clusters: { name: string; weight: number }[] };
    request_mirror_policies?: { cluster: string; runtime_fraction?: { default_value?: { numerator?: number; denominator?: string } } }[];
  };
}
export interface EnvoyRouteConfig {
  name: string;
  virtual_hosts: { name: string; domains: string[]; routes: EnvoyRoute[] }[];
}

/** The route configuration `name` Envoy has in force, undefined when it has none. */
export async function routeConfig(envoy: Envoy, name: string): Promise<EnvoyRouteConfig | undefined> {
  const dump = (await envoy.configDump('resource=dynamic_route_configs')) as { configs?: { route_config?: EnvoyRouteConfig }[] };
  return dump.configs?.map((c) => c.route_config).find((rc) => rc?.name === name);
}

/** The routes of virtual host `service` in route configuration `name`. */
export async function virtualHostRoutes(envoy: Envoy, name: string, service: string): Promise<EnvoyRoute[]> {
  return (await routeConfig(envoy, name))?.virtual_hosts.find((vh) => vh.name === service)?.routes ?? [];
}

export async function waitForRouteConfig(
  envoy: Envoy,
  name: string,
  condition: (rc: EnvoyRouteConfig) => boolean,
  description: string,
  timeoutMs = 15_000,
): Promise<EnvoyRouteConfig> {
  return waitFor(
    async () => {
      const rc = await routeConfig(envoy, name);
      return rc && condition(rc) ? rc : undefined;
    },
    { description: `Envoy's route configuration ${name} to have ${description}`, timeoutMs, intervalMs: 50 },
  );
}

/** Waits until virtual host `service` has exactly these route names, in this order. */
export async function waitForRouteNames(envoy: Envoy, listener: string, service: string, names: string[]): Promise<void> {
  await waitForRouteConfig(
    envoy,
    listener,
    (rc) => JSON.stringify(rc.virtual_hosts.find((vh) => vh.name === service)?.routes.map((r) => r.name)) === JSON.stringify(names),
    `routes ${names.join(', ')} for ${service}`,
  );
}

/** Ports of a cluster's endpoints in Envoy's /clusters, sorted; undefined when it has no such cluster. */
export async function clusterPorts(envoy: Envoy, cluster: string): Promise<number[] | undefined> {
  const found = (await envoy.clusters()).find((c) => c.name === cluster);
  if (!found) return undefined;
  return (found.host_statuses ?? []).map((h) => h.address?.socket_address?.port_value ?? 0).sort((a, b) => a - b);
}

/** Waits until Envoy's cluster has exactly these endpoint ports (`undefined`: until it has no such cluster). */
export async function waitForClusterPorts(envoy: Envoy, cluster: string, ports: number[] | undefined, timeoutMs = 15_000): Promise<void> {
  const wanted = ports === undefined ? undefined : JSON.stringify([...ports].sort((a, b) => a - b));
  await waitFor(async () => JSON.stringify(await clusterPorts(envoy, cluster)) === wanted, {
    description: ports === undefined ? `Envoy to drop cluster ${cluster}` : `Envoy's cluster ${cluster} to have endpoints on ports ${ports.join(', ')}`,
    timeoutMs,
    intervalMs: 50,
  });
}

export interface MirrorCopies {
  /**
   * Waits until the mirror cluster has no request in flight and the backend has
   * received every copy Envoy sent on it since `mirrorCopies` was called; returns how
   * many. Copies are fire-and-forget, so the caller's requests end before they do.
   */
  settled(): Promise<number>;
  /** What the backend received since. */
  received(): ScriptedRequest[];
}

/** Starts counting the copies Envoy sends on mirror cluster `cluster` to `backend`. */
export async function mirrorCopies(envoy: Envoy, cluster: string, backend: ScriptedBackend): Promise<MirrorCopies> {
  const stat = (name: string) => `cluster.${cluster}.${name}`;
  const sent = async (): Promise<{ total: number; inFlight: number }> => {
    const stats = await envoy.stats(`^cluster\\.${cluster.replace(/[.]/g, '\\.')}\\.upstream_rq_(total|active|pending_active)$`);
    return {
      total: stats.get(stat('upstream_rq_total')) ?? 0,
      inFlight: (stats.get(stat('upstream_rq_active')) ?? 0) + (stats.get(stat('upstream_rq_pending_active')) ?? 0),
    };
  };
  const sentBefore = (await sent()).total;
  const receivedBefore = backend.requests.length;
  const received = () => backend.requests.slice(receivedBefore);
  return {
    received,
    settled: () =>
      waitFor(
        async () => {
          const now = await sent();
          const copies = now.total - sentBefore;
          // Wrapped: 0 copies is an answer too, and waitFor waits on falsy values.
          return now.inFlight === 0 && received().length === copies ? { copies } : undefined;
        },
        { description: `every copy Envoy sent on ${cluster} to reach ${backend.name}`, timeoutMs: 15_000, intervalMs: 50 },
      ).then((r) => r.copies),
  };
}

// ---------------------------------------------------------------------------------
// Traffic

export interface SendOptions {
  port: number;
  host: string;
  count: number;
  /** Requests in flight at once. Default 4 (ads-envoy's request() keeps 4 sockets). */
  concurrency?: number;
  method?: string;
  path?: string;
  /** Headers of request `i` (0-based). */
  headers?: (i: number) => Record<string, string>;
}

export interface SendResult {
  /** Requests per status (0: no answer). */
  statuses: Map<number, number>;
  /** Requests per answering backend (`x-backend`), `none` when absent. */
  backends: Map<string, number>;
  /** Requests whose body was not the answering backend's own. */
  wrongBodies: number;
}

/** Sends `count` requests through Envoy with a few workers; bounded and loopback only. */
export async function sendRequests(options: SendOptions): Promise<SendResult> {
  const statuses = new Map<number, number>();
  const backends = new Map<string, number>();
  let wrongBodies = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < options.count) {
      const i = next++;
      const r = await request(options.port, options.host, options.path ?? '/', { method: options.method, headers: options.headers?.(i) });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      const backend = r.backend ?? 'none';
      backends.set(backend, (backends.get(backend) ?? 0) + 1);
      if (r.backend !== null && r.body !== backendBody(r.backend)) wrongBodies++;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  return { statuses, backends, wrongBodies };
}

/** The backends that answered `count` identical requests: `{ stable: 20 }`. */
export async function backendsFor(
  port: number,
  host: string,
  headers: Record<string, string> = {},
  options: { path?: string; count?: number } = {},
): Promise<Record<string, number>> {
  const result = await sendRequests({ port, host, count: options.count ?? 20, path: options.path, headers: () => headers });
  return Object.fromEntries([...result.backends].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * Polls with requests (no pause between them) until one is answered by a backend that
 * `accept`s, and returns the milliseconds since `since`: how long a change took to
 * reach traffic.
 */
export async function msUntilRouted(
  port: number,
  host: string,
  headers: Record<string, string>,
  accept: (backend: string | null) => boolean,
  since: number,
  description: string,
  timeoutMs = 15_000,
): Promise<number> {
  await waitFor(async () => accept((await request(port, host, '/', { headers })).backend), { description, timeoutMs, intervalMs: 5 });
  return Date.now() - since;
}

/** `share` of `total` in percent, with two decimals. */
export const percent = (share: number, total: number): number => Math.round((share / total) * 10_000) / 100;
