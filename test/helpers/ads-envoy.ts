// An Envoy that takes its configuration from an xDS server under test: the ready
// bootstrap envoy/gateway.yaml with only its ports, node and ADS flavour changed.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { startEnvoy, type Envoy } from './envoy.js';
import { waitFor } from './wait.js';

const gatewayBootstrap = fileURLToPath(new URL('../../envoy/gateway.yaml', import.meta.url));

export interface AdsEnvoyOptions {
  xdsPort: number;
  nodeId?: string;
  /** Port of the HTTP listener, told to Shadowplane through node metadata. */
  listenerPort?: number;
  /** GRPC (state of the world, the default) or DELTA_GRPC (incremental). */
  apiType?: 'GRPC' | 'DELTA_GRPC';
  /** Wait for Envoy's /ready (it waits for its first xDS configuration). */
  waitReady?: boolean;
}

type Yaml = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function adsBootstrap({ xdsPort, nodeId = 'gateway-test', listenerPort = 10000, apiType = 'GRPC' }: AdsEnvoyOptions): string {
  const b = parse(readFileSync(gatewayBootstrap, 'utf8')) as Yaml;
  b.node.id = nodeId;
  b.node.metadata.listener_port = listenerPort;
  b.admin.address.socket_address.port_value = 0;
  b.dynamic_resources.ads_config.api_type = apiType;
  b.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = xdsPort;
  return stringify(b);
}

export function startAdsEnvoy(options: AdsEnvoyOptions): Promise<Envoy> {
  return startEnvoy({ bootstrapYaml: adsBootstrap(options), readyTimeoutMs: 30_000 });
}

/** Envoy's `control_plane.connected_state` gauge: 1 while its ADS stream is up. */
export async function waitConnected(envoy: Envoy, connected: boolean): Promise<void> {
  await waitFor(async () => (await envoy.stat('control_plane.connected_state')) === (connected ? 1 : 0), {
    description: `Envoy's ADS stream to be ${connected ? 'up' : 'down'}`,
    timeoutMs: 20_000,
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/**
 * Sends one request through Envoy with the given Host header (fetch may not set Host);
 * a network error or a timeout counts as status 0.
 */
export function request(
  port: number,
  host: string,
  path = '/',
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; backend: string | null; body: string }> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: { ...options.headers, host }, agent, timeout: 5_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const backend = res.headers['x-backend'];
          resolve({ status: res.statusCode ?? 0, backend: typeof backend === 'string' ? backend : null, body: Buffer.concat(chunks).toString() });
        });
        res.on('error', () => resolve({ status: 0, backend: null, body: '' }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, backend: null, body: '' }));
    req.end();
  });
}

/**
 * Requests in a loop until stopped, counting statuses and backends: the "continuous
 * traffic" of the make-before-break and restart tests. Bounded by `maxRequests`.
 */
export function continuousTraffic(port: number, host: string, path: string, maxRequests = 50_000) {
  const statuses = new Map<number, number>();
  const backends = new Map<string, number>();
  let running = true;
  let sent = 0;
  const loop = (async () => {
    while (running && sent < maxRequests) {
      sent++;
      const r = await request(port, host, path);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.backend) backends.set(r.backend, (backends.get(r.backend) ?? 0) + 1);
    }
  })();
  return {
    statuses,
    backends,
    get sent() {
      return sent;
    },
    failures: () => [...statuses].filter(([s]) => s !== 200).reduce((n, [, c]) => n + c, 0),
    async stop() {
      running = false;
      await loop;
    },
  };
}
