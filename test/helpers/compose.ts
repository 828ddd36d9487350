// The Compose demo (docker-compose.yml) without Docker: the same services, started from
// the same files, with the programs run directly on 127.0.0.1. Only what Docker would
// provide is stood in for, always the same way:
//
// - hashicorp/http-echo `-text=backend X`  → startBackend('X'): the same body, `backend X\n`.
// - hashicorp/consul `agent -dev -config-dir=D` → startConsul with `-config-dir` = a copy
//   of D's files, each service definition's address:port rewritten (below).
// - node + examples/compose/shadowplane.sh `CMD` → startServe(CMD) on the built dist/
//   (no npm ci), with the service's environment; --consul-address is the running
//   Consul, --xds-address and --admin-address are 127.0.0.1:0 (startServe reads them).
// - envoyproxy/envoy `-c B` → startEnvoy with B, its xDS endpoint, node.metadata
//   listener address and ports, and admin address rewritten (below).
// - a volume `./host:/container` → the host path itself.
//
// Addresses and ports: a container's fixed address (ipv4_address) or service name
// becomes 127.0.0.1, and port P of container C (`C:P`; a container in
// `network_mode: service:<owner>` counts as its owner) the loopback port that does its
// job: an http-echo -listen port → its backend's port; an Envoy's listener ports
// (listener_port, outbound_port, inbound_port) → free ports, told to Shadowplane
// through the rewritten metadata so that Envoy binds them; its admin port → the one
// Envoy binds (port 0); Shadowplane's xDS and admin ports → the ones it binds; Consul's
// 8500 → its HTTP port. `app_port` and Consul definitions point at those. So the
// definition `{ address: 10.77.0.31, port: 15006 }` (web-sidecar's inbound listener, in
// web's network) becomes `{ address: 127.0.0.1, port: <that listener's port> }`. An
// address or port that resolves to nothing fails planning, with the file that named it.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, posix, relative, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { startBackend, type TestBackend } from './backend.js';
import { startConsul, type ConsulAgent } from './consul.js';
import { startEnvoy, type Envoy } from './envoy.js';
import { freePorts } from './ports.js';
import { repoRoot, startServe, type ServeProcess } from './shadowplane.js';

export const composePath = join(repoRoot, 'docker-compose.yml');

// ---------------------------------------------------------------------------------
// docker-compose itself

function missingComposeMessage(): string {
  return "docker-compose not found on PATH; run `npm run tools` (it installs Debian's docker-compose package when run as root with apt-get)";
}

/** `docker-compose` on PATH, or undefined. */
export function findDockerCompose(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'docker-compose');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Like tools.ts hasBinary: true when installed; missing, it throws under CI=true and warns otherwise. */
export function hasDockerCompose(): boolean {
  if (findDockerCompose()) return true;
  if (process.env.CI === 'true') throw new Error(missingComposeMessage());
  console.warn(`skipping: ${missingComposeMessage()}`);
  return false;
}

