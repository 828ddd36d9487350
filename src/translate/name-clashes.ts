// Names Envoy sees join their parts with dots (names.ts), and a registry may hold
// services and tags with dots in them (Consul allows both), so two owners can make
// one name: service `a.dev-x` and service `a`'s subset `dev-x` are both `a.dev-x`.
// Envoy takes each name once, and one name twice fails the whole snapshot, for every
// proxy. So before translation the registry gives up what would take a name that
// another owner has, and everything else is served:
//  - the rules' own clusters (mirrors, JWT key sets) keep their names: validation
//    refuses clashes among rules, and a tag that turns up in the registry must not
//    switch a mirror off;
//  - between registry subsets, the one whose service name and tag hold no dot keeps
//    the name (that is how the scheme reads it); if both hold dots, neither does;
//  - a service named like a sidecar's local application (`local_app_8080`) is never
//    served: that name belongs to the sidecar's own cluster.
// A subset that gives up its name is left out with its instances (they carry a
// routing tag, so they do not belong in stable either); a stable subset that gives
// up its name takes its service with it, since its virtual host would route there.
// Service names are also virtual host domains, which Envoy compares with ASCII
// letters lowered, refusing a route configuration that holds one twice: of services
// whose names differ only in case (Consul keeps `Web` and `web` apart), the one in
// lower case keeps its domain, and if none is, none does.
// A name that starts or ends with `*` is never served: Envoy would read its domain as a
// wildcard and send it requests for other hosts.
// Pure and deterministic: the same registry and rules give the same answer.
import { rulesOf, type RuleSet } from '../model/rules.js';
import { serviceNames, servicesInOrder } from '../model/service-names.js';
import { isRoutingTag, subsetsOf } from '../model/subsets.js';
import { STABLE_SUBSET, type Instance, type Registry, type Service } from '../model/types.js';
import { routingTags } from './clusters.js';
import { claimHeaders } from './filters.js';
import { clusterName, jwksClusterName, mirrorClusterName } from './names.js';

/** A registry subset that is not served: its cluster's name or its service's domain is taken, or the domain would be a wildcard. */
export interface RefusedSubset {
  readonly service: string;
  /** `stable`: the whole service is left out. */
  readonly subset: string;
  /** The cluster name it would have had. */
  readonly cluster: string;
  /**
   * What is wrong with the name: another owner has the cluster name (`cluster`) or the
   * service's virtual host domain as Envoy compares domains (`domain`), or Envoy would
   * read the domain as a wildcard (`wildcard`).
   */
  readonly kind: 'cluster' | 'domain' | 'wildcard';
  /** Instances left out with it, by id. */
  readonly instances: readonly string[];
  /** Who else has the name (or what the name would do), for the log and the status page. */
  readonly reason: string;
}

const ENVOY_RULE: Record<RefusedSubset['kind'], string> = {
  cluster: ', and Envoy takes each cluster name once',
  domain: ', and Envoy takes each domain once in a route configuration',
  wildcard: '',
};

/** What the log says of a refusal: what is left out, who has its name, and why that matters to Envoy. */
export function describeRefusal(r: RefusedSubset): string {
  const what = r.subset === STABLE_SUBSET ? `service "${r.service}"` : `subset "${r.subset}" of service "${r.service}"`;
  return `${what} is not served: ${r.reason}${ENVOY_RULE[r.kind]}`;
}

const LOCAL_APP = /^local_app_\d+$/;

/** Whether Envoy reads a name as a wildcard domain: a `*` at its start or end (one inside is a plain character). */
const isWildcardDomain = (name: string): boolean => name.startsWith('*') || name.endsWith('*');

/** Whether a name holds an ASCII capital: Envoy lowers those (and only those) when it compares domains. */
function hasAsciiCapital(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) return true;
  }
  return false;
}

/** The name as Envoy compares domains: ASCII capitals lowered, everything else as it is. */
const envoyDomainKey = (name: string): string => name.replace(/[A-Z]+/g, (run) => run.toLowerCase());

interface Claimant {
  readonly service: string;
  readonly subset: string;
  /** Its service name or tag holds a dot. */
  readonly dotted: boolean;
}

/**
 * Whether an instance carries a routing tag with a dot. Consul tags such as
 * `traefik.enable=true` are common but make no subset; the service's routing tags are
 * looked up only for a tag with a dot, which most services have none of.
 */
function hasDottedRoutingTag(service: Service, rules: RuleSet, defaults: readonly string[] | undefined): boolean {
  for (const instance of service.instances) {
    for (const tag of instance.tags) if (tag.includes('.') && isRoutingTag(tag, routingTags(rules, service.name, defaults))) return true;
  }
  return false;
}

