// Consul, Envoy and `shadowplane serve` for B6, started the way the integration tests
// start them (test/helpers/consul.ts, envoy.ts, shadowplane.ts), restated in small:
// those helpers report through vitest, which a benchmark does not run under. Every
// process is loopback-only, keeps its last output for errors, and is stopped by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { repoRoot } from './paths.js';
import { serveNodeFlags } from './node-flags.js';

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

const live = new Set<Proc>();
process.on('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

/** Stops every process started here that is still running, newest first. */
export async function stopAll(): Promise<void> {
  for (const p of [...live].reverse()) await p.stop();
}

export function startProc(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const child = spawn(command, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-64_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const proc: Proc = {
    name,
    child,
    output: () => tail,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      live.delete(proc);
    },
  };
  live.add(proc);
  return proc;
}

/** Polls until `probe` gives a value; fails early if `proc` exits, and after `timeoutMs`. */
export async function waitFor<T>(what: string, proc: Proc, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited (${proc.child.exitCode}) while waiting for ${what}:\n${proc.output()}`);
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${proc.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** ENVOY_BIN / CONSUL_BIN, else .tools/bin/<tool> (npm run tools); undefined if missing. */
export function findBinary(tool: 'envoy' | 'consul'): string | undefined {
  const file = process.env[tool === 'envoy' ? 'ENVOY_BIN' : 'CONSUL_BIN'] ?? path.join(repoRoot, '.tools', 'bin', tool);
  try {
    accessSync(file, constants.X_OK);
    return file;
  } catch {
    return undefined;
  }
}

export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

const timeout = (ms = 2_000): AbortSignal => AbortSignal.timeout(ms);

export async function startConsul(binary: string): Promise<{ proc: Proc; url: string; address: string }> {
  const [http, serfLan, serfWan, server] = (await freePorts(4)) as [number, number, number, number];
  const proc = startProc(
    'consul',
    binary,
    [
      'agent', '-dev', '-node=shadowplane-bench', '-bind=127.0.0.1', '-client=127.0.0.1',
      `-http-port=${http}`, `-serf-lan-port=${serfLan}`, `-serf-wan-port=${serfWan}`, `-server-port=${server}`,
      '-dns-port=-1', '-grpc-port=-1', '-grpc-tls-port=-1', '-log-level=warn',
    ],
    { ...process.env, CHECKPOINT_DISABLE: '1' },
  );
  const url = `http://127.0.0.1:${http}`;
  await waitFor('Consul to elect a leader', proc, async () => {
    const leader = (await (await fetch(`${url}/v1/status/leader`, { signal: timeout() })).json()) as string;
    return leader !== '' ? true : undefined;
  });
  return { proc, url, address: `127.0.0.1:${http}` };
}

export async function registerInstance(consulUrl: string, instance: { id: string; name: string; port: number; tags: string[] }): Promise<void> {
  const response = await fetch(`${consulUrl}/v1/agent/service/register`, {
    method: 'PUT',
    signal: timeout(5_000),
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ID: instance.id, Name: instance.name, Address: '127.0.0.1', Port: instance.port, Tags: instance.tags, Meta: {} }),
  });
  if (!response.ok) throw new Error(`Consul register ${instance.id}: ${response.status} ${await response.text()}`);
}

interface LogLine {
  msg?: string;
  port?: number;
}

/** `shadowplane serve` from the benchmark build, with xDS and admin on free ports. */
export async function startServe(args: string[], nodeArgs: string[] = []): Promise<{ proc: Proc; xdsPort: number; adminUrl: string }> {
  const cli = path.join(repoRoot, 'dist', 'bench', 'src', 'cli', 'main.js');
  const proc = startProc('shadowplane', process.execPath, [...serveNodeFlags(), ...nodeArgs, cli, 'serve', '--xds-address', '127.0.0.1:0', '--admin-address', '127.0.0.1:0', ...args]);
  const ports = await waitFor('shadowplane serve to listen', proc, () => {
    const lines = proc
      .output()
      .split('\n')
      .flatMap((l): LogLine[] => {
        try {
          return [JSON.parse(l) as LogLine];
        } catch {
          return [];
        }
      });
    const xds = lines.find((l) => l.msg === 'xDS server listening')?.port;
    const admin = lines.find((l) => l.msg === 'admin API listening')?.port;
    return Promise.resolve(xds && admin ? { xds, admin } : undefined);
  });
  return { proc, xdsPort: ports.xds, adminUrl: `http://127.0.0.1:${ports.admin}` };
}

/** An edge Envoy from envoy/gateway.yaml, pointed at `xdsPort`; admin on a port it picks itself. */
export async function startEnvoy(binary: string, xdsPort: number, nodeId: string, listenerPort: number): Promise<{ proc: Proc; adminUrl: string }> {
  const b = parse(readFileSync(path.join(repoRoot, 'envoy', 'gateway.yaml'), 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  b.node.id = nodeId;
  b.node.metadata.listener_port = listenerPort;
  b.admin.address.socket_address.port_value = 0;
  b.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = xdsPort;
  const dir = mkdtempSync(path.join(tmpdir(), 'shadowplane-bench-envoy-'));
  const config = path.join(dir, 'bootstrap.yaml');
  const adminPath = path.join(dir, 'admin-address');
  writeFileSync(config, stringify(b));
  const proc = startProc('envoy', binary, ['-c', config, '--disable-hot-restart', '--concurrency', '1', '--log-level', 'warn', '--admin-address-path', adminPath]);
  try {
    const adminUrl = await waitFor('Envoy to be ready (its first xDS configuration applied)', proc, async () => {
      const address = readFileSync(adminPath, 'utf8').trim();
      if (address === '') return undefined;
      const url = `http://${address}`;
      return (await (await fetch(`${url}/ready`, { signal: timeout() })).text()).trim() === 'LIVE' ? url : undefined;
    });
    return { proc, adminUrl };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
