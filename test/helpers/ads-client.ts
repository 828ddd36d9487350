// A raw ADS client over gRPC, for protocol tests against a real XdsServer: requests are
// plain objects in Envoy's field names (encoded with protobufjs), responses come back
// decoded the same way. It plays no protocol itself; the test says every byte it sends.
import * as grpc from '@grpc/grpc-js';
import { lookupMessage } from '../../src/xds/protos.js';
import { decodeMessage, typeUrlOf, type ResourceObject } from '../../src/xds/resources.js';

export type AdsKind = 'sotw' | 'delta';

/** The longest window `expectSilence` waits: absence can only be shown by waiting. */
export const SILENCE_WINDOW_MS = 300;

const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService';
const CSDS = '/envoy.service.status.v3.ClientStatusDiscoveryService';

function encoder(messageName: string): (object: ResourceObject) => Buffer {
  return (object) => {
    const type = lookupMessage(messageName);
    return Buffer.from(type.encode(type.fromObject(object)).finish());
  };
}

function decoder(messageName: string): (bytes: Buffer) => ResourceObject {
  return (bytes) => decodeMessage(typeUrlOf(messageName), bytes);
}

function method(path: string, request: string, response: string, streaming: boolean): grpc.MethodDefinition<ResourceObject, ResourceObject> {
  return {
    path,
    requestStream: streaming,
    responseStream: streaming,
    requestSerialize: encoder(request),
    requestDeserialize: decoder(request),
    responseSerialize: encoder(response),
    responseDeserialize: decoder(response),
  };
}

const definition = {
  StreamAggregatedResources: method(`${ADS}/StreamAggregatedResources`, 'envoy.service.discovery.v3.DiscoveryRequest', 'envoy.service.discovery.v3.DiscoveryResponse', true),
  DeltaAggregatedResources: method(
    `${ADS}/DeltaAggregatedResources`,
    'envoy.service.discovery.v3.DeltaDiscoveryRequest',
    'envoy.service.discovery.v3.DeltaDiscoveryResponse',
    true,
  ),
  FetchClientStatus: method(`${CSDS}/FetchClientStatus`, 'envoy.service.status.v3.ClientStatusRequest', 'envoy.service.status.v3.ClientStatusResponse', false),
};

const XdsTestClient = grpc.makeGenericClientConstructor(definition, 'XdsTestClient');

type Waiter = { resolve: (r: ResourceObject) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

/** One ADS stream (SotW or delta) to `127.0.0.1:port`. */
export class AdsClient {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<ResourceObject, ResourceObject>;
  private readonly queue: ResourceObject[] = [];
  private readonly waiters: Waiter[] = [];
  private endStatus?: grpc.StatusObject;
  private readonly statusListeners: ((s: grpc.StatusObject) => void)[] = [];
  private closed = false;

  constructor(port: number, readonly kind: AdsKind) {
    this.client = new XdsTestClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const open = (this.client as unknown as Record<string, () => grpc.ClientDuplexStream<ResourceObject, ResourceObject>>)[
      kind === 'sotw' ? 'StreamAggregatedResources' : 'DeltaAggregatedResources'
    ]!;
    this.call = open.call(this.client);
    this.call.on('data', (response: ResourceObject) => {
      const waiter = this.waiters.shift();
      if (!waiter) {
        this.queue.push(response);
        return;
      }
      clearTimeout(waiter.timer);
      waiter.resolve(response);
    });
    // The status arrives as 'error' for a non-OK end and always as 'status'; one handler is enough.
    this.call.on('error', () => {});
    this.call.on('status', (status: grpc.StatusObject) => {
      this.endStatus = status;
      for (const w of this.waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error(`the stream ended (${grpc.status[status.code]}: ${status.details}) while a response was awaited`));
      }
      for (const l of this.statusListeners.splice(0)) l(status);
    });
  }

  /** Sends a DiscoveryRequest (SotW) or DeltaDiscoveryRequest (delta), in Envoy's field names. */
  send(request: ResourceObject): void {
    this.call.write(request);
  }

  /** The next response, or an error if none arrives within `timeoutMs` or the stream ends. */
  next(timeoutMs = 5_000): Promise<ResourceObject> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.endStatus) return Promise.reject(new Error(`the stream has ended (${grpc.status[this.endStatus.code]}: ${this.endStatus.details})`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new Error(`no ${this.kind} response within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * Waits a fixed window (at most SILENCE_WINDOW_MS) and fails if any response arrived:
   * the one wait in these tests that cannot poll, because it asserts that nothing happens.
   */
  async expectSilence(ms = SILENCE_WINDOW_MS): Promise<void> {
    if (ms > SILENCE_WINDOW_MS) throw new Error(`expectSilence waits at most ${SILENCE_WINDOW_MS} ms, not ${ms}`);
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.queue.length > 0) {
      const summary = this.queue.map((r) => `${String(r.type_url)} nonce ${String(r.nonce)}`).join(', ');
      throw new Error(`expected no response within ${ms} ms, got ${this.queue.length}: ${summary}`);
    }
  }

  /** How the stream ended, once it has. */
  status(timeoutMs = 5_000): Promise<grpc.StatusObject> {
    if (this.endStatus) return Promise.resolve(this.endStatus);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the stream did not end within ${timeoutMs} ms`)), timeoutMs);
      this.statusListeners.push((s) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
  }

  /** Cancels the stream (if still open) and closes the channel. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.endStatus) this.call.cancel();
    this.client.close();
  }
}

/** CSDS FetchClientStatus against `127.0.0.1:port`; the decoded ClientStatusResponse. */
export async function fetchClientStatus(port: number, request: ResourceObject = {}, timeoutMs = 5_000): Promise<ResourceObject> {
  const client = new XdsTestClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const fetch = (client as unknown as Record<string, unknown>).FetchClientStatus as (
    request: ResourceObject,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<ResourceObject>,
  ) => grpc.ClientUnaryCall;
  try {
    return await new Promise<ResourceObject>((resolve, reject) => {
      fetch.call(client, request, { deadline: Date.now() + timeoutMs }, (err, response) => (err || !response ? reject(err ?? new Error('no CSDS response')) : resolve(response)));
    });
  } finally {
    client.close();
  }
}
