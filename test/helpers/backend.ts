// A tiny HTTP upstream for tests: it records every request and answers 200 with a body
// naming itself, so a test can tell which backend Envoy routed (or mirrored) to.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export interface TestBackend {
  readonly name: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Every request received so far, oldest first. */
  readonly requests: readonly RecordedRequest[];
  close(): Promise<void>;
}

/** The body a backend answers with; tests compare against it. */
export function backendBody(name: string): string {
  return `backend ${name}\n`;
}

export async function startBackend(name: string): Promise<TestBackend> {
  const requests: RecordedRequest[] = [];
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers });
    // Drain the body so keep-alive connections stay usable for the next request.
    request.resume();
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
      response.end(backendBody(name));
    });
  });
  const port = await listenOnLoopback(server);
  return {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Envoy keeps upstream connections alive; without this, close() waits on them.
        server.closeAllConnections();
      }),
  };
}

/** Listens on a port the OS picks on 127.0.0.1; resolves with it. */
export async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}
