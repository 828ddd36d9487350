// The floor under B3 and B4: a @grpc/grpc-js server with the xDS server's options that
// answers the ADS method by holding the call and, when given a sync, by sending each
// new call responses of the sizes an xDS sync has (or given responses), one after the
// other. No decoding, no snapshot, no stream state: what an idle bidi stream costs here
// is what the transport costs (the HTTP/2 session, nghttp2, grpc-js's call), and what a
// fan-out costs (one response written to every call, every proxy's ACK read) is the
// transport's and the proxies' work, which no change to the xDS code can take away.
//
// The sync matters to the floor: Node's HTTP/2 session keeps the capacity of the
// buffer it copied the largest burst's frame headers into (9 bytes for every 16 KB
// DATA frame the peer's window let through at once), so a connection that has carried
// a 6 MB response holds about 3 KB more than one that has not, for as long as it
// lives.
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { grpcServerOptions } from '../../src/xds/server.js';
import { ADS_METHOD, passThrough } from '../proxy/channel.js';

/** An unused DiscoveryResponse field number: the padding that gives a response its size. */
const PADDING_FIELD = 1000;

/** One response of a sync: its type URL, and its size on the wire (before gRPC's framing). */
export interface SyncResponse {
  typeUrl: string;
  bytes: number;
}

/**
 * A DiscoveryResponse of `bytes` bytes with the type's URL, a version and a nonce, and
 * no resources: a proxy ACKs it as it ACKs any response, and skips the padding.
 */
export function paddedResponse({ typeUrl, bytes }: SyncResponse): Buffer {
  const head = protobuf.Writer.create().uint32((1 << 3) | 2).string('1').uint32((4 << 3) | 2).string(typeUrl).uint32((5 << 3) | 2).string('1').finish();
  // The padding field's tag and length prefix take a few bytes of their own.
  const tag = protobuf.Writer.create().uint32((PADDING_FIELD << 3) | 2).finish().length;
  let pad = Math.max(0, bytes - head.length - tag - 1);
  while (pad > 0 && head.length + tag + protobuf.Writer.create().uint32(pad).finish().length + pad > bytes) pad--;
  const tail = protobuf.Writer.create().uint32((PADDING_FIELD << 3) | 2).bytes(new Uint8Array(pad)).finish();
  return Buffer.concat([head, tail]);
}

const definition = {
  StreamAggregatedResources: {
    path: ADS_METHOD,
    requestStream: true,
    responseStream: true,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
  } satisfies grpc.MethodDefinition<Buffer, Buffer>,
};

export class BareGrpcServer {
  private readonly server = new grpc.Server(grpcServerOptions());
  private readonly calls = new Set<grpc.ServerDuplexStream<Buffer, Buffer>>();
  private readonly sync: Buffer[];
  private awaited?: { count: number; resolve: (at: number) => void };
  /** Requests received (and dropped), to tell that every client has spoken. */
  requests = 0;
  /** Calls whose whole sync has been handed to the transport. */
  synced = 0;

  /** `sync`: responses of given sizes (padded), or encoded responses as they are. */
  constructor(sync: readonly (SyncResponse | Buffer)[] = []) {
    this.sync = sync.map((r) => (Buffer.isBuffer(r) ? r : paddedResponse(r)));
    this.server.addService(definition, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        this.calls.add(call);
        const release = (): void => {
          this.calls.delete(call);
        };
        let sent = false;
        call.on('data', () => {
          this.requests++;
          if (this.awaited && this.requests >= this.awaited.count) {
            this.awaited.resolve(performance.now());
            this.awaited = undefined;
          }
          if (sent) return;
          sent = true;
          this.send(call, 0);
        });
        call.on('end', () => {
          release();
          call.end();
        });
        call.on('cancelled', release);
        call.on('error', release);
        call.on('close', release);
      },
    });
  }

  /** Writes the sync's responses one at a time, each once the one before has gone out, as an xDS server's come. */
  private send(call: grpc.ServerDuplexStream<Buffer, Buffer>, i: number): void {
    const response = this.sync[i];
    if (response === undefined) {
      this.synced++;
      return;
    }
    call.write(response, () => this.send(call, i + 1));
  }

  /**
   * Writes `response` to every call held, in one turn, and resolves with the time
   * (performance.now()) the last of their next requests arrives: a fan-out with no
   * server work in it.
   */
  fanOut(response: Buffer, timeoutMs: number): Promise<number> {
    const calls = this.calls.size;
    const from = this.requests;
    const acked = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.requests - from} of ${calls} ACKs after ${timeoutMs} ms`)), timeoutMs);
      this.awaited = {
        count: from + calls,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      };
    });
    for (const call of this.calls) call.write(response);
    return acked;
  }

  /** Calls being held. */
  get held(): number {
    return this.calls.size;
  }

  start(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
    });
  }

  async stop(): Promise<void> {
    for (const call of this.calls) call.end();
    this.calls.clear();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 500);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
