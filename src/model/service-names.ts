// A registry's service names in code-unit order, worked out once per services map:
// every translation walks them in that order, and sources hand them over sorted.
import type { Registry } from './types.js';

const sortedNames = new WeakMap<Registry['services'], readonly string[]>();

export function serviceNames(registry: Registry): readonly string[] {
  let names = sortedNames.get(registry.services);
  if (!names) {
    const list = [...registry.services.keys()];
    let sorted = true;
    for (let i = 1; i < list.length && sorted; i++) sorted = list[i - 1]! < list[i]!;
    if (!sorted) list.sort();
    sortedNames.set(registry.services, (names = list));
  }
  return names;
}
