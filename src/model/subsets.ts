// Tags become subsets: an instance carrying a routing tag (beta, canary, shadow,
// dev-*) is in that tag's subset; an instance with none is in the stable subset.
import { STABLE_SUBSET, type Instance, type Service, type Subset } from './types.js';

export const DEFAULT_ROUTING_TAGS: readonly string[] = ['beta', 'canary', 'shadow', 'dev-*'];

/** `dev-*` matches any tag starting with `dev-`; other patterns match exactly. */
export function isRoutingTag(tag: string, patterns: readonly string[] = DEFAULT_ROUTING_TAGS): boolean {
  return patterns.some((p) => (p.endsWith('*') ? tag.startsWith(p.slice(0, -1)) && tag.length > p.length - 1 : tag === p));
}

/**
 * The subsets of a service, sorted by name, each with its instances sorted by id, so
 * equal registries give equal subsets. An instance with several routing tags is in
 * each of their subsets. The stable subset is always present, even when empty, so a
 * route to it never dangles.
 */
export function subsetsOf(service: Service, patterns: readonly string[] = DEFAULT_ROUTING_TAGS): Subset[] {
  const bySubset = new Map<string, Instance[]>([[STABLE_SUBSET, []]]);
  for (const instance of service.instances) {
    const routing = instance.tags.filter((t) => isRoutingTag(t, patterns));
    for (const name of routing.length > 0 ? routing : [STABLE_SUBSET]) {
      const list = bySubset.get(name) ?? [];
      list.push(instance);
      bySubset.set(name, list);
    }
  }
  return [...bySubset.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, instances]) => ({
      service: service.name,
      name,
      instances: instances.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    }));
}
