// A process of simulated proxies: each one a real ADS client (state of the world) over
// @grpc/grpc-js on its own channel, hence its own HTTP/2 connection, as a real Envoy
// has, speaking protocol.ts (ask as an edge Envoy asks, ACK every response). The
// parent drives it over IPC (messages.ts); timing is measured on the server's side,
// where the ACKs arrive.
import * as grpc from '@grpc/grpc-js';
import { encodeRequest } from './wire.js';
import { ProxyProtocol } from './protocol.js';
import type { Command, Event, FleetStats, OpenCommand } from './messages.js';
import { ADS_METHOD, CHANNEL_OPTIONS, passThrough } from './channel.js';

/** CPU time (user and system) this process has used. */
const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

const stats: FleetStats = { open: 0, synced: 0, responses: 0, responseBytes: 0, largest: {}, acks: 0, failed: 0, rssBytes: 0, cpuMs: 0 };

class SimulatedProxy {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  private readonly protocol: ProxyProtocol;
  private ended = false;

  constructor(port: number, nodeId: string, command: OpenCommand) {
    this.client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    this.call = this.client.makeBidiStreamRequest(ADS_METHOD, passThrough, passThrough);
    this.protocol = new ProxyProtocol({ id: nodeId, metadata: command.metadata, routeConfigs: command.routeConfigs }, (request) =>
      this.call.write(encodeRequest(request)),
    );
    stats.open++;
    this.call.on('data', (bytes: Buffer) => {
      stats.responses++;
      stats.responseBytes += bytes.length;
      const wasSynced = this.protocol.synced;
      const { typeUrl } = this.protocol.onResponse(bytes);
      if (bytes.length > (stats.largest[typeUrl] ?? 0)) stats.largest[typeUrl] = bytes.length;
      stats.acks++;
      if (!wasSynced && this.protocol.synced) stats.synced++;
    });
    this.call.on('error', () => {});
    this.call.on('status', (status: grpc.StatusObject) => {
      if (this.ended) return;
      this.ended = true;
      stats.open--;
      if (this.protocol.synced) stats.synced--;
      if (status.code !== grpc.status.CANCELLED) {
        stats.failed++;
        stats.lastError = `${grpc.status[status.code]}: ${status.details}`;
      }
    });
    this.protocol.start();
  }

  close(): void {
    if (!this.ended) this.call.cancel();
    this.client.close();
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
