import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/load.js';

function file(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'shadowplane-config-'));
  const p = path.join(dir, 'shadowplane.yaml');
  writeFileSync(p, text);
  return p;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('runs on defaults with no file, no environment and no flags', () => {
    const config = loadConfig();
    expect(config.xds.address).toBe('127.0.0.1:18000');
    expect(config.registry).toEqual({ source: 'file', path: 'examples/registry', routing_tags: ['beta', 'canary', 'shadow', 'dev-*'] });
    expect(config.log).toEqual({ level: 'info', format: 'json' });
  });

  it('layers file < environment < flags', () => {
    const f = file('xds:\n  address: 127.0.0.1:1000\n  max_message_bytes: 2048\nlog:\n  level: debug\n');
    const config = loadConfig({
      file: f,
      env: { SHADOWPLANE_XDS_ADDRESS: '127.0.0.1:2000', SHADOWPLANE_LOG_LEVEL: 'warn', PATH: '/bin' },
      flags: [{ key: 'xds.address', value: '127.0.0.1:3000', flag: '--xds-address' }],
    });
    expect(config.xds.address).toBe('127.0.0.1:3000');
    expect(config.xds.max_message_bytes).toBe(2048);
    expect(config.log.level).toBe('warn');
  });

  it('coerces environment numbers', () => {
    expect(loadConfig({ env: { SHADOWPLANE_XDS_KEEPALIVE_TIME_MS: '5000' } }).xds.keepalive_time_ms).toBe(5000);
  });

  const refusals: { name: string; load: () => unknown; expected: RegExp[] }[] = [
    {
      name: 'an unknown key in the file, with its line',
      load: () => loadConfig({ file: file('xds:\n  adress: 127.0.0.1:1\n') }),
      expected: [/shadowplane\.yaml:2:3: unknown key "xds\.adress"/],
    },
    {
      name: 'a bad value in the file, with its line and the reason',
      load: () => loadConfig({ file: file('log:\n  level: loud\n') }),
      expected: [/shadowplane\.yaml:2:3: log\.level: Invalid option/],
    },
    {
      name: 'every problem at once, not just the first',
      load: () => loadConfig({ file: file('log:\n  level: loud\nxds:\n  address: nowhere\n') }),
      expected: [/log\.level/, /xds\.address: expected host:port/],
    },
    {
      name: 'a YAML syntax error, with its position',
      load: () => loadConfig({ file: file('xds: [\n') }),
      expected: [/shadowplane\.yaml:\d+:\d+: /],
    },
    {
      name: 'a missing file',
      load: () => loadConfig({ file: '/nonexistent/shadowplane.yaml' }),
      expected: [/\/nonexistent\/shadowplane\.yaml: cannot read the configuration file \(ENOENT\)/],
    },
    {
      name: 'an unknown SHADOWPLANE_ variable',
      load: () => loadConfig({ env: { SHADOWPLANE_XDS_ADRESS: 'x' } }),
      expected: [/SHADOWPLANE_XDS_ADRESS: unknown environment variable/],
    },
    {
      name: 'a non-number in a number variable',
      load: () => loadConfig({ env: { SHADOWPLANE_XDS_MAX_MESSAGE_BYTES: 'lots' } }),
      expected: [/SHADOWPLANE_XDS_MAX_MESSAGE_BYTES: expected a number, got "lots"/],
    },
    {
      name: 'a bad value from a flag, naming the flag',
      load: () => loadConfig({ flags: [{ key: 'xds.address', value: 'x', flag: '--xds-address' }] }),
      expected: [/--xds-address: xds\.address: expected host:port/],
    },
    {
      name: 'an unknown key from --set',
      load: () => loadConfig({ flags: [{ key: 'xds.nope', value: '1', flag: '--set xds.nope' }] }),
      expected: [/--set xds\.nope: unknown configuration key "xds\.nope"/],
    },
    {
      name: 'a port out of range',
      load: () => loadConfig({ env: { SHADOWPLANE_XDS_ADDRESS: '127.0.0.1:70000' } }),
      expected: [/SHADOWPLANE_XDS_ADDRESS: xds\.address: port must be at most 65535/],
    },
    {
      name: 'half a TLS configuration',
      load: () => loadConfig({ file: file('xds:\n  tls:\n    cert_file: /c.pem\n') }),
      expected: [/xds\.tls\.key_file/],
    },
  ];

  it.each(refusals)('refuses $name', ({ load, expected }) => {
    const problems = problemsOf(load).join('\n');
    for (const e of expected) expect(problems).toMatch(e);
  });
});

describe('list values', () => {
  it('reads routing tags from a comma-separated variable', () => {
    expect(loadConfig({ env: { SHADOWPLANE_REGISTRY_ROUTING_TAGS: 'beta, canary,pr-*' } }).registry.routing_tags).toEqual(['beta', 'canary', 'pr-*']);
    expect(loadConfig().registry.routing_tags).toEqual(['beta', 'canary', 'shadow', 'dev-*']);
  });

  it('refuses a routing tag that is not a tag', () => {
    expect(() => loadConfig({ env: { SHADOWPLANE_REGISTRY_ROUTING_TAGS: 'Beta Users' } })).toThrow(/SHADOWPLANE_REGISTRY_ROUTING_TAGS: registry\.routing_tags\.0: a tag, or a prefix/);
  });
});
