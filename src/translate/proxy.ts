// Which kind of proxy is asking. Proxies with equal keys get the same snapshot, so the
// key holds exactly what changes their configuration and nothing else.

export interface ProxyKey {
  readonly role: 'gateway';
  /** Address and port of the HTTP listener the proxy opens. */
  readonly listenerAddress: string;
  readonly listenerPort: number;
}

export const DEFAULT_LISTENER_PORT = 10000;

/** Reads the key from a node's metadata (`role`, `listener_address`, `listener_port`). */
export function proxyKeyOf(metadata: Record<string, unknown> | undefined): ProxyKey {
  const port = Number(metadata?.listener_port ?? DEFAULT_LISTENER_PORT);
  const address = typeof metadata?.listener_address === 'string' ? metadata.listener_address : '0.0.0.0';
  return {
    role: 'gateway',
    listenerAddress: address,
    listenerPort: Number.isInteger(port) && port > 0 && port < 65536 ? port : DEFAULT_LISTENER_PORT,
  };
}

export const groupKey = (key: ProxyKey): string => `${key.role}/${key.listenerAddress}:${key.listenerPort}`;
