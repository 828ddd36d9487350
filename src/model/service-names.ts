// A registry's services in code-unit order of their names, worked out once per services
// map: every translation walks them in that order, and sources hand them over sorted.
// The services come with their names, so a walk over 10,000 of them need not look each
// one up again by name.
import type { Registry, Service } from './types.js';

interface InOrder {
  readonly names: readonly string[];
  /** `services[i]` is the service named `names[i]`. */
  readonly services: readonly Service[];
}

const inOrderByMap = new WeakMap<Registry['services'], InOrder>();

function inOrder(registry: Registry): InOrder {
  let known = inOrderByMap.get(registry.services);
  if (!known) {
    const names = [...registry.services.keys()];
    let sorted = true;
    for (let i = 1; i < names.length && sorted; i++) sorted = names[i - 1]! < names[i]!;
    let services: Service[];
    if (sorted) services = [...registry.services.values()];
    else {
      names.sort();
      services = names.map((name) => registry.services.get(name)!);
    }
    inOrderByMap.set(registry.services, (known = { names, services }));
  }
  return known;
}

export function serviceNames(registry: Registry): readonly string[] {
  return inOrder(registry).names;
}

/** The services in the order of `serviceNames`. */
export function servicesInOrder(registry: Registry): readonly Service[] {
  return inOrder(registry).services;
}
