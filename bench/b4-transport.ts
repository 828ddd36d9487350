// What Node's HTTP/2 costs a server per connection, layer by layer: the measurement
// behind B4's floor (not part of `npm run bench`: run it by hand,
// `npx tsc -p tsconfig.bench.json && MALLOC_MMAP_THRESHOLD_=131072 node --expose-gc
// --max-semi-space-size=64 dist/bench/bench/b4-transport.js`; it needs gdb, as B4's
// live memory does).
//
// Each layer runs in a fresh server process, with its clients in a process of their
// own: a TCP socket; an HTTP/2 session; the session with one open stream (what an ADS
// call rides on); that stream after it has carried one response of each size the
// xDS sync at 10,000 services has, through Envoy's 256 MiB window and through HTTP/2's
// default 64 KiB one. Per connection is the slope of live memory (JS heap used, less V8's
// compiled code, plus glibc's in-use bytes) over 300 → 600 → 900 idle connections, fitted from 300 on. Printed, and written to
// dist/bench/out/b4-transport.md.
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { BareGrpcServer } from './lib/bare-grpc.js';
import { ADS_METHOD, CHANNEL_OPTIONS, ENVOY_WINDOW, passThrough } from './proxy/channel.js';
import { heapData, idleSample, live, slope, type MemorySample } from './lib/memory-steps.js';
import { mallocUnavailable } from './lib/malloc-stats.js';
import { outPath } from './lib/paths.js';

type Layer = 'tcp' | 'session' | 'stream' | 'burst' | 'burst-64k' | 'grpc' | 'grpc-burst';

const LAYERS: { layer: Layer; what: string }[] = [
  { layer: 'tcp', what: 'a TCP socket (net.Server)' },
  { layer: 'session', what: 'an HTTP/2 session, no stream' },
  { layer: 'stream', what: 'an HTTP/2 session with one open stream (headers both ways)' },
  { layer: 'burst', what: 'that stream after responses of 2.1, 2.5 and 1.1 MB, 256 MiB windows (as Envoy opens them)' },
  { layer: 'burst-64k', what: 'the same responses through HTTP/2\'s default 64 KiB windows' },
  { layer: 'grpc', what: 'a grpc-js bidi call held by a bare grpc-js server with the xDS server\'s options (B4\'s floor without its sync)' },
  { layer: 'grpc-burst', what: 'that call after the same three responses as gRPC messages, 256 MiB windows (B4\'s floor)' },
];
/** The sizes of the xDS responses one proxy receives at 10,000 services (B4's notes: clusters, endpoints, routes). */
const RESPONSES = [2.1e6, 2.5e6, 1.1e6].map(Math.round);
const STEPS = [300, 600, 900];
const KB = 1024;

/** The clients' process: opens connections (and streams) as the server asks. */
function clients(layer: Layer, port: number): void {
  const held: unknown[] = [];
  const wide = layer === 'burst' || layer === 'grpc-burst';
  process.on('message', (count: number) => {
    for (let i = 0; i < count; i++) {
      if (layer === 'tcp') {
        held.push(net.connect(port, '127.0.0.1'));
        continue;
      }
      if (layer === 'grpc' || layer === 'grpc-burst') {
        // The proxies' channel options (each call its own connection), with HTTP/2's default windows for the call without the sync.
        const options = wide ? CHANNEL_OPTIONS : Object.fromEntries(Object.entries(CHANNEL_OPTIONS).filter(([k]) => k !== 'grpc-node.flow_control_window'));
        const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options);
        const call = client.makeBidiStreamRequest(ADS_METHOD, passThrough, passThrough);
        call.on('data', () => {});
        call.on('error', () => {});
        call.write(Buffer.alloc(64));
        held.push(client, call);
        continue;
      }
      const session = http2.connect(`http://127.0.0.1:${port}`, wide ? { settings: { initialWindowSize: ENVOY_WINDOW } } : {});
      if (wide) session.on('connect', () => session.setLocalWindowSize(ENVOY_WINDOW));
      held.push(session);
      if (layer === 'session') continue;
      const stream = session.request({ ':method': 'POST', ':path': '/x', 'content-type': 'application/grpc' }, { endStream: false });
      stream.write(Buffer.alloc(64));
      stream.on('data', () => {});
      held.push(stream);
    }
  });
}

