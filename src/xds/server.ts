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

type AdsCall = grpc.ServerDuplexStream<unknown, Buffer>;

/** Listeners of a call's events; the emitter, the call, is their `this`. */
interface CallListeners {
  readonly sotw: (this: AdsCall, request: DiscoveryRequest) => void;
  readonly delta: (this: AdsCall, request: DeltaDiscoveryRequest) => void;
  readonly end: (this: AdsCall) => void;
  readonly cancelled: (this: AdsCall) => void;
  readonly error: (this: AdsCall, err: Error) => void;
  readonly close: (this: AdsCall) => void;
}

/** A stream's responses go to its call. Its methods are shared: nothing is made per stream but the object. */
class CallSink implements ResponseSink {
  constructor(private readonly call: AdsCall) {}

  write(bytes: Buffer): boolean {
    return this.call.write(bytes);
  }

  onDrain(listener: () => void): void {
    this.call.once('drain', listener);
  }

  fail(code: grpc.status, details: string): void {
    this.call.emit('error', { code, details });
  }
}

export class XdsServer implements StreamRegistry {
  private readonly server: grpc.Server;
  /** Every open stream, by its call. */
  private readonly live = new Map<AdsCall, AnyStream>();
  private nextId = 0;
  private boundPort?: number;
  /** One options object for every stream. */
  private readonly streamOptions: StreamOptions;
  /**
   * The calls' listeners, made once for every call: an emitter calls a listener with
   * itself as `this`, and `live` gives the call's stream, so a stream costs no closures
   * (ten thousand idle streams would otherwise keep six each).
   */
  private readonly listeners: CallListeners;

  constructor(private readonly options: XdsServerOptions) {
    this.streamOptions = {
      watcher: options.watcher,
      callbacks: options.callbacks,
      logger: options.logger,
      groupOf: (node) => options.groupOf(node),
      controlPlaneId: options.controlPlaneId,
      dependencyTimeoutMs: options.dependencyTimeoutMs ?? 5_000,
      pumpsPerTurn: PUMPS_PER_TURN,
    };
    const live = this.live;
    const finish = (call: AdsCall, reason: string): void => {
      const stream = live.get(call);
      if (!stream) return;
      live.delete(call);
      stream.close(reason);
    };
    this.listeners = {
      sotw(this: AdsCall, request: DiscoveryRequest) {
        const stream = live.get(this);
        if (stream instanceof SotwStream) stream.onRequest(request);
      },
      delta(this: AdsCall, request: DeltaDiscoveryRequest) {
        const stream = live.get(this);
        if (stream instanceof DeltaStream) stream.onRequest(request);
      },
      end(this: AdsCall) {
        finish(this, 'client ended the stream');
        this.end();
      },
      cancelled(this: AdsCall) {
        finish(this, 'cancelled');
      },
      error(this: AdsCall, err: Error) {
        finish(this, `error: ${err.message}`);
      },
      close(this: AdsCall) {
        finish(this, 'closed');
      },
    };
    this.server = new grpc.Server(grpcServerOptions(options));
    this.server.addService(adsServiceDefinition, {
      StreamAggregatedResources: (call: AdsCall) => this.serve(call, new SotwStream(++this.nextId, 'sotw', call.getPeer(), new CallSink(call), this.streamOptions)),
      DeltaAggregatedResources: (call: AdsCall) => this.serve(call, new DeltaStream(++this.nextId, 'delta', call.getPeer(), new CallSink(call), this.streamOptions)),
    });
    this.server.addService(csdsService.definition, csdsService.handlers(this));
  }

  streams(): AnyStream[] {
    return [...this.live.values()];
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
    for (const [call, stream] of this.live) {
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

  private serve(call: AdsCall, stream: AnyStream): void {
    this.live.set(call, stream);
    const on = this.listeners;
    call.on('data', stream instanceof SotwStream ? on.sotw : on.delta);
    call.on('end', on.end);
    call.on('cancelled', on.cancelled);
    call.on('error', on.error);
    call.on('close', on.close);
  }
}
