// A micro-benchmark, not part of `npm run bench`: request decoding, before (protobufjs'
// reflective decode + toObject) and now (request-decode.ts), on an edge Envoy's EDS ACK
// and a delta subscribe. Rounds of each case take turns and the best round counts, since
// the machine is shared. Run:
//   npx tsc -p tsconfig.bench.json && node dist/bench/bench/micro-request-decode.js [2000,20000]
import { lookupMessage } from '../src/xds/protos.js';
import { TO_OBJECT_OPTIONS } from '../src/xds/resources.js';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest, sameResourceNameBytes } from '../src/xds/wire.js';

const REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
const DELTA_REQUEST = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const ROUNDS = 12;

/** The decoder the server had before. */
function reflective(name: string, bytes: Uint8Array): Record<string, unknown> {
  const type = lookupMessage(name);
  const object = type.toObject(type.decode(bytes), { ...TO_OBJECT_OPTIONS, arrays: true, objects: true, defaults: true });
  for (const key of ['node', 'error_detail']) if (object[key] === null) delete object[key];
  return object;
}

const encode = (name: string, object: Record<string, unknown>): Buffer => {
  const type = lookupMessage(name);
  return Buffer.from(type.encode(type.fromObject(object)).finish());
};
const clusterNames = (n: number): string[] => Array.from({ length: n }, (_, i) => `payments-api-${i}.beta.default.svc.cluster.local`);

let sink = 0;
function compare(title: string, size: number, cases: Record<string, () => number>): void {
  const best = new Map<string, number>();
  const iterations = Math.max(5, Math.round(100_000 / size));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [label, run] of Object.entries(cases)) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) sink += run();
      const us = Number(process.hrtime.bigint() - start) / iterations / 1e3;
      best.set(label, Math.min(best.get(label) ?? Infinity, us));
    }
  }
  const baseline = [...best.values()][0]!;
  console.log(`\n${title}`);
  for (const [label, us] of best) console.log(`  ${label.padEnd(50)} ${us.toFixed(1).padStart(8)} µs ${(baseline / us).toFixed(1).padStart(6)}x`);
}

for (const n of (process.argv[2] ?? '2000,20000').split(',').map(Number)) {
  const names = clusterNames(n);
  const ack = encode(REQUEST, { version_info: 'v42', type_url: EDS, response_nonce: 'nonce-17', resource_names: names });
  const previous = decodeDiscoveryRequest(encode(REQUEST, { version_info: 'v41', type_url: EDS, response_nonce: 'nonce-16', resource_names: names }));
  compare(`SotW EDS ACK, ${n} names (${ack.length} bytes)`, n, {
    'before: decode + toObject': () => (reflective(REQUEST, ack).resource_names as string[]).length,
    'now: decode, names not read': () => decodeDiscoveryRequest(ack).response_nonce.length,
    'now: decode + compare bytes with last request': () => (sameResourceNameBytes(previous, decodeDiscoveryRequest(ack)) ? 1 : 0),
    'now: decode + read resource_names': () => decodeDiscoveryRequest(ack).resource_names.length,
  });
  const subscribe = encode(DELTA_REQUEST, { type_url: EDS, response_nonce: 'n', resource_names_subscribe: names });
  compare(`Delta subscribe, ${n} names`, n, {
    'before: decode + toObject': () => (reflective(DELTA_REQUEST, subscribe).resource_names_subscribe as string[]).length,
    'now: decode': () => decodeDeltaDiscoveryRequest(subscribe).resource_names_subscribe.length,
  });
}
if (sink < 0) console.log(sink);
