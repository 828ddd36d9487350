// What a node's metadata makes of a proxy, and what it is refused for.
import { describe, expect, it } from 'vitest';
import { ProxyKeyError, proxyKeyOf } from '../../../src/translate/proxy.js';

describe('proxyKeyOf', () => {
  it('reads a sidecar with its subset, stable by default', () => {
    expect(proxyKeyOf('api', { role: 'sidecar', subset: 'shadow' })).toMatchObject({ role: 'sidecar', subset: 'shadow' });
    expect(proxyKeyOf('api', { role: 'sidecar' })).toMatchObject({ role: 'sidecar', subset: 'stable' });
    expect(proxyKeyOf('api', { role: 'sidecar', subset: 'dev-Alice' })).toMatchObject({ subset: 'dev-Alice' });
  });

  it('refuses a sidecar whose subset is a variant of shadow, rather than serving it writes to production', () => {
    for (const subset of ['Shadow', 'SHADOW', ' shadow', 'shadow\n']) {
      expect(() => proxyKeyOf('api', { role: 'sidecar', subset })).toThrow(ProxyKeyError);
      expect(() => proxyKeyOf('api', { role: 'sidecar', subset })).toThrow(/^node\.metadata\.subset: ".*" is not "shadow": subsets are compared exactly/);
    }
    // Other subsets are whatever the registry's tags make them: shadow-2 is not a variant.
    expect(proxyKeyOf('api', { role: 'sidecar', subset: 'shadow-2' })).toMatchObject({ subset: 'shadow-2' });
  });

  it('names the field of a wrong role or port', () => {
    expect(() => proxyKeyOf('', { role: 'bouncer' })).toThrow(/node\.metadata\.role: "bouncer" is not a role/);
    expect(() => proxyKeyOf('', { role: 'edge', listener_port: 70000 })).toThrow(/node\.metadata\.listener_port: expected a port/);
    expect(() => proxyKeyOf('', { role: 'sidecar' })).toThrow(/node\.cluster/);
  });
});
