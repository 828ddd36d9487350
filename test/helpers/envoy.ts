// Runs a real Envoy from a bootstrap with ${NAME} placeholders and reads its admin API.
// The admin port defaults to 0: Envoy writes the bound address to --admin-address-path,
// so there is no window in which another process can take the port. Listeners may use
// port 0 too; listenerPort() reads the bound port back.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getJson, getText } from './http.js';
import { abortOnExit, startFailure, startProcess, type LogSource, type ManagedProcess } from './process.js';
import { requireBinary } from './tools.js';
import { waitFor } from './wait.js';

export interface EnvoyOptions {
  /** A bootstrap file, e.g. `envoy/static-smoke.yaml`; or give `bootstrapYaml`. */
  bootstrapPath?: string;
  bootstrapYaml?: string;
  /** Values for `${NAME}` placeholders; ADMIN_PORT defaults to 0. */
  substitutions?: Record<string, string | number>;
  logLevel?: 'trace' | 'debug' | 'info' | 'warning' | 'error';
  extraArgs?: string[];
  readyTimeoutMs?: number;
}

export interface ClusterStatus {
  name: string;
  /** True for clusters that came over CDS rather than from the bootstrap. */
  added_via_api?: boolean;
  host_statuses?: { address?: { socket_address?: { address: string; port_value: number } } }[];
}

export interface Envoy extends LogSource {
  readonly adminUrl: string;
  readonly process: ManagedProcess;
  /** The bootstrap as Envoy got it, placeholders substituted. */
  readonly bootstrap: string;
  stop(): Promise<void>;
  /** GET /config_dump; `query` such as `resource=dynamic_active_clusters`. */
  configDump(query?: string): Promise<unknown>;
  /** Counters and gauges from GET /stats?format=json, optionally filtered by a regex. */
  stats(filter?: string): Promise<Map<string, number>>;
  /** One counter or gauge; undefined when Envoy does not have it. */
  stat(name: string): Promise<number | undefined>;
  clusters(): Promise<ClusterStatus[]>;
  /** The port a listener is bound to (useful with port_value 0). */
  listenerPort(listenerName: string): Promise<number>;
}

/** Replaces every `${NAME}`; a placeholder left without a value is an error, not a silent 0. */
export function substitute(template: string, values: Record<string, string | number>): string {
  const missing = new Set<string>();
  const text = template.replace(/\$\{([A-Z0-9_]+)\}/g, (_whole, name: string) => {
    const value = values[name];
    if (value === undefined) missing.add(name);
    return String(value);
  });
  if (missing.size > 0) throw new Error(`bootstrap placeholders without a value: ${[...missing].join(', ')}`);
  return text;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export async function startEnvoy(options: EnvoyOptions): Promise<Envoy> {
  const binary = requireBinary('envoy');
  const template = options.bootstrapYaml ?? (options.bootstrapPath ? await readFile(options.bootstrapPath, 'utf8') : undefined);
  if (template === undefined) throw new Error('startEnvoy needs bootstrapPath or bootstrapYaml');
  const bootstrap = substitute(template, { ADMIN_PORT: 0, ...options.substitutions });

  const dir = await mkdtemp(join(tmpdir(), 'shadowplane-envoy-'));
  const configPath = join(dir, 'bootstrap.yaml');
  const adminAddressPath = join(dir, 'admin-address');
  await writeFile(configPath, bootstrap);

  const proc = startProcess({
    name: 'envoy',
    command: binary,
    args: [
      '-c', configPath,
      // No shared memory, so concurrent Envoys need no distinct --base-id.
      '--disable-hot-restart',
      // One worker thread: enough for tests, kind to a 2-core CI machine.
      '--concurrency', '1',
      '--log-level', options.logLevel ?? 'info',
      '--admin-address-path', adminAddressPath,
      ...(options.extraArgs ?? []),
    ],
  });
  const stop = async (): Promise<void> => {
    await proc.stop();
  };

  try {
    // One wait for both steps: the address file may be read while half written, and
    // /ready answers 503 while Envoy initialises (clusters warming, xDS pending).
    const adminUrl = await waitFor(
      async () => {
        const address = (await readFile(adminAddressPath, 'utf8').catch(() => '')).trim();
        if (address === '') return undefined;
        const url = `http://${address}`;
        return (await getText(`${url}/ready`, 2_000)).trim() === 'LIVE' ? url : undefined;
      },
      {
        description: 'Envoy admin /ready to answer LIVE',
        timeoutMs: options.readyTimeoutMs ?? 30_000,
        signal: abortOnExit(proc, 'starting'),
      },
    );
    return envoyHandle(proc, adminUrl, bootstrap, stop);
  } catch (error) {
    throw await startFailure(proc, error, stop);
  } finally {
    // Envoy has read its bootstrap by the time it is ready (or it failed), so the files
    // go now: a worker killed later cannot leave them behind.
    await rm(dir, { recursive: true, force: true });
  }
}

function envoyHandle(proc: ManagedProcess, adminUrl: string, bootstrap: string, stop: () => Promise<void>): Envoy {
  const stats = async (filter?: string): Promise<Map<string, number>> => {
    const query = filter === undefined ? '' : `&filter=${encodeURIComponent(filter)}`;
    const body = await getJson<{ stats: { name?: string; value?: number }[] }>(`${adminUrl}/stats?format=json${query}`);
    const result = new Map<string, number>();
    // Histograms come as one entry without name/value; only counters and gauges count.
    for (const entry of body.stats) {
      if (typeof entry.name === 'string' && typeof entry.value === 'number') result.set(entry.name, entry.value);
    }
    return result;
  };
  return {
    name: 'envoy',
    adminUrl,
    process: proc,
    bootstrap,
    logs: () => proc.logs(),
    stop,
    configDump: (query) => getJson(`${adminUrl}/config_dump${query ? `?${query}` : ''}`),
    stats,
    stat: async (name) => (await stats(`^${escapeRegExp(name)}$`)).get(name),
    clusters: async () =>
      (await getJson<{ cluster_statuses?: ClusterStatus[] }>(`${adminUrl}/clusters?format=json`)).cluster_statuses ?? [],
    listenerPort: async (listenerName) => {
      const body = await getJson<{
        listener_statuses?: { name: string; local_address?: { socket_address?: { port_value?: number } } }[];
      }>(`${adminUrl}/listeners?format=json`);
      const port = body.listener_statuses?.find((l) => l.name === listenerName)?.local_address?.socket_address?.port_value;
      if (port === undefined) throw new Error(`Envoy has no listener named ${listenerName}`);
      return port;
    },
  };
}
