// One gRPC bidi call on its own HTTP/2 connection, written directly on node:http2: the
// gRPC wire protocol (a POST with `content-type: application/grpc`, messages framed
// with a 5-byte prefix, the status in trailers) without grpc-js's channel, resolver,
// load balancer and call stack. Envoy's own gRPC client is not grpc-js either; what the
// server sees is the same protocol, on one connection per proxy, with Envoy's windows.
//
// Why it exists: the simulated proxies share the server's two cores, and a grpc-js
// client spends about as much CPU setting up a channel and a call as the server spends
// answering them (B5: the proxies used more than twice the server's CPU in a storm).
// `BENCH_PROXY_CLIENT=grpc-js` keeps the grpc-js client for comparison.
import http2 from 'node:http2';
import { ENVOY_WINDOW } from './channel.js';

/** A call's end as the proxy sees it: gRPC's status code and message. */
export interface CallEnd {
  code: number;
  details: string;
}

/** gRPC status codes this file produces itself. */
export const GRPC_CANCELLED = 1;
export const GRPC_UNKNOWN = 2;
export const GRPC_INTERNAL = 13;
export const GRPC_UNAVAILABLE = 14;

/**
 * Splits a byte stream into gRPC messages (1 byte compressed flag, 4 bytes big-endian
 * length, the message). Chunks may cut a prefix or a message anywhere. A message is
 * handed on as the views of the chunks it lies in, in order, never copied: the
 * proxies read responses in place (wire.ts), and a copy of each 0.6 MB sync per proxy
 * was most of their allocation.
 */
export class MessageFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The length of the message being read, once its prefix is in; -1 before that. */
  private need = -1;

  constructor(private readonly onMessage: (parts: Buffer[], length: number) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 5) return;
        const prefix = Buffer.concat(this.take(5), 5);
        if (prefix[0] !== 0) throw new Error(`compressed gRPC message (flag ${prefix[0]}): the proxies do not ask for compression`);
        this.need = prefix.readUInt32BE(1);
      }
      if (this.buffered < this.need) return;
      const length = this.need;
      const parts = this.take(length);
      this.need = -1;
      this.onMessage(parts, length);
    }
  }

  /** The next n buffered bytes (n ≤ buffered), as views of the chunks they lie in. */
  private take(n: number): Buffer[] {
    this.buffered -= n;
    const parts: Buffer[] = [];
    let used = 0;
    while (n > 0) {
      const chunk = this.chunks[used]!;
      if (chunk.length <= n) {
        parts.push(chunk);
        n -= chunk.length;
        used++;
      } else {
        parts.push(chunk.subarray(0, n));
        this.chunks[used] = chunk.subarray(n);
        n = 0;
      }
    }
    this.chunks.splice(0, used);
    return parts;
  }
}

/** The 5-byte prefix of an uncompressed gRPC message of `length` bytes. */
export function messagePrefix(length: number): Buffer {
  const prefix = Buffer.allocUnsafe(5);
  prefix[0] = 0;
  prefix.writeUInt32BE(length, 1);
  return prefix;
}

/** grpc-message is percent-encoded; a malformed one is kept as it came. */
function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export interface H2CallHandlers {
  /** A message, as the views of the chunks it lies in (see MessageFramer). */
  onMessage(parts: Buffer[], length: number): void;
  /** Called once, when the call has ended for any reason. */
  onEnd(end: CallEnd): void;
}

/** A bidi gRPC call on a connection of its own. */
export class H2Call {
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private ended = false;
  private cancelled = false;
  private status: CallEnd | undefined;

  constructor(port: number, method: string, private readonly handlers: H2CallHandlers) {
    this.session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: ENVOY_WINDOW, enablePush: false } });
    this.session.on('connect', () => this.session.setLocalWindowSize(ENVOY_WINDOW));
    this.session.on('error', (err: Error) => this.end({ code: GRPC_UNAVAILABLE, details: err.message }));
    this.stream = this.session.request(
      { ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' },
      { endStream: false },
    );
    const framer = new MessageFramer((parts, length) => handlers.onMessage(parts, length));
    this.stream.on('data', (chunk: Buffer) => {
      try {
        framer.push(chunk);
      } catch (err) {
        this.end({ code: GRPC_INTERNAL, details: (err as Error).message });
        this.cancel();
      }
    });
    // A trailers-only response carries the status in its headers.
    this.stream.on('response', (headers) => this.readStatus(headers));
    this.stream.on('trailers', (trailers) => this.readStatus(trailers));
    this.stream.on('error', (err: Error) => this.end({ code: GRPC_UNAVAILABLE, details: err.message }));
    // The server has finished its side, trailers and all, and every message has been
    // read: the call is over, as a gRPC client sees it. The proxy's side is still open,
    // and would keep the stream half-closed; it is reset, as grpc-js does.
    this.stream.on('end', () => {
      if (!this.status) return;
      this.end(this.status);
      this.cancel();
    });
    this.stream.on('close', () => {
      if (this.cancelled) this.end({ code: GRPC_CANCELLED, details: 'cancelled by the proxy' });
      else this.end(this.status ?? { code: GRPC_UNKNOWN, details: `stream closed without a grpc-status (HTTP/2 code ${this.stream.rstCode})` });
      this.session.close();
    });
  }

  /** Writes one message, given as parts laid end to end (not joined here: corked, they leave as one write). */
  write(parts: readonly Uint8Array[]): void {
    if (this.ended) return;
    let length = 0;
    for (const part of parts) length += part.length;
    this.stream.cork();
    this.stream.write(messagePrefix(length));
    for (const part of parts) if (part.length > 0) this.stream.write(part);
    this.stream.uncork();
  }

  /** Resets the stream with CANCEL, as a client that gives up on a call does, and closes the connection. */
  cancel(): void {
    if (!this.ended) this.cancelled = true;
    if (!this.stream.closed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
    this.session.close();
  }

  private readStatus(headers: http2.IncomingHttpHeaders): void {
    const code = headers['grpc-status'];
    if (code === undefined) return;
    const message = headers['grpc-message'];
    this.status = { code: Number(code), details: typeof message === 'string' ? percentDecoded(message) : '' };
  }

  private end(end: CallEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.handlers.onEnd(end);
  }
}
