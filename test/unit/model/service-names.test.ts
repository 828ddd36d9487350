// A registry's services in name order, each beside its name.
import { describe, expect, it } from 'vitest';
import { serviceNames, servicesInOrder } from '../../../src/model/service-names.js';
import type { Registry, Service } from '../../../src/model/types.js';

const registryOf = (...names: string[]): Registry => ({
  services: new Map(names.map((name): [string, Service] => [name, { name, instances: [] }])),
});

describe('serviceNames and servicesInOrder', () => {
  it('put the services in code-unit order of their names, each at its name', () => {
    // 'Z' sorts before 'a' by code unit; 'a.b' before 'ab'.
    const registry = registryOf('web', 'ab', 'a.b', 'Zeta', 'api');
    expect(serviceNames(registry)).toEqual(['Zeta', 'a.b', 'ab', 'api', 'web']);
    expect(servicesInOrder(registry).map((s) => s.name)).toEqual(['Zeta', 'a.b', 'ab', 'api', 'web']);
    expect(servicesInOrder(registry)[3]).toBe(registry.services.get('api'));
  });

  it('take a registry handed over sorted as it is, and work each services map out once', () => {
    const registry = registryOf('a', 'b', 'c');
    expect(servicesInOrder(registry)).toEqual([...registry.services.values()]);
    expect(serviceNames(registry)).toBe(serviceNames({ services: registry.services }));
    expect(servicesInOrder(registry)).toBe(servicesInOrder({ services: registry.services }));
  });
});