/** The clusters the rules make whatever the registry holds, by name, with what makes them; once per rule set. */
const ruleClusterNames = new WeakMap<RuleSet, Map<string, string>>();
function ruleClusters(rules: RuleSet): Map<string, string> {
  let out = ruleClusterNames.get(rules);
  if (out) return out;
  ruleClusterNames.set(rules, (out = new Map<string, string>()));
  for (const service of Object.keys(rules.services)) {
    for (const m of rulesOf(rules, service)?.mirrors ?? []) out.set(mirrorClusterName(m.to.service, m.to.subset, m.name), `mirror "${m.name}" of "${service}"`);
  }
  for (const issuer of claimHeaders(rules).keys()) {
    const config = rules.jwt_issuers[issuer];
    if (config && 'jwks_uri' in config) out.set(jwksClusterName(issuer), `the key set cluster of JWT issuer "${issuer}"`);
  }
  return out;
}

/**
 * Only these services can take a name twice: those with a dot in their name or in a
 * routing tag, those named like a local app, those with a capital in their name (a
 * domain another service may hold in lower case), those whose name starts or ends with
 * `*` (a wildcard domain, refused whatever else there is), and those with a tag that would
 * give a subset one of the rules' cluster names (see ruleNameRests). Worked out per registry
 * state; from the last state and the services that changed when the source says which
 * (registry.changes), so one changed instance among 10,000 services costs a look at one.
 */
interface Suspects {
  readonly rules: RuleSet;
  readonly routingTags: readonly string[] | undefined;
  readonly names: ReadonlySet<string>;
}
const suspectsByState = new WeakMap<ReadonlyMap<string, Service>, Suspects>();

function suspectsOf(registry: Registry, rules: RuleSet): ReadonlySet<string> {
  const known = suspectsByState.get(registry.services);
  if (known?.rules === rules && known.routingTags === registry.routingTags) return known.names;
  const restsByName = ruleNameRests(rules);
  const isSuspect = (name: string, service: Service | undefined = registry.services.get(name)): boolean => {
    if (!service) return false;
    if (name.includes('.') || isWildcardDomain(name) || (name.startsWith('local_app_') && LOCAL_APP.test(name)) || hasAsciiCapital(name)) return true;
    if (hasDottedRoutingTag(service, rules, registry.routingTags)) return true;
    const rests = restsByName.get(name);
    return rests !== undefined && rests.some((rest) => rest === '' || service.instances.some((i) => i.tags.includes(rest)));
  };
  const before = registry.changes && suspectsByState.get(registry.changes.since);
  let names: Set<string>;
  if (registry.changes && before?.rules === rules && before.routingTags === registry.routingTags) {
    names = new Set(before.names);
    for (const name of registry.changes.services) {
      if (isSuspect(name)) names.add(name);
      else names.delete(name);
    }
  } else {
    names = new Set();
    const all = serviceNames(registry);
    const services = servicesInOrder(registry);
    for (let i = 0; i < all.length; i++) if (isSuspect(all[i]!, services[i])) names.add(all[i]!);
  }
  suspectsByState.set(registry.services, { rules, routingTags: registry.routingTags, names });
  return names;
}

/**
 * For each service name a rule's cluster name starts with, what follows it in that name
 * ('' for the whole name): a service of that name with a subset named so would take
 * the rule's name. Once per rule set.
 */
const restsByRules = new WeakMap<RuleSet, Map<string, string[]>>();
function ruleNameRests(rules: RuleSet): Map<string, string[]> {
  let out = restsByRules.get(rules);
  if (out) return out;
  restsByRules.set(rules, (out = new Map()));
  for (const name of ruleClusters(rules).keys()) {
    for (const p of prefixes(name)) out.set(p, [...(out.get(p) ?? []), p === name ? '' : name.slice(p.length + 1)]);
  }
  return out;
}

/** `a`, `a.b`, `a.b.c` for `a.b.c`: the services whose clusters could be named `name`. */
function prefixes(name: string): string[] {
  const out: string[] = [];
  for (let at = name.indexOf('.'); at > 0; at = name.indexOf('.', at + 1)) out.push(name.slice(0, at));
  out.push(name);
  return out;
}

const describe = (c: Claimant): string =>
  c.subset === STABLE_SUBSET ? `service "${c.service}"` : `subset "${c.subset}" of service "${c.service}"`;

/**
 * The registry to translate: `registry` itself when no name clashes (the common case,
 * found with one look at each service's name), else a copy without what gives up its
 * name, and what that is.
 */
