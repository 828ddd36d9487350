// The gRPC side of xDS: ADS (SotW and delta) and CSDS on one server. Requests are
// decoded here; responses arrive already encoded (see wire.ts), so the serializer
// passes bytes through untouched.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { ConfigWatcher } from './cache.js';
import type { XdsCallbacks } from './callbacks.js';
import { SotwStream } from './sotw-stream.js';
import { DeltaStream } from './delta-stream.js';
import { csdsService, type StreamRegistry } from './csds.js';
import type { ResponseSink, StreamOptions } from './stream-base.js';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest, type DeltaDiscoveryRequest, type DiscoveryRequest, type Node } from './wire.js';
import type { Logger } from '../log.js';

const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService';
const passThrough = (b: Buffer): Buffer => b;
/**
 * Streams that build and write their responses in one turn of the event loop. Each can
 * take a millisecond (a 0.6 MB initial sync); bounding them bounds how long a storm of
 * reconnecting proxies holds everything else up (ACKs, health checks, the admin API).
 */
const PUMPS_PER_TURN = 32;

function adsMethod<Req>(name: string, decode: (b: Uint8Array) => Req): grpc.MethodDefinition<Req, Buffer> {
  return {
    path: `${ADS}/${name}`,
    requestStream: true,
    responseStream: true,
    requestSerialize: () => {
      throw new Error('the server never sends requests');
    },
    requestDeserialize: decode,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
  };
}

export const adsServiceDefinition = {
  StreamAggregatedResources: adsMethod('StreamAggregatedResources', decodeDiscoveryRequest),
  DeltaAggregatedResources: adsMethod('DeltaAggregatedResources', decodeDeltaDiscoveryRequest),
};

export interface TlsFiles {
  cert_file: string;
  key_file: string;
  ca_file?: string;
}

export interface XdsServerOptions {
  /** host:port; port 0 picks a free one. */
  address: string;
  watcher: ConfigWatcher;
  callbacks: XdsCallbacks;
  logger: Logger;
  groupOf(node: Node): string;
  controlPlaneId: string;
  maxMessageBytes?: number;
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  tls?: TlsFiles;
  dependencyTimeoutMs?: number;
}

type AnyStream = SotwStream | DeltaStream;

/** The gRPC server's options for `options` (unset: the defaults); the benchmarks' bare server uses them too. */
export function grpcServerOptions(options: Pick<XdsServerOptions, 'maxMessageBytes' | 'keepaliveTimeMs' | 'keepaliveTimeoutMs'> = {}): grpc.ServerOptions {
  const max = options.maxMessageBytes ?? 64 * 1024 * 1024;
  return {
    'grpc.max_receive_message_length': max,
    'grpc.max_send_message_length': max,
    'grpc.keepalive_time_ms': options.keepaliveTimeMs ?? 30_000,
    'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs ?? 10_000,
    // Envoy pings on idle ADS streams when told to; do not punish it for that.
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    // Channelz keeps per-connection call counters and traces nobody here reads (CSDS
    // reports what proxies hold); without it a connection costs about 1 KB less.
    'grpc.enable_channelz': 0,
  };
}

export class XdsServer implements StreamRegistry {
  private readonly server: grpc.Server;
  private readonly live = new Map<number, { stream: AnyStream; call: grpc.ServerDuplexStream<unknown, Buffer> }>();
  private nextId = 0;
  private boundPort?: number;

  constructor(private readonly options: XdsServerOptions) {
    this.server = new grpc.Server(grpcServerOptions(options));
    this.server.addService(adsServiceDefinition, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) =>
        this.serve(call, (id, sink, opts) => new SotwStream(id, 'sotw', call.getPeer(), sink, opts), (s, r) => (s as SotwStream).onRequest(r)),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) =>
        this.serve(call, (id, sink, opts) => new DeltaStream(id, 'delta', call.getPeer(), sink, opts), (s, r) => (s as DeltaStream).onRequest(r)),
    });
    this.server.addService(csdsService.definition, csdsService.handlers(this));
  }

  streams(): AnyStream[] {
    return [...this.live.values()].map((l) => l.stream);
  }

  get port(): number {
    if (this.boundPort === undefined) throw new Error('the xDS server is not started');
    return this.boundPort;
  }

  private credentials(): grpc.ServerCredentials {
    const tls = this.options.tls;
    if (!tls) return grpc.ServerCredentials.createInsecure();
    const ca = tls.ca_file ? readFileSync(tls.ca_file) : null;
    return grpc.ServerCredentials.createSsl(
      ca,
      [{ cert_chain: readFileSync(tls.cert_file), private_key: readFileSync(tls.key_file) }],
      ca !== null,
    );
  }

  async start(): Promise<number> {
    const credentials = this.credentials();
    this.boundPort = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(this.options.address, credentials, (err, port) => (err ? reject(err) : resolve(port)));
    });
    this.options.logger.info({ address: this.options.address, port: this.boundPort, tls: Boolean(this.options.tls) }, 'xDS server listening');
    return this.boundPort;
  }

  /** Ends every stream (clients reconnect elsewhere), then frees the port. */
  async stop(graceMs = 2_000): Promise<void> {
    for (const { stream, call } of this.live.values()) {
      stream.close('server shutting down');
      call.end();
    }
    this.live.clear();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private serve<Req>(
    call: grpc.ServerDuplexStream<Req, Buffer>,
    create: (id: number, sink: ResponseSink, options: StreamOptions) => AnyStream,
    handle: (stream: AnyStream, request: Req) => void,
  ): void {
    const id = ++this.nextId;
    const sink: ResponseSink = {
      write: (bytes) => call.write(bytes),
      onDrain: (listener) => call.once('drain', listener),
      fail: (code, details) => call.emit('error', { code, details }),
    };
    const stream = create(id, sink, {
      watcher: this.options.watcher,
      callbacks: this.options.callbacks,
      logger: this.options.logger,
      groupOf: (node) => this.options.groupOf(node),
      controlPlaneId: this.options.controlPlaneId,
      dependencyTimeoutMs: this.options.dependencyTimeoutMs ?? 5_000,
      pumpsPerTurn: PUMPS_PER_TURN,
    });
    this.live.set(id, { stream, call: call });
    const finish = (reason: string): void => {
      if (!this.live.delete(id)) return;
      stream.close(reason);
    };
    call.on('data', (request: Req) => handle(stream, request));
    call.on('end', () => {
      finish('client ended the stream');
      call.end();
    });
    call.on('cancelled', () => finish('cancelled'));
    call.on('error', (err: Error) => finish(`error: ${err.message}`));
    call.on('close', () => finish('closed'));
  }
}
