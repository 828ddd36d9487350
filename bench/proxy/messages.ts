// The IPC conversation between a benchmark (the parent, which runs the control plane)
// and its simulated-proxy processes.

export interface OpenCommand {
  cmd: 'open';
  /** Streams to open in this process, each a proxy with its own channel (connection). */
  count: number;
  port: number;
  /** Start times are spread evenly over this many ms (0: all at once). */
  spreadMs: number;
  /** Node ids are `<idPrefix>-<n>`. */
  idPrefix: string;
  metadata: Record<string, unknown>;
  /** The route configurations a proxy asks RDS for, once it has a listener. */
  routeConfigs: string[];
  /** The gRPC client: h2-stream.ts on node:http2 (the default), or grpc-js. */
  client?: ProxyClient;
}

export type ProxyClient = 'h2' | 'grpc-js';

export type Command = OpenCommand | { cmd: 'close' } | { cmd: 'stats' } | { cmd: 'exit' };

export interface FleetStats {
  /** Streams opened and not yet ended. */
  open: number;
  /** Streams that have ACKed at least one response of every type. */
  synced: number;
  responses: number;
  responseBytes: number;
  /** The largest response of each type URL, in bytes (what one stream's sync is made of). */
  largest: Record<string, number>;
  acks: number;
  /** Streams that ended with a status other than CANCELLED (which `close` causes). */
  failed: number;
  lastError?: string;
  rssBytes: number;
  /** CPU time, user and system, in ms. */
  cpuMs: number;
}

export type Event =
  | { evt: 'ready' }
  | { evt: 'opened'; count: number }
  | { evt: 'closed' }
  | { evt: 'stats'; stats: FleetStats };