/** The server's process: counts connections that reached the layer, samples in steps. */
async function server(layer: Layer): Promise<MemorySample[]> {
  if (layer === 'grpc' || layer === 'grpc-burst') {
    const sync = layer === 'grpc' ? [] : RESPONSES.map((bytes) => ({ typeUrl: 'type.googleapis.com/shadowplane.bench.Padding', bytes }));
    const bare = new BareGrpcServer(sync);
    const port = await bare.start();
    return steps(layer, port, () => (layer === 'grpc' ? Math.min(bare.held, bare.requests) : bare.synced));
  }
  let settled = 0;
  const held: unknown[] = [];
  let listening: net.Server;
  if (layer === 'tcp') {
    listening = net.createServer((socket) => {
      held.push(socket);
      settled++;
    });
  } else {
    const h2 = http2.createServer();
    if (layer === 'session') {
      h2.on('session', (session) => {
        held.push(session);
        settled++;
      });
    } else {
      const responses = layer === 'stream' ? [] : RESPONSES.map((n) => Buffer.alloc(n));
      h2.on('stream', (stream) => {
        held.push(stream);
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        stream.on('data', () => {});
        const next = (i: number): void => {
          if (i === responses.length) settled++;
          else stream.write(responses[i], () => next(i + 1));
        };
        next(0);
      });
    }
    listening = h2;
  }
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  const { port } = listening.address() as net.AddressInfo;
  return steps(layer, port, () => settled);
}

/** Has the clients' process open connections in steps; samples once `settled()` has caught up with each. */
async function steps(layer: Layer, port: number, settled: () => number): Promise<MemorySample[]> {
  const child = fork(fileURLToPath(import.meta.url), ['--clients', layer, String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const samples = [await idleSample(0, 500, { malloc: true })];
    for (const target of STEPS) {
      child.send(target - settled());
      const deadline = Date.now() + 120_000;
      while (settled() < target) {
        if (Date.now() > deadline) throw new Error(`${layer}: ${settled()} of ${target} connections after 120 s`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      samples.push(await idleSample(settled(), 1000, { malloc: true }));
    }
    return samples;
  } finally {
    child.kill();
  }
}

function measure(layer: Layer): Promise<MemorySample[]> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--server', layer], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: MemorySample[] | undefined;
    child.on('message', (m: MemorySample[]) => (result = m));
    child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`${layer}: the server process exited with ${String(code)} and no result`))));
  });
}

const arg = (flag: string): string | undefined => (process.argv.includes(flag) ? process.argv[process.argv.indexOf(flag) + 1] : undefined);

if (arg('--clients')) {
  clients(arg('--clients') as Layer, Number(process.argv[process.argv.indexOf('--clients') + 2]));
} else if (arg('--server')) {
  const samples = await server(arg('--server') as Layer);
  // The held connections keep the loop alive: leave once the result is on its way.
  process.send?.(samples, () => process.exit(0));
} else {
  const why = mallocUnavailable();
  if (why) {
    console.error(`b4-transport needs glibc's in-use bytes: ${why}`);
    process.exit(1);
  }
  const rows: string[] = [];
  for (const { layer, what } of LAYERS) {
    // From the first step on, as B4 fits: the growth from nothing to it is left out.
    const samples = (await measure(layer)).slice(1);
    const per = (f: (s: MemorySample) => number): string => (slope(samples, f) / KB).toFixed(1);
    const row = `| ${what} | ${per(live)} KB | ${per(heapData)} KB | ${per((s) => s.mallocInUse ?? Number.NaN)} KB | ${per((s) => s.rss)} KB |`;
    console.log(row);
    rows.push(row);
  }
  const text = [
    '# What Node\'s HTTP/2 costs a server per connection',
    '',
    `Slope over ${STEPS.join(' → ')} idle connections (fitted from ${STEPS[0]} on), one fresh server process per layer; Node ${process.version}.`,
    '',
    '| per connection | live | JS heap used (compiled code left out) | malloc in use | RSS |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  writeFileSync(outPath('b4-transport.md'), text);
  console.log(`written: ${outPath('b4-transport.md')}`);
}
