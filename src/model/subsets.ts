// Tags become subsets: an instance carrying a routing tag (beta, canary, shadow,
// dev-*) is in that tag's subset; an instance with none is in the stable subset.
import { STABLE_SUBSET, type Instance, type Service, type Subset } from './types.js';

export const DEFAULT_ROUTING_TAGS: readonly string[] = ['beta', 'canary', 'shadow', 'dev-*'];

/** `dev-*` matches any tag starting with `dev-`; other patterns match exactly. */
export function isRoutingTag(tag: string, patterns: readonly string[] = DEFAULT_ROUTING_TAGS): boolean {
  return matcherFor(patterns)(tag);
}

/** Patterns compiled once per list: a set of exact tags and a list of prefixes. */
const matchers = new WeakMap<readonly string[], (tag: string) => boolean>();

function matcherFor(patterns: readonly string[]): (tag: string) => boolean {
  let match = matchers.get(patterns);
  if (!match) {
    const exact = new Set(patterns.filter((p) => !p.endsWith('*')));
    const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
    match = (tag) => exact.has(tag) || prefixes.some((prefix) => tag.length > prefix.length && tag.startsWith(prefix));
    matchers.set(patterns, match);
  }
  return match;
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byId = (a: Instance, b: Instance): number => byCodeUnits(a.id, b.id);

/** Sorts in place, unless already in order (sources hand instances over sorted). */
function sortIfNeeded<T>(items: T[], compare: (a: T, b: T) => number): T[] {
  for (let i = 1; i < items.length; i++) if (compare(items[i - 1]!, items[i]!) > 0) return items.sort(compare);
  return items;
}

/**
 * The subsets of a service, sorted by name, each with its instances sorted by id, so
 * equal registries give equal subsets. An instance with several routing tags is in
 * each of their subsets. The stable subset is always present, even when empty, so a
 * route to it never dangles.
 */
export function subsetsOf(service: Service, patterns: readonly string[] = DEFAULT_ROUTING_TAGS): Subset[] {
  const isRouting = matcherFor(patterns);
  const stable: Instance[] = [];
  // A handful of subsets, kept in name order as they are found: no map, no sort.
  // Indexed loops and an insertion by hand: this runs for every service of every full
  // build, and for-of over tag lists and splice showed in its profile.
  const subsets: { service: string; name: string; instances: Instance[] }[] = [{ service: service.name, name: STABLE_SUBSET, instances: stable }];
  const instances = service.instances;
  for (let n = 0; n < instances.length; n++) {
    const instance = instances[n]!;
    const tags = instance.tags;
    let routed = false;
    for (let t = 0; t < tags.length; t++) {
      const tag = tags[t]!;
      if (!isRouting(tag)) continue;
      routed = true;
      let i = 0;
      while (i < subsets.length && subsets[i]!.name < tag) i++;
      const at = subsets[i];
      if (at?.name === tag) at.instances.push(instance); // a tag `stable` (`s*` matches it) joins the stable subset
      else {
        // Insert at i: move the rest one place along.
        for (let j = subsets.length; j > i; j--) subsets[j] = subsets[j - 1]!;
        subsets[i] = { service: service.name, name: tag, instances: [instance] };
      }
    }
    if (!routed) stable.push(instance);
  }
  for (const subset of subsets) sortIfNeeded(subset.instances, byId);
  return subsets;
}
