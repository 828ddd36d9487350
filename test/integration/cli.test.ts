// The `shadowplane` command as a user runs it: help, version, configuration errors
// refused before anything starts, and `serve` stopping cleanly on a signal.
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { showLogsOnFailure, stopAllProcesses } from '../helpers/process.js';
import { freePort } from '../helpers/ports.js';
import { cliPath, logRecords, repoRoot, runCli, startServe } from '../helpers/shadowplane.js';
import { startProcess } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port }, () => server.close(() => resolve(true)));
  });
}

describe('shadowplane CLI', () => {
  afterEach(stopAllProcesses);

  it('prints its version', () => {
    const result = runCli(['--version']);
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe(pkg.version);
  });

  it('has --help on the program and on serve', () => {
    const top = runCli(['--help']);
    expect(top.status).toBe(0);
    expect(top.stdout).toMatch(/serve \[options\]\s+run the control plane/);
    const serve = runCli(['serve', '--help']);
    expect(serve.status).toBe(0);
    expect(serve.stdout).toContain('--xds-address <host:port>');
    expect(serve.stdout).toContain('SHADOWPLANE_XDS_ADDRESS');
  });

  it('refuses an unknown command', () => {
    const result = runCli(['serv']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/unknown command 'serv'/);
  });

  it('refuses bad configuration with the key path and reason, and starts nothing', async () => {
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), 'shadowplane-cli-'));
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, `xds:\n  address: 127.0.0.1:${port}\nlog:\n  lvl: debug\n`);
    const result = runCli(['serve', '--config', file], { SHADOWPLANE_XDS_KEEPALIVE_TIME_MS: 'often' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`${file}:4:3: unknown key "log.lvl"`);
    expect(result.stderr).toContain('SHADOWPLANE_XDS_KEEPALIVE_TIME_MS: expected a number, got "often"');
    expect(await canBind(port)).toBe(true);
  });

  it('refuses a bad flag value, naming the flag', () => {
    const result = runCli(['serve', '--log-level', 'loud']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/--log-level: log\.level: Invalid option/);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('serve stops cleanly on %s and frees its port', async (signal) => {
    const serve = await startServe();
    showLogsOnFailure(serve.process);
    expect(await canBind(serve.xdsPort)).toBe(false);
    const records = logRecords(serve.process);
    expect(records.find((r) => r.msg === 'registry loaded')).toMatchObject({ services: 2, service: 'shadowplane' });

    process.kill(serve.process.pid!, signal);
    const exit = await serve.process.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(logRecords(serve.process).map((r) => r.msg)).toContain('stopped');
    expect(await canBind(serve.xdsPort)).toBe(true);
  });

  it('logs in a readable form when asked, and JSON by default', async () => {
    const pretty = startProcess({
      name: 'shadowplane',
      command: process.execPath,
      args: [cliPath, 'serve', '--xds-address', '127.0.0.1:0', '--admin-address', '127.0.0.1:0', '--log-format', 'pretty'],
      cwd: repoRoot,
    });
    showLogsOnFailure(pretty);
    await waitFor(() => /INFO.*: xDS server listening/.test(pretty.logs()), { description: 'a readable "xDS server listening" line' });
    expect(logRecords(pretty)).toEqual([]);

    const json = await startServe();
    expect(logRecords(json.process).find((r) => r.msg === 'xDS server listening')).toMatchObject({ level: 30, component: 'xds' });
  });
});
