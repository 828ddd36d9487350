// The benchmarks' thin gRPC client (bench/proxy/h2-stream.ts): its framing, and a call
// against a @grpc/grpc-js server on loopback, which is what the xDS server runs on.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { GRPC_CANCELLED, H2Call, MessageFramer, messagePrefix, type CallEnd } from '../../../bench/proxy/h2-stream.js';
import { passThrough } from '../../../bench/proxy/channel.js';
import { waitFor } from '../../helpers/wait.js';

const framed = (...messages: Buffer[]): Buffer => Buffer.concat(messages.flatMap((m) => [messagePrefix(m.length), m]));

describe('MessageFramer', () => {
  const messages = [Buffer.from('first'), Buffer.alloc(0), Buffer.alloc(70_000, 7), Buffer.from('last')];
  const wire = framed(...messages);

  it('hands on each message whole and in order, wherever the chunks are cut', () => {
    for (const size of [1, 2, 3, 5, 6, 4096, wire.length]) {
      const got: Buffer[] = [];
      const framer = new MessageFramer((parts, length) => {
        expect(parts.reduce((n, p) => n + p.length, 0)).toBe(length);
        got.push(Buffer.concat(parts));
      });
      for (let at = 0; at < wire.length; at += size) framer.push(wire.subarray(at, at + size));
      expect(got.length, `chunks of ${size}`).toBe(messages.length);
      expect(got.every((m, i) => m.equals(messages[i]!)), `chunks of ${size}`).toBe(true);
    }
  });

  it('hands on a message as views of the chunks it lies in, never a copy', () => {
    const got: Buffer[][] = [];
    new MessageFramer((parts) => got.push(parts)).push(wire);
    expect(got[2]).toHaveLength(1);
    expect(got[2]![0]!.buffer).toBe(wire.buffer);
    const cut: Buffer[][] = [];
    const framer = new MessageFramer((parts) => cut.push(parts));
    const chunks = [wire.subarray(0, 30_000), wire.subarray(30_000, 60_000), wire.subarray(60_000)];
    for (const chunk of chunks) framer.push(chunk);
    expect(cut[2]!.map((p) => p.buffer)).toEqual(chunks.map(() => wire.buffer));
  });

  it('refuses a compressed message, which the proxies never ask for', () => {
    const wireCompressed = framed(Buffer.from('x'));
    wireCompressed[0] = 1;
    expect(() => new MessageFramer(() => {}).push(wireCompressed)).toThrow(/compressed gRPC message \(flag 1\)/);
  });
});

describe('H2Call against a grpc-js server', () => {
  let server: grpc.Server | undefined;
  let calls: H2Call[] = [];

  afterEach(async () => {
    for (const call of calls) call.cancel();
    calls = [];
    await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
    server = undefined;
  });

  /** A server whose one bidi method hands each call to `handle`. */
  async function serve(handle: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => void): Promise<number> {
    server = new grpc.Server({ 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
    const method = { path: '/test.Echo/Chat', requestStream: true, responseStream: true, requestSerialize: passThrough, requestDeserialize: passThrough, responseSerialize: passThrough, responseDeserialize: passThrough };
    server.addService({ Chat: method }, { Chat: handle });
    return new Promise((resolve, reject) =>
      server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
  }

  function open(port: number): { got: Buffer[]; ends: CallEnd[]; call: H2Call } {
    const got: Buffer[] = [];
    const ends: CallEnd[] = [];
    const call = new H2Call(port, '/test.Echo/Chat', { onMessage: (parts) => got.push(Buffer.concat(parts)), onEnd: (e) => ends.push(e) });
    calls.push(call);
    return { got, ends, call };
  }

  it('carries messages both ways, a 3 MB one too, and reads the status the server ends with', async () => {
    const port = await serve((call) => {
      let n = 0;
      call.on('data', (m: Buffer) => {
        call.write(m);
        if (++n === 3) call.end();
      });
    });
    const { got, ends, call } = open(port);
    const sent = [Buffer.from('hello'), Buffer.alloc(3 * 2 ** 20, 0x5a), Buffer.from('bye')];
    // The last message goes as parts, an empty one among them.
    call.write([sent[0]!]);
    call.write([sent[1]!]);
    call.write([Buffer.from('b'), Buffer.alloc(0), Buffer.from('ye')]);
    await waitFor(() => ends.length > 0, { intervalMs: 10, description: 'the call to end' });
    // Buffer.equals: a deep equality over 3 MB, element by element, takes seconds.
    expect(got.map((m) => m.length)).toEqual(sent.map((m) => m.length));
    expect(got.every((m, i) => m.equals(sent[i]!))).toBe(true);
    expect(ends).toEqual([{ code: grpc.status.OK, details: 'OK' }]);
  });

  it("reports the server's error status and its message", async () => {
    const port = await serve((call) => call.on('data', () => call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'no such type: x' })));
    const { ends, call } = open(port);
    call.write([Buffer.from('?')]);
    await waitFor(() => ends.length > 0, { intervalMs: 10, description: 'the call to end' });
    expect(ends).toEqual([{ code: grpc.status.INVALID_ARGUMENT, details: 'no such type: x' }]);
  });

  it('keeps a status message that is not valid percent-encoding as it came', async () => {
    // grpc-js encodes its messages: a bare HTTP/2 server answers trailers-only with a raw one.
    const raw = http2.createServer();
    raw.on('stream', (stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '13', 'grpc-message': '100%' }, { endStream: true }));
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    try {
      const { ends } = open((raw.address() as AddressInfo).port);
      await waitFor(() => ends.length > 0, { intervalMs: 10, description: 'the call to end' });
      expect(ends).toEqual([{ code: grpc.status.INTERNAL, details: '100%' }]);
    } finally {
      for (const call of calls) call.cancel();
      calls = [];
      await new Promise((resolve) => raw.close(resolve));
    }
  });

  it('cancels: the server sees the call cancelled and the proxy ends with CANCELLED', async () => {
    let serverSaw = false;
    const port = await serve((call) => {
      call.on('cancelled', () => (serverSaw = true));
      call.on('data', (m: Buffer) => call.write(m));
    });
    const { got, ends, call } = open(port);
    call.write([Buffer.from('ping')]);
    await waitFor(() => got.length === 1, { intervalMs: 10, description: 'the echo' });
    call.cancel();
    await waitFor(() => serverSaw && ends.length > 0, { intervalMs: 10, description: 'both sides to see the cancel' });
    expect(ends).toEqual([{ code: GRPC_CANCELLED, details: 'cancelled by the proxy' }]);
  });

  it('ends with UNAVAILABLE when nothing listens on the port', async () => {
    const port = await serve(() => {});
    await new Promise<void>((resolve) => server!.tryShutdown(() => resolve()));
    server = undefined;
    const { ends } = open(port);
    await waitFor(() => ends.length > 0, { intervalMs: 10, description: 'the call to fail' });
    expect(ends[0]!.code).toBe(grpc.status.UNAVAILABLE);
  });
});