/** Runs `docker-compose -f docker-compose.yml <args>` to completion (no Docker engine is involved in `config`). */
export function dockerCompose(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const binary = findDockerCompose();
  if (!binary) throw new Error(missingComposeMessage());
  const result = spawnSync(binary, ['-f', composePath, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr + (result.error ? String(result.error) : '') };
}

// ---------------------------------------------------------------------------------
// The file, as far as the direct run reads it

const serviceSchema = z.looseObject({
  image: z.string(),
  command: z.array(z.string()).optional(),
  entrypoint: z.array(z.string()).optional(),
  environment: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  volumes: z.array(z.string()).default([]),
  ports: z.array(z.string()).default([]),
  network_mode: z.string().optional(),
  networks: z
    .union([z.array(z.string()), z.record(z.string(), z.looseObject({ ipv4_address: z.string().optional() }).nullable())])
    .optional(),
});
const composeSchema = z.looseObject({ services: z.record(z.string(), serviceSchema) });

export type ComposeService = z.infer<typeof serviceSchema>;
export type ComposeFile = z.infer<typeof composeSchema>;

export function readCompose(path = composePath): ComposeFile {
  return composeSchema.parse(parse(readFileSync(path, 'utf8')));
}

type Kind = 'consul' | 'shadowplane' | 'envoy' | 'echo';

/** What a compose service is, by its public image. */
export function kindOf(service: ComposeService): Kind {
  const repo = service.image.split(':')[0];
  if (repo === 'hashicorp/consul') return 'consul';
  if (repo === 'envoyproxy/envoy') return 'envoy';
  if (repo === 'hashicorp/http-echo') return 'echo';
  if (repo === 'node' && service.entrypoint?.some((a) => a.endsWith('examples/compose/shadowplane.sh'))) return 'shadowplane';
  throw new Error(`docker-compose.yml: image ${service.image} is not one the direct run knows`);
}

// ---------------------------------------------------------------------------------
// The plan: every file, address and port resolved, nothing started

/** `<service>:<port>`: a port inside the network namespace of a compose service. */
type Endpoint = `${string}:${number}`;
const endpoint = (service: string, port: number): Endpoint => `${service}:${port}`;

type Yaml = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface EnvoyPlan {
  service: string;
  bootstrapPath: string;
  bootstrap: Yaml;
  /** node.metadata keys of the ports Envoy listens on, with their port in the container. */
  listeners: { key: string; port: number }[];
  adminPort: number;
  /** The xDS endpoint the bootstrap names, resolved. */
  xds: Endpoint;
  /** node.metadata.app_port, resolved (sidecars). */
  app?: Endpoint;
}

export interface ComposePlan {
  compose: ComposeFile;
  backends: { service: string; name: string; port: number }[];
  consul: { service: string; httpPort: number; configDir: string; files: { name: string; json: Yaml }[] };
  /** `args`: the compose command; `rulesPath`: the host folder behind --rules-path. */
  shadowplane: { service: string; args: string[]; xdsPort: number; adminPort: number; rulesPath: string };
  envoys: EnvoyPlan[];
  /** Ports published on the host: `127.0.0.1:10000:10000`. */
  published: { hostPort: number; to: Endpoint }[];
  /** Consul service definitions: id → where the container serves it. */
  definitions: Map<string, Endpoint>;
}

/** The service whose network namespace `name` is in (`network_mode: service:<owner>`), itself otherwise. */
function netnsOwner(compose: ComposeFile, name: string): string {
  const mode = compose.services[name]?.network_mode;
  if (mode === undefined) return name;
  const owner = /^service:(.+)$/.exec(mode)?.[1];
  if (!owner || !compose.services[owner]) throw new Error(`docker-compose.yml: ${name}: network_mode ${mode} names no service`);
  return netnsOwner(compose, owner);
}

/** The compose service a fixed IP address or a service name stands for. */
function serviceAt(compose: ComposeFile, host: string, where: string): string {
  if (compose.services[host]) return netnsOwner(compose, host);
  for (const [name, service] of Object.entries(compose.services)) {
    const networks = service.networks;
    if (networks && !Array.isArray(networks) && Object.values(networks).some((n) => n?.ipv4_address === host)) return name;
  }
  throw new Error(`${where}: ${host} is neither a compose service nor the ipv4_address of one`);
}

/** The host path behind `containerPath` in `service`'s volumes (longest mount wins). */
export function hostPath(compose: ComposeFile, name: string, containerPath: string): string {
  const mounts = (compose.services[name]?.volumes ?? []).map((v) => {
    const [host = '', container = ''] = v.split(':');
    return { host: resolve(repoRoot, host), container: posix.normalize(container) };
  });
  const target = posix.normalize(containerPath);
  const mount = mounts
    .filter((m) => target === m.container || target.startsWith(`${m.container.replace(/\/$/, '')}/`))
    .sort((a, b) => b.container.length - a.container.length)[0];
  if (!mount) throw new Error(`docker-compose.yml: ${name}: ${containerPath} is in no volume`);
  return join(mount.host, posix.relative(mount.container, target));
}

const portOf = (hostPort: string, where: string): number => {
  const port = Number(/:(\d+)$/.exec(hostPort)?.[1]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${where}: expected host:port, got ${hostPort}`);
  return port;
};

function only<T>(items: T[], what: string): T {
  if (items.length !== 1) throw new Error(`docker-compose.yml: expected exactly one ${what}, found ${items.length}`);
  return items[0]!;
}

/** Resolves everything the direct run needs from docker-compose.yml and the files it mounts. */
export function planComposeDemo(compose: ComposeFile = readCompose()): ComposePlan {
  const served = new Set<Endpoint>();
  const byKind = (kind: Kind) => Object.entries(compose.services).filter(([, s]) => kindOf(s) === kind);

  const backends = byKind('echo').map(([service, s]) => {
    const args = s.command ?? [];
    const text = args.find((a) => a.startsWith('-text='))?.slice('-text='.length);
    const name = text === undefined ? undefined : /^backend (\S+)$/.exec(text)?.[1];
    if (!name) throw new Error(`docker-compose.yml: ${service}: -text must be "backend <name>" (test/helpers/backend.ts answers so)`);
    const port = portOf(args.find((a) => a.startsWith('-listen='))?.slice('-listen='.length) ?? ':5678', `${service} -listen`);
    served.add(endpoint(service, port));
    return { service, name, port };
  });

  const [consulName, consulService] = only(byKind('consul'), 'Consul');
  const configDirArg = consulService.command?.find((a) => a.startsWith('-config-dir='));
  if (!configDirArg) throw new Error(`docker-compose.yml: ${consulName}: the service definitions come with -config-dir=<dir>`);
  const configDir = hostPath(compose, consulName, configDirArg.slice('-config-dir='.length));
  const files = readdirSync(configDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((name) => ({ name, json: JSON.parse(readFileSync(join(configDir, name), 'utf8')) as Yaml }));
  served.add(endpoint(consulName, 8500));

  const [spName, spService] = only(byKind('shadowplane'), 'Shadowplane');
  const args = spService.command ?? [];
  if (args[0] !== 'serve') throw new Error(`docker-compose.yml: ${spName}: command must start with serve`);
  const flag = (name: string): string => {
    const value = args[args.indexOf(name) + 1];
    if (!args.includes(name) || value === undefined) throw new Error(`docker-compose.yml: ${spName}: ${name} is missing`);
    return value;
  };
  const shadowplane = {
    service: spName,
    args,
    xdsPort: portOf(flag('--xds-address'), '--xds-address'),
    adminPort: portOf(flag('--admin-address'), '--admin-address'),
    rulesPath: hostPath(compose, spName, flag('--rules-path')),
  };
  served.add(endpoint(spName, shadowplane.xdsPort));
  served.add(endpoint(spName, shadowplane.adminPort));
  const consulAddress = flag('--consul-address');
  if (serviceAt(compose, consulAddress.split(':')[0] ?? '', '--consul-address') !== consulName || portOf(consulAddress, '--consul-address') !== 8500) {
    throw new Error(`docker-compose.yml: ${spName}: --consul-address ${consulAddress} is not ${consulName}:8500`);
  }

  const envoys = byKind('envoy').map(([service, s]): EnvoyPlan => {
    const where = `docker-compose.yml: ${service}`;
    const command = s.command ?? [];
    const config = command.includes('-c') ? command[command.indexOf('-c') + 1] : undefined;
    if (!config) throw new Error(`${where}: expected command [-c, <bootstrap>]`);
    const bootstrapPath = hostPath(compose, service, config);
    const bootstrap = parse(readFileSync(bootstrapPath, 'utf8')) as Yaml;
    const file = relative(repoRoot, bootstrapPath);
    const owner = netnsOwner(compose, service);
    const metadata = (bootstrap.node?.metadata ?? {}) as Record<string, unknown>;
    const keys = metadata.role === 'sidecar' ? ['outbound_port', 'inbound_port'] : ['listener_port'];
    const listeners = keys.map((key) => {
      const port = metadata[key];
      if (typeof port !== 'number') throw new Error(`${file}: node.metadata.${key} must be given (the direct run maps it)`);
      served.add(endpoint(owner, port));
      return { key, port };
    });
    const adminPort = Number(bootstrap.admin?.address?.socket_address?.port_value);
    served.add(endpoint(owner, adminPort));
    const xdsAddress = bootstrap.static_resources?.clusters?.[0]?.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address;
    const xds = endpoint(serviceAt(compose, String(xdsAddress?.address), `${file}: the xDS cluster`), Number(xdsAddress?.port_value));
    const app = typeof metadata.app_port === 'number' ? endpoint(owner, metadata.app_port) : undefined;
    return { service, bootstrapPath, bootstrap, listeners, adminPort, xds, ...(app ? { app } : {}) };
  });

  const need = (at: Endpoint, where: string): Endpoint => {
    if (!served.has(at)) throw new Error(`${where}: nothing in docker-compose.yml listens on ${at}`);
    return at;
  };
  for (const envoy of envoys) {
    if (envoy.xds !== endpoint(spName, shadowplane.xdsPort)) throw new Error(`${envoy.service}: the xDS cluster is ${envoy.xds}, not ${spName}:${shadowplane.xdsPort}`);
    if (envoy.app) need(envoy.app, `${envoy.service}: node.metadata.app_port`);
  }

  const definitions = new Map<string, Endpoint>();
  for (const { name, json } of files) {
    for (const def of consulDefinitions(json)) {
      const where = `${relative(repoRoot, join(configDir, name))}: service ${String(def.id)}`;
      definitions.set(String(def.id), need(endpoint(serviceAt(compose, String(def.address), where), Number(def.port)), where));
    }
  }

  const published = Object.entries(compose.services).flatMap(([service, s]) =>
    s.ports.map((p) => {
      const parts = p.replace(/\/tcp$/, '').split(':');
      const hostPort = Number(parts.at(-2));
      const to = need(endpoint(netnsOwner(compose, service), Number(parts.at(-1))), `${service}: ports ${p}`);
      return { hostPort, to };
    }),
  );

  return {
    compose,
    backends,
    consul: { service: consulName, httpPort: 8500, configDir, files },
    shadowplane,
    envoys,
    published,
    definitions,
  };
}

/** The service definitions of one Consul config file (`service` or `services`). */
function consulDefinitions(json: Yaml): Yaml[] {
  return [...(json.service ? [json.service as Yaml] : []), ...((json.services as Yaml[] | undefined) ?? [])];
}

// ---------------------------------------------------------------------------------
// The direct run

export interface ComposeDemo {
  plan: ComposePlan;
  consul: ConsulAgent;
  serve: ServeProcess;
  /** By compose service name. */
  envoys: Record<string, Envoy>;
  /** By compose service name (`api-shadow`); each backend is named by its -text (`shadow`). */
  backends: Record<string, TestBackend>;
  /** The loopback port doing the job of port `port` of compose service `service`. */
  local(service: string, port: number): number;
  /** The loopback port doing the job of a port published on the host (`localhost:10000`). */
  published(hostPort: number): number;
  /** Consul's config files as the direct run gave them to Consul. */
  consulFiles: { name: string; json: Yaml }[];
  /** Stops what it started: Envoys, Shadowplane, Consul, backends; removes its files. */
  stop(): Promise<void>;
}

/** Starts the demo's topology from docker-compose.yml and its files, without Docker. */
export async function startComposeDemo(plan: ComposePlan = planComposeDemo()): Promise<ComposeDemo> {
  const local = new Map<Endpoint, number>();
  const resolvePort = (at: Endpoint): number => {
    const port = local.get(at);
    if (port === undefined) throw new Error(`nothing runs for ${at} yet`);
    return port;
  };
  const backends: Record<string, TestBackend> = {};
  const envoys: Record<string, Envoy> = {};
  const started: { stop(): Promise<unknown> }[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'shadowplane-compose-'));
  const stop = async (): Promise<void> => {
    await Promise.all(started.splice(0).reverse().map((s) => s.stop()));
    await Promise.all(Object.values(backends).map((b) => b.close()));
    await rm(dir, { recursive: true, force: true });
  };

  try {
    for (const b of plan.backends) {
      backends[b.service] = await startBackend(b.name);
      local.set(endpoint(b.service, b.port), backends[b.service]!.port);
    }
    // Envoy listener ports are told to Shadowplane through node metadata, so they are chosen now.
    const listenerPorts = await freePorts(plan.envoys.reduce((n, e) => n + e.listeners.length, 0));
    for (const envoy of plan.envoys) {
      const owner = netnsOwner(plan.compose, envoy.service);
      for (const l of envoy.listeners) local.set(endpoint(owner, l.port), listenerPorts.shift()!);
    }

    const consulFiles = plan.consul.files.map(({ name, json }) => {
      const copy = structuredClone(json);
      for (const def of consulDefinitions(copy)) {
        def.address = '127.0.0.1';
        def.port = resolvePort(plan.definitions.get(String(def.id))!);
      }
      return { name, json: copy };
    });
    const configDir = join(dir, 'consul');
    await mkdir(configDir);
    for (const f of consulFiles) await writeFile(join(configDir, f.name), JSON.stringify(f.json, null, 2));
    const consul = await startConsul({ extraArgs: [`-config-dir=${configDir}`] });
    started.push(consul);
    local.set(endpoint(plan.consul.service, plan.consul.httpPort), consul.port);

    const environment = plan.compose.services[plan.shadowplane.service]?.environment ?? {};
    const serve = await startServe(serveArgs(plan, consul.httpAddr), Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, String(v)])));
    started.push({ stop: () => serve.process.stop() });
    local.set(endpoint(plan.shadowplane.service, plan.shadowplane.xdsPort), serve.xdsPort);
    local.set(endpoint(plan.shadowplane.service, plan.shadowplane.adminPort), serve.adminPort);

    await Promise.all(
      plan.envoys.map(async (e) => {
        const envoy = await startEnvoy({ bootstrapYaml: loopbackBootstrap(e, plan.compose, resolvePort), readyTimeoutMs: 30_000 });
        started.push(envoy);
        envoys[e.service] = envoy;
        local.set(endpoint(netnsOwner(plan.compose, e.service), e.adminPort), Number(new URL(envoy.adminUrl).port));
      }),
    );

    return {
      plan,
      consul,
      serve,
      envoys,
      backends,
      local: (service, port) => resolvePort(endpoint(netnsOwner(plan.compose, service), port)),
      published: (hostPort) => {
        const to = plan.published.find((p) => p.hostPort === hostPort)?.to;
        if (!to) throw new Error(`docker-compose.yml publishes no port ${hostPort}`);
        return resolvePort(to);
      },
      consulFiles,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The compose command of Shadowplane for the direct run: without `serve`, --xds-address
 * and --admin-address (startServe binds both on 127.0.0.1:0), --consul-address at the
 * running Consul, and container paths (`/rules`) as the host paths mounted there.
 */
export function serveArgs(plan: ComposePlan, consulHttpAddr: string): string[] {
  const [, ...rest] = plan.shadowplane.args;
  const out: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    const value = rest[i + 1];
    if (arg === '--xds-address' || arg === '--admin-address') {
      i++;
    } else if (arg === '--consul-address') {
      out.push(arg, consulHttpAddr);
      i++;
    } else if (arg.startsWith('--') && value !== undefined && value.startsWith('/')) {
      out.push(arg, hostPath(plan.compose, plan.shadowplane.service, value));
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** An Envoy bootstrap of the demo with every address on loopback and every port the one doing its job. */
export function loopbackBootstrap(envoy: EnvoyPlan, compose: ComposeFile, portFor: (at: Endpoint) => number): string {
  const b = structuredClone(envoy.bootstrap);
  const owner = netnsOwner(compose, envoy.service);
  const metadata = b.node.metadata as Record<string, unknown>;
  metadata.listener_address = '127.0.0.1';
  for (const l of envoy.listeners) metadata[l.key] = portFor(endpoint(owner, l.port));
  if (envoy.app) metadata.app_port = portFor(envoy.app);
  b.admin.address.socket_address = { address: '127.0.0.1', port_value: 0 };
  b.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address = {
    address: '127.0.0.1',
    port_value: portFor(envoy.xds),
  };
  return stringify(b);
}
