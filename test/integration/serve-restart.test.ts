// The control plane dies (SIGKILL) and comes back while Envoy serves traffic: no
// request fails, and the restarted process recognises Envoy's versions (content
// hashes) so nothing is pushed again.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { continuousTraffic, request, startAdsEnvoy, waitConnected } from '../helpers/ads-envoy.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import type { Envoy } from '../helpers/envoy.js';
import { freePorts } from '../helpers/ports.js';
import { showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { logRecords, startServe, type ServeProcess } from '../helpers/shadowplane.js';
import { hasBinary } from '../helpers/tools.js';

const UPDATE_STATS = ['cluster_manager.cds.update_success', 'listener_manager.lds.update_success'];

describe.skipIf(!hasBinary('envoy'))('shadowplane serve restarted under traffic', () => {
  let backend: TestBackend;
  let envoy: Envoy;
  let xdsPort: number;
  let listenerPort: number;
  let registryDir: string;
  const serve = (): Promise<ServeProcess> =>
    startServe(['--xds-address', `127.0.0.1:${xdsPort}`, '--registry-path', registryDir, '--log-level', 'trace']);

  beforeAll(async () => {
    backend = await startBackend('api');
    [xdsPort, listenerPort] = (await freePorts(2)) as [number, number];
    registryDir = mkdtempSync(path.join(tmpdir(), 'shadowplane-registry-'));
    writeFileSync(path.join(registryDir, 'services.yaml'), `services:\n  - { name: api, address: 127.0.0.1, port: ${backend.port} }\n`);
  });

  afterAll(async () => {
    await stopAllProcesses();
    await backend?.close();
  });

  it.each(['GRPC', 'DELTA_GRPC'] as const)('%s: serves every request while the control plane is killed and restarted, and re-pushes nothing', async (apiType) => {
    const first = await serve();
    showLogsOnFailure(first.process);
    envoy = await startAdsEnvoy({ xdsPort, listenerPort, apiType });
    showLogsOnFailure(envoy);
    expect(await request(listenerPort, 'api', '/')).toMatchObject({ status: 200, backend: 'api' });
    const before = await envoy.stats('update_success');
    const versionsBefore = await envoy.stats('version_text');

    const traffic = continuousTraffic(listenerPort, 'api', '/');
    try {
      process.kill(first.process.pid!, 'SIGKILL');
      await first.process.exited;
      await waitConnected(envoy, false);
      const second = await serve();
      showLogsOnFailure(second.process);
      await waitConnected(envoy, true);
      // Give Envoy's requests on the new stream time to be answered (or not): wait
      // until the new server has seen the stream's requests for every type.
      await waitForRequests(second, ['Cluster', 'ClusterLoadAssignment', 'Listener', 'RouteConfiguration']);
      const sentAfterRestart = logRecords(second.process).filter((r) => r.msg === 'response sent');
      expect(sentAfterRestart).toEqual([]);
    } finally {
      await traffic.stop();
    }
    expect(traffic.sent).toBeGreaterThan(10);
    expect(Object.fromEntries(traffic.statuses)).toEqual({ 200: traffic.sent });
    const after = await envoy.stats('update_success');
    for (const name of UPDATE_STATS) expect(after.get(name)).toBe(before.get(name));
    expect(await envoy.stats('version_text')).toEqual(versionsBefore);
    await envoy.stop();
    await stopAllProcesses();
  });
});

async function waitForRequests(serve: ServeProcess, types: string[]): Promise<void> {
  const { waitFor } = await import('../helpers/wait.js');
  await waitFor(
    () => {
      const seen = new Set(logRecords(serve.process).filter((r) => r.msg === 'request').map((r) => String(r.type_url).split('.').pop()));
      return types.every((t) => seen.has(t));
    },
    { description: `the restarted server to receive requests for ${types.join(', ')}`, timeoutMs: 15_000 },
  );
}
