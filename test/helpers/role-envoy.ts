// Envoys in each proxy role (README, "Proxy roles"): the ready bootstrap
// envoy/gateway.yaml with the node's cluster and metadata set for the role.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { startEnvoy, type Envoy } from './envoy.js';

const gatewayBootstrap = fileURLToPath(new URL('../../envoy/gateway.yaml', import.meta.url));

export interface RoleEnvoyOptions {
  xdsPort: number;
  nodeId: string;
  /** node.cluster: the service, for a sidecar. */
  cluster?: string;
  metadata: Record<string, unknown>;
}

export function roleBootstrap({ xdsPort, nodeId, cluster, metadata }: RoleEnvoyOptions): string {
  const b = parse(readFileSync(gatewayBootstrap, 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  b.node = { id: nodeId, cluster: cluster ?? b.node.cluster, metadata: { listener_address: '127.0.0.1', ...metadata } };
  b.admin.address.socket_address.port_value = 0;
  b.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = xdsPort;
  return stringify(b);
}

export function startRoleEnvoy(options: RoleEnvoyOptions): Promise<Envoy> {
  // Envoy writes file logs out every 10 s by default; the audit tests read them sooner.
  return startEnvoy({ bootstrapYaml: roleBootstrap(options), readyTimeoutMs: 30_000, extraArgs: ['--file-flush-interval-msec', '100'] });
}
