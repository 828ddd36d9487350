// Free loopback ports for programs that must be told their ports up front: Consul's,
// and the listener ports Shadowplane tells Envoy to bind. Prefer port 0 in the program
// itself where it can report the bound port back (Envoy's admin API can).
//
// They are taken below the kernel's ephemeral range (ip_local_port_range), not from
// it. A port from that range, released here and bound by the program seconds later
// (an Envoy listener binds when LDS arrives), may meanwhile become the source port of
// one of the many loopback connections the tests make, or another program's port 0,
// and then the bind fails. Below the range only a program told a port binds one. Each
// test worker takes its own slice (by VITEST_POOL_ID) and walks it in turn, so two
// workers do not hand out one port and a worker does not hand one out twice in a
// short while; each port is bound here before it is handed out, to check it is free.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

/** The lowest port handed out: above the registered services most machines run. */
const LOWEST = 10_000;
/** Workers' slices of the ports between LOWEST and the ephemeral range. */
const SLICES = 8;

/** The first port of the kernel's ephemeral range (Linux; 32768 where it cannot be read). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 0) return low;
  } catch {
    // not Linux: the IANA range's start is below every default there
  }
  return 32_768;
}

interface Slice {
  first: number;
  size: number;
  /** The next port to try, as an offset into the slice. */
  next: number;
}

function sliceOfThisWorker(): Slice | undefined {
  const size = Math.floor((ephemeralLow() - LOWEST) / SLICES);
  // A machine whose ephemeral range starts low leaves no room: the OS picks, as before.
  if (size < 256) return undefined;
  const worker = Number(process.env.VITEST_POOL_ID ?? process.pid);
  const index = (Number.isInteger(worker) ? worker : process.pid) % SLICES;
  return { first: LOWEST + index * size, size, next: Math.floor(Math.random() * size) };
}

const slice = sliceOfThisWorker();

function listen(port: number): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(undefined) : reject(err)));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(server));
  });
}

/** A listening server on the slice's next free port, or on one the OS picks without a slice. */
async function listenOnNextFree(): Promise<Server> {
  if (!slice) return (await listen(0))!;
  for (let tried = 0; tried < slice.size; tried++) {
    const port = slice.first + slice.next;
    slice.next = (slice.next + 1) % slice.size;
    const server = await listen(port);
    if (server) return server;
  }
  throw new Error(`no free port in 127.0.0.1:${slice.first}-${slice.first + slice.size - 1}`);
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** `count` distinct free ports on 127.0.0.1: all are held open together, then released. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenOnNextFree());
    return servers.map((server) => {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map(close));
  }
}

/** One free port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('no free port');
  return port;
}
