// The floor under B4: a @grpc/grpc-js server with the xDS server's options that
// answers the ADS method by holding the call and nothing else. No decoding, no
// snapshot, no stream state: what an idle bidi stream costs here is what the
// transport costs (the HTTP/2 session, nghttp2, grpc-js's call), which no change to
// the xDS code can take away.
import * as grpc from '@grpc/grpc-js';
import { grpcServerOptions } from '../../src/xds/server.js';

const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const passThrough = (b: Buffer): Buffer => b;


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
  /** Requests received (and dropped), to tell that every client has spoken. */
  requests = 0;

  constructor() {
    this.server.addService(definition, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        this.calls.add(call);
        const release = (): void => {
          this.calls.delete(call);
        };
        call.on('data', () => this.requests++);
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
