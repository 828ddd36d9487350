// Runs a real Consul agent in -dev mode (in-memory server, no data dir) with every port
// on 127.0.0.1 and chosen fresh, so test files can each run their own agent side by side.
import { getText, putJson } from './http.js';
import { freePorts } from './ports.js';
import { abortOnExit, startFailure, startProcess, type LogSource, type ManagedProcess } from './process.js';
import { requireBinary } from './tools.js';
import { waitFor } from './wait.js';

export interface ConsulOptions {
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** The HTTP API's port, to restart an agent where a stopped one was; otherwise a free one. */
  httpPort?: number;
  extraArgs?: string[];
  readyTimeoutMs?: number;
}

export interface ConsulAgent extends LogSource {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `127.0.0.1:<port>`, the form CONSUL_HTTP_ADDR takes. */
  readonly httpAddr: string;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/** One service instance, as the agent API registers it. */
export interface ServiceInstance {
  name: string;
  /** Defaults to `<name>-<port>`. */
  id?: string;
  /** Defaults to 127.0.0.1. */
  address?: string;
  port: number;
  tags?: string[];
  meta?: Record<string, string>;
}

// The ports are probed free and then released before Consul binds them, so another
// process can occasionally take one first; a fresh set of ports fixes that.
const maxAttempts = 3;

export async function startConsul(options: ConsulOptions = {}): Promise<ConsulAgent> {
  const binary = requireBinary('consul');
  for (let attempt = 1; ; attempt++) {
    try {
      return await startConsulOnce(binary, options);
    } catch (error) {
      const portTaken = error instanceof Error && /address already in use/i.test(error.message);
      if (!portTaken || attempt === maxAttempts) throw error;
    }
  }
}

async function startConsulOnce(binary: string, options: ConsulOptions): Promise<ConsulAgent> {
  const [free, serfLan, serfWan, server] = (await freePorts(4)) as [number, number, number, number];
  const http = options.httpPort ?? free;
  const proc = startProcess({
    name: 'consul',
    command: binary,
    args: [
      'agent',
      '-dev',
      '-node=shadowplane-test',
      '-bind=127.0.0.1',
      '-client=127.0.0.1',
      `-http-port=${http}`,
      `-serf-lan-port=${serfLan}`,
      `-serf-wan-port=${serfWan}`,
      `-server-port=${server}`,
      // -1 turns a listener off: DNS and gRPC (xDS for Consul's own Envoys) are not used.
      '-dns-port=-1',
      '-grpc-port=-1',
      '-grpc-tls-port=-1',
      `-log-level=${options.logLevel ?? 'info'}`,
      ...(options.extraArgs ?? []),
    ],
    // No update check against checkpoint-api.hashicorp.com from a test run.
    env: { ...process.env, CHECKPOINT_DISABLE: '1' },
  });
  const url = `http://127.0.0.1:${http}`;
  try {
    // A dev agent elects itself; until then the catalog API answers 500 "No cluster leader".
    await waitFor(async () => JSON.parse(await getText(`${url}/v1/status/leader`, 2_000)) !== '', {
      description: `Consul ${url} to elect a leader`,
      timeoutMs: options.readyTimeoutMs ?? 30_000,
      signal: abortOnExit(proc, 'starting'),
    });
  } catch (error) {
    throw await startFailure(proc, error, () => proc.stop());
  }
  return {
    name: 'consul',
    host: '127.0.0.1',
    port: http,
    httpAddr: `127.0.0.1:${http}`,
    url,
    process: proc,
    logs: () => proc.logs(),
    stop: async () => {
      await proc.stop();
    },
  };
}

/** Registers `instance` with the agent (PUT /v1/agent/service/register); returns its id. */
export async function registerService(consul: Pick<ConsulAgent, 'url'>, instance: ServiceInstance): Promise<string> {
  const id = instance.id ?? `${instance.name}-${instance.port}`;
  await putJson(`${consul.url}/v1/agent/service/register`, {
    ID: id,
    Name: instance.name,
    Address: instance.address ?? '127.0.0.1',
    Port: instance.port,
    Tags: instance.tags ?? [],
    Meta: instance.meta ?? {},
  });
  return id;
}

export async function deregisterService(consul: Pick<ConsulAgent, 'url'>, id: string): Promise<void> {
  await putJson(`${consul.url}/v1/agent/service/deregister/${encodeURIComponent(id)}`);
}