export function refuseNameClashes(registry: Registry, rules: RuleSet): { registry: Registry; refused: RefusedSubset[] } {
  const ruleNames = ruleClusters(rules);
  const suspects = suspectsOf(registry, rules);
  if (suspects.size === 0) return { registry, refused: [] };

  // Every cluster of a suspect, and of every service its clusters' names start with.
  const claims = new Map<string, Claimant[]>();
  const subsets = new Map<string, Map<string, readonly Instance[]>>();
  const queue = [...suspects];
  for (let service = queue.pop(); service !== undefined; service = queue.pop()) {
    if (subsets.has(service)) continue;
    const own = new Map<string, readonly Instance[]>();
    subsets.set(service, own);
    for (const subset of subsetsOf(registry.services.get(service)!, routingTags(rules, service, registry.routingTags))) {
      own.set(subset.name, subset.instances);
      const name = clusterName(service, subset.name);
      claims.set(name, [...(claims.get(name) ?? []), { service, subset: subset.name, dotted: service.includes('.') || subset.name.includes('.') }]);
      for (const p of prefixes(name)) if (registry.services.has(p) && !subsets.has(p)) queue.push(p);
    }
  }
  const byOwner = (a: Claimant, b: Claimant): number => (a.service < b.service ? -1 : a.service > b.service ? 1 : a.subset < b.subset ? -1 : a.subset > b.subset ? 1 : 0);

  const lost = new Map<string, { claimant: Claimant; cluster: string; kind: RefusedSubset['kind']; reason: string }>();
  const lose = (claimant: Claimant, cluster: string, reason: string, kind: RefusedSubset['kind']): void => {
    lost.set(`${claimant.service}\u0000${claimant.subset}`, { claimant, cluster, kind, reason });
  };
  for (const service of subsets.keys()) {
    if (LOCAL_APP.test(service)) lose({ service, subset: STABLE_SUBSET, dotted: false }, service, `"${service}" is the name of a sidecar's local application cluster`, 'cluster');
  }
  for (const [cluster, list] of claims) {
    const rule = ruleNames.get(cluster);
    if (rule !== undefined) {
      for (const c of list) lose(c, cluster, `${rule} has the cluster name "${cluster}"`, 'cluster');
      continue;
    }
    if (list.length < 2) continue;
    list.sort(byOwner);
    const plain = list.find((c) => !c.dotted);
    for (const c of list) {
      if (c === plain) continue;
      const others = list.filter((o) => o !== c).map(describe).join(' and ');
      lose(c, cluster, `${others} would have the cluster name "${cluster}" too`, 'cluster');
    }
  }
  // One domain, as Envoy compares them, for several services: every service with a
  // capital in its name is a suspect, so each such group is found among them, and its
  // lower-case member (not a suspect on that account) by its name.
  const byDomain = new Map<string, string[]>();
  for (const service of suspects) {
    if (!hasAsciiCapital(service)) continue;
    const domain = envoyDomainKey(service);
    byDomain.set(domain, [...(byDomain.get(domain) ?? []), service]);
  }
  for (const [domain, capitalised] of byDomain) {
    const holders = registry.services.has(domain) ? [domain, ...capitalised.sort()] : capitalised.sort();
    if (holders.length < 2) continue;
    for (const service of capitalised) {
      const others = holders.filter((o) => o !== service).map((o) => `service "${o}"`).join(' and ');
      lose({ service, subset: STABLE_SUBSET, dotted: false }, clusterName(service, STABLE_SUBSET), `${others} would have the domain "${domain}" too (Envoy compares domains without case)`, 'domain');
    }
  }
  // A `*` at either end of a domain makes it a wildcard for Envoy: service `*` would
  // take every request no other service matches, `x:*` would repeat the domain that
  // service `x` has for its ports (and Envoy would refuse the route configuration).
  // Last, so this reason is the one given for such a service.
  for (const service of suspects) {
    if (isWildcardDomain(service)) {
      lose({ service, subset: STABLE_SUBSET, dotted: false }, clusterName(service, STABLE_SUBSET), `its name starts or ends with "*", which makes its domain an Envoy wildcard that takes requests for other hosts`, 'wildcard');
    }
  }
  if (lost.size === 0) return { registry, refused: [] };

  const refused: RefusedSubset[] = [...lost.values()]
    .map(({ claimant: { service, subset }, cluster, kind, reason }) => ({
      service,
      subset,
      cluster,
      kind,
      instances: (subset === STABLE_SUBSET ? registry.services.get(service)!.instances : (subsets.get(service)?.get(subset) ?? [])).map((i) => i.id),
      reason,
    }))
    .sort((a, b) => (a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : byOwner({ ...a, dotted: false }, { ...b, dotted: false })));
  const gone = new Set(refused.filter((r) => r.subset === STABLE_SUBSET).map((r) => r.service));
  const tags = new Map<string, Set<string>>();
  for (const r of refused) if (!gone.has(r.service)) tags.set(r.service, (tags.get(r.service) ?? new Set()).add(r.subset));
  const services = new Map<string, Service>();
  for (const name of serviceNames(registry)) {
    if (gone.has(name)) continue;
    const service = registry.services.get(name)!;
    const out = tags.get(name);
    services.set(name, out ? withoutTags(service, out) : service);
  }
  return { registry: { services, ...(registry.routingTags && { routingTags: registry.routingTags }) }, refused };
}

/**
 * A service without the instances that carry any of `tags`, the same object while its
 * instances and those tags stay the same (the incremental translator keys on them).
 */
const filtered = new WeakMap<readonly Instance[], { key: string; service: Service }>();
function withoutTags(service: Service, tags: ReadonlySet<string>): Service {
  const key = [...tags].sort().join('\u0000');
  const cached = filtered.get(service.instances);
  if (cached?.key === key && cached.service.name === service.name) return cached.service;
  const kept: Service = { name: service.name, instances: service.instances.filter((i) => !i.tags.some((t) => tags.has(t))) };
  filtered.set(service.instances, { key, service: kept });
  return kept;
}
