// Smoke test for the Envoy binary and the test helpers, before any xDS: a static
// bootstrap routes one listener to a test backend. If this fails, every end-to-end
// test would fail for reasons unrelated to Shadowplane.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { backendBody, startBackend, type TestBackend } from '../helpers/backend.js';
import { startEnvoy, type Envoy } from '../helpers/envoy.js';
import { showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { hasBinary } from '../helpers/tools.js';

const bootstrapPath = fileURLToPath(new URL('../../envoy/static-smoke.yaml', import.meta.url));
const upstreamRequests = 'cluster.smoke_backend.upstream_rq_total';

describe.skipIf(!hasBinary('envoy'))('envoy smoke (static bootstrap)', () => {
  let backend: TestBackend | undefined;
  let envoy: Envoy | undefined;

  beforeAll(async () => {
    backend = await startBackend('smoke');
    envoy = await startEnvoy({
      bootstrapPath,
      substitutions: { LISTENER_PORT: 0, BACKEND_PORT: backend.port },
    });
  });

  afterAll(async () => {
    await stopAllProcesses();
    await backend?.close();
  });

  beforeEach(() => {
    if (envoy) showLogsOnFailure(envoy);
  });

  it('routes a request through the listener to the static cluster', async () => {
    if (!envoy || !backend) throw new Error('setup did not finish');
    const before = (await envoy.stat(upstreamRequests)) ?? 0;
    const listenerPort = await envoy.listenerPort('smoke_http');

    const response = await fetch(`http://127.0.0.1:${listenerPort}/smoke/path?q=1`, {
      headers: { 'x-smoke-test': 'hello' },
      signal: AbortSignal.timeout(5_000),
    });

    expect(response.status).toBe(200);
    expect(await response.text()).toBe(backendBody('smoke'));
    expect(response.headers.get('x-backend')).toBe('smoke');
    const seen = backend.requests.at(-1);
    expect(seen?.path).toBe('/smoke/path?q=1');
    expect(seen?.headers['x-smoke-test']).toBe('hello');
    // The admin API reads counters live, so the request has counted by the time it answered.
    expect(await envoy.stat(upstreamRequests)).toBe(before + 1);
  });
});
