// Which kind of proxy is asking, read from its node: `metadata.role` and the ports it
// opens (README, "Proxy roles"). Proxies with equal keys get the same snapshot, so the
// key holds exactly what changes their configuration and nothing else.
import { SHADOW_SUBSET } from '../model/rules.js';

export type ProxyKey =
  | {
      readonly role: 'edge';
      readonly address: string;
      readonly port: number;
    }
  | {
      readonly role: 'access';
      readonly address: string;
      readonly port: number;
      /** Where the audit log goes (a file path, or /dev/stdout). */
      readonly auditLog: string;
    }
  | {
      readonly role: 'sidecar';
      /** Its instance's subset: a `shadow` sidecar may only read production. */
      readonly subset: string;
      readonly address: string;
      readonly outboundPort: number;
      readonly inboundPort: number;
      readonly appPort: number;
    };

export class ProxyKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProxyKeyError';
  }
}

const port = (value: unknown, fallback: number, field: string): number => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ProxyKeyError(`node.metadata.${field}: expected a port (1-65535), got ${JSON.stringify(value)}`);
  return n;
};
const text = (value: unknown, fallback: string, field: string): string => {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '') throw new ProxyKeyError(`node.metadata.${field}: expected text, got ${JSON.stringify(value)}`);
  return value;
};

/**
 * A sidecar's subset, compared exactly: only `shadow` gets the write stand-in. A
 * variant of it (`Shadow`, ` shadow`) is refused rather than served as a production
 * sidecar whose writes would go through: a shadow misspelt in its bootstrap fails
 * closed, with the field named.
 */
function sidecarSubset(value: unknown): string {
  const subset = text(value, 'stable', 'subset');
  if (subset !== SHADOW_SUBSET && subset.trim().toLowerCase() === SHADOW_SUBSET) {
    throw new ProxyKeyError(`node.metadata.subset: ${JSON.stringify(subset)} is not "${SHADOW_SUBSET}": subsets are compared exactly, and only "${SHADOW_SUBSET}" has its writes stood in for`);
  }
  return subset;
}

/** Reads the key from a node; a wrong field is refused with its name. */
export function proxyKeyOf(cluster: string, metadata: Record<string, unknown> | undefined): ProxyKey {
  const m = metadata ?? {};
  const role = text(m.role, 'edge', 'role');
  const address = text(m.listener_address, '0.0.0.0', 'listener_address');
  switch (role) {
    case 'edge':
    case 'gateway':
      return { role: 'edge', address, port: port(m.listener_port, 10000, 'listener_port') };
    case 'access':
      return { role: 'access', address, port: port(m.listener_port, 10001, 'listener_port'), auditLog: text(m.audit_log_path, '/dev/stdout', 'audit_log_path') };
    case 'sidecar':
      // node.cluster names the sidecar's service; its configuration does not depend on
      // it, so sidecars of every service with the same ports share one snapshot.
      if (cluster === '') throw new ProxyKeyError('node.cluster: a sidecar names its service in node.cluster');
      return {
        role: 'sidecar',
        subset: sidecarSubset(m.subset),
        address,
        outboundPort: port(m.outbound_port, 15001, 'outbound_port'),
        inboundPort: port(m.inbound_port, 15006, 'inbound_port'),
        appPort: port(m.app_port, 8080, 'app_port'),
      };
    default:
      throw new ProxyKeyError(`node.metadata.role: "${role}" is not a role (edge, access or sidecar)`);
  }
}

/** Proxies with equal keys share one snapshot. */
export const groupKey = (key: ProxyKey): string =>
  JSON.stringify(Object.fromEntries(Object.entries(key).sort(([a], [b]) => (a < b ? -1 : 1))));
