// The bare grpc-js server under B3's and B4's floors: it syncs each call, then fans one
// response out to every call and times the ACKs.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { BareGrpcServer, paddedResponse } from '../../../bench/lib/bare-grpc.js';
import { ADS_METHOD, passThrough } from '../../../bench/proxy/channel.js';

const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

interface Proxy {
  received: Buffer[];
  call: grpc.ClientDuplexStream<Buffer, Buffer>;
  client: grpc.Client;
}

/** A call that sends one request, then answers each message it gets from the `answerFrom`th on (counting from 0). */
function proxy(port: number, answerFrom: number): Proxy {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(ADS_METHOD, passThrough, passThrough);
  const received: Buffer[] = [];
  call.on('data', (message: Buffer) => {
    received.push(message);
    if (received.length > answerFrom) call.write(Buffer.from('ack'));
  });
  call.on('error', () => {});
  call.write(Buffer.from('hello'));
  return { received, call, client };
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('BareGrpcServer', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function serve(sync: Buffer[]): Promise<{ server: BareGrpcServer; port: number }> {
    const server = new BareGrpcServer(sync);
    const port = await server.start();
    cleanups.push(() => server.stop());
    return { server, port };
  }

  function open(port: number, answerFrom: number): Proxy {
    const p = proxy(port, answerFrom);
    cleanups.push(() => {
      p.call.cancel();
      p.client.close();
    });
    return p;
  }

  it('sends an encoded sync as it is, then resolves a fan-out when every call has answered it', async () => {
    const sync = Buffer.from('the xDS server\'s own CDS response');
    const { server, port } = await serve([sync]);
    const proxies = [open(port, 1), open(port, 1)];
    await until(() => server.synced === 2);
    await until(() => proxies.every((p) => p.received.length === 1));
    expect(proxies.map((p) => p.received[0]!.toString())).toEqual([sync.toString(), sync.toString()]);

    const response = paddedResponse({ typeUrl: EDS, bytes: 230 });
    const start = performance.now();
    const end = await server.fanOut(response, 5_000);
    expect(end).toBeGreaterThanOrEqual(start);
    expect(server.requests).toBe(4);
    expect(proxies.map((p) => p.received[1]!.equals(response))).toEqual([true, true]);
  });

  it('rejects a fan-out that not every call answers in time, saying how many did', async () => {
    const { server, port } = await serve([]);
    // With no sync, the first message a proxy gets is the fan-out's: one answers it, one never answers.
    open(port, 0);
    open(port, Infinity);
    await until(() => server.held === 2 && server.requests === 2);
    await expect(server.fanOut(paddedResponse({ typeUrl: EDS, bytes: 100 }), 300)).rejects.toThrow(/^1 of 2 ACKs after 300 ms$/);
  });
});
