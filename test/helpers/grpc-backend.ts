// A tiny gRPC upstream for tests: one unary method, `/shadowplane.test.Echo/Say`, that
// answers with the backend's own name, so a test can tell where a gRPC client's call
// was routed. Messages are JSON in Buffers: a hand-written service definition needs no
// .proto file and no code generation.
import * as grpc from '@grpc/grpc-js';

export interface SayRequest {
  text: string;
}

export interface SayReply {
  /** The name of the backend that answered. */
  backend: string;
  text: string;
}

const toJson = (value: SayRequest | SayReply): Buffer => Buffer.from(JSON.stringify(value));
const fromJson = <T>(bytes: Buffer): T => JSON.parse(bytes.toString('utf8')) as T;

export const echoService = {
  Say: {
    path: '/shadowplane.test.Echo/Say',
    requestStream: false,
    responseStream: false,
    requestSerialize: toJson,
    requestDeserialize: fromJson<SayRequest>,
    responseSerialize: toJson,
    responseDeserialize: fromJson<SayReply>,
  },
} satisfies grpc.ServiceDefinition;

export interface GrpcBackend {
  readonly name: string;
  readonly port: number;
  /** Metadata of every call received so far, oldest first. */
  readonly calls: readonly grpc.Metadata[];
  close(): Promise<void>;
}

/** A gRPC server on 127.0.0.1 (port chosen by the OS) that answers `Say` with `name`. */
export async function startGrpcBackend(name: string): Promise<GrpcBackend> {
  const calls: grpc.Metadata[] = [];
  const server = new grpc.Server();
  server.addService(echoService, {
    Say: (call: grpc.ServerUnaryCall<SayRequest, SayReply>, callback: grpc.sendUnaryData<SayReply>) => {
      calls.push(call.metadata);
      callback(null, { backend: name, text: call.request.text });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });
  return {
    name,
    port,
    calls,
    close: () => {
      // Clients keep their subchannels open; a graceful shutdown would wait for them.
      server.forceShutdown();
      return Promise.resolve();
    },
  };
}

/** A client for the echo service at `target` (`xds:///echo`, or `127.0.0.1:port`). */
export function echoClient(target: string, credentials = grpc.credentials.createInsecure()): grpc.Client {
  return new grpc.Client(target, credentials);
}

/**
 * One `Say` call; resolves with the name of the backend that answered. `headers` become
 * request metadata (what xDS route header matchers see).
 */
export function say(client: grpc.Client, { headers = {}, timeoutMs = 2_000 }: { headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<string> {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(headers)) metadata.set(key, value);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<SayRequest, SayReply>(
      echoService.Say.path,
      echoService.Say.requestSerialize,
      echoService.Say.responseDeserialize,
      { text: 'hello' },
      metadata,
      { deadline: Date.now() + timeoutMs },
      (err, reply) => (err || !reply ? reject(err ?? new Error('empty reply')) : resolve(reply.backend)),
    );
  });
}

/** `count` calls one after another; the backends that answered, in order. */
export async function sayTimes(client: grpc.Client, count: number, options?: Parameters<typeof say>[1]): Promise<string[]> {
  const answers: string[] = [];
  for (let i = 0; i < count; i++) answers.push(await say(client, options));
  return answers;
}
