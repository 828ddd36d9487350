// B6 end to end: a real Consul, `shadowplane serve --registry consul` (default debounce)
// and a real edge Envoy. Service `api` has a stable instance and one that gains and
// loses the `beta` tag; a rule routes `x-beta: true` to beta, so each change adds or
// removes a route. The clock runs from the Consul write to the moment serve's admin API
// (`/v1/proxies`, polled every POLL_MS) shows Envoy's ACK of the new RDS version.
// Changes are spaced a little over a second apart: the catalog watch allows one
// query a second after a burst of two (its token bucket), and back-to-back changes
// would measure that limit instead of the latency.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runBenchmark, progress } from './lib/report.js';
import { findBinary, freePorts, registerInstance, startConsul, startEnvoy, startServe, stopAll } from './lib/processes.js';
import { outPath } from './lib/paths.js';
import { profiling, summarizeProfileFile } from './lib/profile.js';
import { now } from './lib/stats.js';

const CHANGES = 50;
const WARMUPS = 3;
const POLL_MS = 5;
const SPACING_MS = 1_100;
const NODE_ID = 'bench-edge-1';

const RULES = `services:
  api:
    routes:
      - name: beta-users
        match:
          headers:
            - name: x-beta
              exact: "true"
        to: beta
`;

interface ProxiesBody {
  proxies: { node_id: string; types: { type: string; acked_version?: string }[] }[];
}

async function ackedRoutes(adminUrl: string): Promise<string | undefined> {
  const body = (await (await fetch(`${adminUrl}/v1/proxies`, { signal: AbortSignal.timeout(2_000) })).json()) as ProxiesBody;
  return body.proxies.find((p) => p.node_id === NODE_ID)?.types.find((t) => t.type === 'rds')?.acked_version;
}

await runBenchmark('B6', 'end to end', async (emit) => {
  const figure = {
    name: 'B6 end to end: Consul tag change to Envoy ACK of the new routes',
    measures: `from the Consul write (agent service register) to serve's /v1/proxies showing Envoy's ACK of the new RDS version (polled every ${POLL_MS} ms)`,
    unit: 'ms' as const,
    targets: [
      { stat: 'median' as const, limit: 200 },
      { stat: 'p99' as const, limit: 500 },
    ],
    warmups: WARMUPS,
  };
  const envoyBin = findBinary('envoy');
  const consulBin = findBinary('consul');
  if (!envoyBin || !consulBin) {
    const missing = [envoyBin ? '' : 'envoy', consulBin ? '' : 'consul'].filter(Boolean).join(' and ');
    console.log(`B6 skipped: no ${missing} binary (run \`npm run tools\`, or set ENVOY_BIN / CONSUL_BIN)`);
    emit({ ...figure, samples: [], notes: [`skipped: ${missing} not installed`] });
    return;
  }

  const rulesDir = mkdtempSync(path.join(tmpdir(), 'shadowplane-bench-rules-'));
  const profileDir = outPath('b6-serve-profile');
  rmSync(profileDir, { recursive: true, force: true });
  const samples: number[] = [];
  try {
    writeFileSync(path.join(rulesDir, 'api.yaml'), RULES);
    progress('starting Consul');
    const consul = await startConsul(consulBin);
    const [stablePort, betaPort, listenerPort] = (await freePorts(3)) as [number, number, number];
    await registerInstance(consul.url, { id: 'api-1', name: 'api', port: stablePort, tags: [] });
    await registerInstance(consul.url, { id: 'api-2', name: 'api', port: betaPort, tags: ['beta'] });

    progress('starting shadowplane serve and Envoy');
    const nodeArgs = profiling() ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    const serve = await startServe(['--registry', 'consul', '--consul-address', consul.address, '--rules-path', rulesDir, '--log-level', 'info'], nodeArgs);
    await startEnvoy(envoyBin, serve.xdsPort, NODE_ID, listenerPort);

    let beta = true;
    for (let change = 0; change < WARMUPS + CHANGES; change++) {
      const before = await ackedRoutes(serve.adminUrl);
      if (!before) throw new Error(`Envoy ${NODE_ID} has not ACKed any routes`);
      beta = !beta;
      const start = now();
      await registerInstance(consul.url, { id: 'api-2', name: 'api', port: betaPort, tags: beta ? ['beta'] : [] });
      const deadline = start + 10_000;
      let after = before;
      while (after === before) {
        if (now() > deadline) throw new Error(`change ${change + 1}: Envoy did not ACK new routes within 10 s`);
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        after = (await ackedRoutes(serve.adminUrl)) ?? before;
      }
      const ms = now() - start;
      if (change >= WARMUPS) samples.push(ms);
      if (change % 10 === 0 || change === WARMUPS + CHANGES - 1) progress(`change ${change + 1}/${WARMUPS + CHANGES}: ${ms.toFixed(0)} ms${change < WARMUPS ? ' (warm-up)' : ''}`);
      await new Promise((resolve) => setTimeout(resolve, SPACING_MS));
    }
  } finally {
    await stopAll();
    rmSync(rulesDir, { recursive: true, force: true });
  }
  emit({
    ...figure,
    samples,
    notes: [
      'serve with its default catalog debounce (50 ms quiet, at most 500 ms) and rate limit; Consul -dev, Envoy --concurrency 1, all on loopback',
      `samples are changes, not runs: ${CHANGES} changes after ${WARMUPS} warm-up changes; p99 of ${CHANGES} is its largest sample`,
    ],
  });
  if (profiling()) {
    const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
    for (const f of files) {
      console.log(`\nCPU profile of serve (whole process, start-up included): ${path.join(profileDir, f)}`);
      console.log(summarizeProfileFile(path.join(profileDir, f)));
    }
  }
});
