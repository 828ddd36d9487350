// A process of simulated proxies: each one a real ADS client (state of the world) over
// gRPC on its own HTTP/2 connection, as a real Envoy has, speaking protocol.ts (ask as
// an edge Envoy asks, ACK every response). The gRPC client is h2-stream.ts (the
// protocol on node:http2) unless the command asks for grpc-js. The parent drives the
// process over IPC (messages.ts); timing is measured on the server's side, where the
// ACKs arrive.
import * as grpc from '@grpc/grpc-js';
import { encodeRequestParts } from './wire.js';
import { ProxyProtocol } from './protocol.js';
import type { Command, Event, FleetStats, OpenCommand } from './messages.js';
import { ADS_METHOD, CHANNEL_OPTIONS, passThrough } from './channel.js';
import { GRPC_CANCELLED, H2Call, type CallEnd } from './h2-stream.js';

/** CPU time (user and system) this process has used. */
const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

const stats: FleetStats = { open: 0, synced: 0, responses: 0, responseBytes: 0, largest: {}, acks: 0, failed: 0, rssBytes: 0, cpuMs: 0 };

/** One ADS call, whichever client carries it. Messages go out and come in as parts laid end to end. */
interface AdsCall {
  write(parts: readonly Uint8Array[]): void;
  cancel(): void;
}

/** The call on a grpc-js channel of its own. */
function grpcJsCall(port: number, onMessage: (parts: Buffer[], length: number) => void, onEnd: (end: CallEnd) => void): AdsCall {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  const call = client.makeBidiStreamRequest(ADS_METHOD, passThrough, passThrough);
  call.on('data', (message: Buffer) => onMessage([message], message.length));
  call.on('error', () => {});
  call.on('status', (status: grpc.StatusObject) => onEnd({ code: status.code, details: status.details }));
  return {
    write: (parts) => call.write(Buffer.concat(parts)),
    cancel: () => {
      call.cancel();
      client.close();
    },
  };
}

class SimulatedProxy {
  private readonly call: AdsCall;
  private readonly protocol: ProxyProtocol;
  private ended = false;

  constructor(port: number, nodeId: string, command: OpenCommand) {
    const onMessage = (parts: Buffer[], length: number): void => {
      stats.responses++;
      stats.responseBytes += length;
      const wasSynced = this.protocol.synced;
      const { typeUrl } = this.protocol.onResponseParts(parts, length);
      if (length > (stats.largest[typeUrl] ?? 0)) stats.largest[typeUrl] = length;
      stats.acks++;
      if (!wasSynced && this.protocol.synced) stats.synced++;
    };
    const onEnd = (end: CallEnd): void => {
      if (this.ended) return;
      this.ended = true;
      stats.open--;
      if (this.protocol.synced) stats.synced--;
      if (end.code !== GRPC_CANCELLED) {
        stats.failed++;
        stats.lastError = `${grpc.status[end.code] ?? end.code}: ${end.details}`;
      }
    };
    this.call =
      command.client === 'grpc-js' ? grpcJsCall(port, onMessage, onEnd) : new H2Call(port, ADS_METHOD, { onMessage, onEnd });
    this.protocol = new ProxyProtocol({ id: nodeId, metadata: command.metadata, routeConfigs: command.routeConfigs }, (request) =>
      this.call.write(encodeRequestParts(request)),
    );
    stats.open++;
    this.protocol.start();
  }

  close(): void {
    this.call.cancel();
  }
}

let proxies: SimulatedProxy[] = [];
let generation = 0;

function send(event: Event): void {
  process.send?.(event);
}

async function open(command: OpenCommand): Promise<void> {
  const gen = ++generation;
  const start = performance.now();
  for (let i = 0; i < command.count; i++) {
    if (command.spreadMs > 0) {
      const due = start + (i * command.spreadMs) / command.count;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    } else if (i % 200 === 199) {
      // Let the event loop read responses while thousands of channels start.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (gen !== generation) return;
    proxies.push(new SimulatedProxy(command.port, `${command.idPrefix}-${i}`, command));
  }
  send({ evt: 'opened', count: command.count });
}

process.on('message', (message: Command) => {
  switch (message.cmd) {
    case 'open':
      void open(message);
      break;
    case 'close':
      generation++;
      for (const p of proxies) p.close();
      proxies = [];
      send({ evt: 'closed' });
      break;
    case 'stats':
      send({ evt: 'stats', stats: { ...stats, rssBytes: process.memoryUsage.rss(), cpuMs: cpuMs() } });
      break;
    case 'exit':
      for (const p of proxies) p.close();
      process.disconnect();
      break;
  }
});
process.on('disconnect', () => process.exit(0));
send({ evt: 'ready' });
