// Translation that redoes only what changed. A service's clusters and endpoints are
// kept while its instances (the same array: sources keep an unchanged service's
// instances as they were) and the routing tags stay the same; a virtual host is kept
// while its service's rules and the liveness of the subsets they name stay the same.
// The output equals translateShared / translateForProxy (translate.ts) for the same
// model; a test holds them to it.
import type { Instance, Model, Registry, Service } from '../model/types.js';
import { rulesOf, type Mirror, type RuleSet, type ServiceRules, type Target } from '../model/rules.js';
import { subsetsOf } from '../model/subsets.js';
import { TypeUrl, type ResourceObject } from '../xds/resources.js';
import type { Resource } from '../xds/resource.js';
import { Snapshot, type Removal } from '../xds/cache.js';
import { checkedResource, subsetResources } from './encode.js';
import { buildJwksCluster, buildMirrorCluster, defaultRoutingTags, routingTags, servicesRulesSendTo } from './clusters.js';
import { claimHeaders } from './filters.js';
import { buildVirtualHost, liveMirrors, plainVirtualHost, type SubsetIndex } from './routes.js';
import { translateForProxy, type TypedObject } from './translate.js';
import type { ProxyKey } from './proxy.js';
import { serviceNames, servicesInOrder } from '../model/service-names.js';

export { EnvoyConstraintError } from './encode.js';

interface ServiceEntry {
  instances: readonly Instance[];
  patterns: string;
  resources: Resource[];
  /** The subsets with instances, in name order: a few names, so a list, not a set. */
  live: readonly string[];
}

interface VirtualHostEntry {
  rules: ServiceRules | undefined;
  settings: RuleSet['settings'];
  liveness: string;
  standIn: number | undefined;
  vhost: ResourceObject;
}

/** What a shared snapshot was made of. */
interface Published {
  snapshot: Snapshot;
  rules: RuleSet;
  routingTags: readonly string[] | undefined;
  /** The registry's services the snapshot was made from. */
  registry: ReadonlyMap<string, Service>;
  /** Mutated only once a next snapshot is made: it always describes `snapshot`. */
  services: Map<string, ServiceEntry>;
  /** Mirror and JWKS clusters, by name. */
  extras: Map<string, Resource>;
}

/** How a model differs from the one a shared snapshot was made of (IncrementalTranslator.changeSince). */
interface SharedChange {
  upserts: Resource[];
  removed: Removal[];
  /** Names whose owner replaces or drops them in this change: anything else new must be new. */
  released: Set<string>;
  /** Services whose entries changed; undefined: gone. */
  services: [string, ServiceEntry | undefined][];
  /** Mirror and JWKS clusters, by name. */
  extras: Map<string, Resource>;
  /** Whether routes may change: a service came or went, or a subset's liveness changed. */
  routing: boolean;
}

interface TagsEntry {
  tags: readonly string[];
  key: string;
}

/**
 * A list of tags and its key. Made once per rule set for the defaults, which most
 * services share (IncrementalTranslator.tags), and once per service a rule sends to:
 * routingTags makes that service's list anew, so an entry kept by list would never be
 * found again (a WeakMap insert per such service on every full build).
 */
const tagsEntry = (tags: readonly string[]): TagsEntry => ({ tags, key: tags.join(',') });

const resourceKey = (r: Resource): string => `${r.typeUrl} ${r.name}`;

/** Throws if a new resource takes a name another owner still holds, or two take one. */
function refuseNamesTakenTwice(current: Snapshot, upserts: readonly Resource[], released: ReadonlySet<string>): void {
  const seen = new Set<string>();
  for (const r of upserts) {
    const key = resourceKey(r);
    if (seen.has(key) || (!released.has(key) && current.resources(r.typeUrl).has(r.name))) throw new Error(`duplicate ${r.typeUrl.slice(r.typeUrl.lastIndexOf('.') + 1)} resource "${r.name}"`);
    seen.add(key);
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Every target of a service's rules, in rule order. Loops rather than spreads and flatMap: a full build asks for each service rules name. */
function targetsOf(rules: ServiceRules | undefined): Target[] {
  const out: Target[] = [];
  if (!rules) return out;
  for (const d of rules.dev_routes) out.push(d.to);
  for (const t of rules.tenant_routes) out.push(t.to);
  for (const r of rules.routes) {
    if ('to' in r) out.push(r.to);
    else for (const s of r.split) out.push(s.to);
  }
  for (const m of rules.mirrors) out.push(m.to);
  return out;
}

/** Whether a service's virtual host depends on its name alone: no rule names it, and no stand-in answers for it. */
const hasPlainHost = (rules: RuleSet, service: string, standIn: number | undefined): boolean => rulesOf(rules, service) === undefined && standIn === undefined;

export class IncrementalTranslator {
  private services = new Map<string, ServiceEntry>();
  private vhosts = new Map<string, VirtualHostEntry>();
  private tagsFor?: {
    rules: RuleSet;
    defaults: readonly string[] | undefined;
    /** The services whose tags may not be the defaults; the rest (most) share `plain`. */
    ruled: { has(service: string): boolean };
    plain: TagsEntry;
    byService: Map<string, TagsEntry>;
  };

  private tags(rules: RuleSet, service: string, defaults: readonly string[] | undefined): TagsEntry {
    if (this.tagsFor?.rules !== rules || this.tagsFor.defaults !== defaults) {
      this.tagsFor = { rules, defaults, ruled: servicesRulesSendTo(rules), plain: tagsEntry(defaultRoutingTags(defaults)), byService: new Map() };
    }
    if (!this.tagsFor.ruled.has(service)) return this.tagsFor.plain;
    let entry = this.tagsFor.byService.get(service);
    if (!entry) this.tagsFor.byService.set(service, (entry = tagsEntry(routingTags(rules, service, defaults))));
    return entry;
  }

  /** Clusters and endpoints of one service, rebuilt only when its instances or the tags change. */
  private service(registry: Registry, name: string, rules: RuleSet, service: Service = registry.services.get(name)!): ServiceEntry {
    const { tags, key } = this.tags(rules, name, registry.routingTags);
    const cached = this.services.get(name);
    if (cached && cached.instances === service.instances && cached.patterns === key) return cached;
    const subsets = subsetsOf(service, tags);
    // Both lists are made at their size: the translator keeps them for every service,
    // and an array grown by push keeps room for 17 entries (about 0.2 KB a service).
    const resources = new Array<Resource>(2 * subsets.length);
    let liveCount = 0;
    for (let i = 0; i < subsets.length; i++) {
      const subset = subsets[i]!;
      const [cluster, endpoints] = subsetResources(subset);
      resources[2 * i] = cluster;
      resources[2 * i + 1] = endpoints;
      if (subset.instances.length > 0) liveCount++;
    }
    const live = new Array<string>(liveCount);
    for (let i = 0, k = 0; i < subsets.length; i++) if (subsets[i]!.instances.length > 0) live[k++] = subsets[i]!.name;
    const entry: ServiceEntry = { instances: service.instances, patterns: key, resources, live };
    this.services.set(name, entry);
    return entry;
  }

  private index(registry: Registry, rules: RuleSet): SubsetIndex {
    return {
      hasInstances: (t) => (registry.services.has(t.service) ? this.service(registry, t.service, rules).live.includes(t.subset) : false),
    };
  }

  /** Everything every proxy shares, for the model. */
  shared(model: Model): Resource[] {
    const out: Resource[] = [];
    for (const r of this.sharedParts(model, (r) => out.push(r))) out.push(r);
    return out;
  }

  /** Hands every service's clusters and endpoints to `add`, in service order; returns the extras. */
  private sharedParts(model: Model, add: (r: Resource) => void): Resource[] {
    const { registry, rules } = model;
    for (const gone of [...this.services.keys()]) if (!registry.services.has(gone)) this.services.delete(gone);
    const names = serviceNames(registry);
    const services = servicesInOrder(registry);
    for (let i = 0; i < names.length; i++) for (const r of this.service(registry, names[i]!, rules, services[i]).resources) add(r);
    return this.extras(model);
  }

  /** What the last snapshot from `sharedSnapshot` was made of: the base of the next one. */
  private published?: Published;
  /** Bumped whenever routes may change: rules, the set of services, or a subset's liveness. */
  private routingEpoch = 0;
  private epochRegistry?: Registry;

  /** Mirror and JWKS clusters: what the rules and the subsets' liveness make of them. */
  private extras(model: Model): Resource[] {
    const { registry, rules } = model;
    const subsets = this.index(registry, rules);
    const out: Resource[] = [];
    for (const name of Object.keys(rules.services).sort()) {
      if (registry.services.has(name)) for (const mirror of liveMirrors(name, rules, subsets)) out.push(this.mirrorCluster(mirror));
    }
    for (const issuer of [...claimHeaders(rules).keys()].sort()) {
      const config = rules.jwt_issuers[issuer];
      if (config && 'jwks_uri' in config) out.push(checkedResource(TypeUrl.Cluster, buildJwksCluster(issuer, config)));
    }
    return out;
  }

  /**
   * The snapshot every proxy shares, derived from the last one this returned: only the
   * services whose instances changed are translated again, and only resources whose
   * content changed enter the new snapshot. The first call, and any after the rules or
   * the routing tags changed, builds it whole; after a failure the next call derives
   * from the last snapshot that was made.
   */
  sharedSnapshot(model: Model): Snapshot {
    const { registry, rules } = model;
    const last = this.published;
    if (!last || last.rules !== rules || last.routingTags !== registry.routingTags) {
      // Each resource goes into the snapshot's maps as it is made, while it is fresh.
      const builder = Snapshot.builder();
      const extraList = this.sharedParts(model, builder.add);
      for (const r of extraList) builder.add(r);
      const snapshot = builder.build();
      const extras = new Map(extraList.map((r) => [r.name, r]));
      this.published = { snapshot, rules, routingTags: registry.routingTags, registry: registry.services, services: new Map(this.services), extras };
      this.bumpEpoch(registry);
      return snapshot;
    }
    const change = this.changeSince(last, model);
    refuseNamesTakenTwice(last.snapshot, change.upserts, change.released);
    const snapshot = last.snapshot.update(change.upserts, change.removed);
    for (const [name, entry] of change.services) {
      if (entry) last.services.set(name, entry);
      else last.services.delete(name);
    }
    this.published = { ...last, registry: registry.services, snapshot, extras: change.extras };
    if (change.routing) this.bumpEpoch(registry);
    else this.epochRegistry = registry;
    return snapshot;
  }

  /** What differs in `model` from what `last` was made of. */
  private changeSince(last: Published, model: Model): SharedChange {
    const { registry, rules } = model;
    const upserts: Resource[] = [];
    const removed: Removal[] = [];
    const released = new Set<string>();
    const services: [string, ServiceEntry | undefined][] = [];
    let routing = false;
    // Same rules and routing tags as last time (else the whole build): a service with
    // the same instances has the same entry. The source may say which those are.
    const moved: string[] = [];
    if (registry.changes?.since === last.registry) {
      for (const name of registry.changes.services) if (registry.services.has(name)) moved.push(name);
    } else {
      registry.services.forEach((service, name) => {
        if (last.services.get(name)?.instances !== service.instances) moved.push(name);
      });
    }
    for (const name of moved) {
      const before = last.services.get(name);
      const entry = this.service(registry, name, rules);
      if (entry === before) continue;
      services.push([name, entry]);
      if (!before || !sameList(before.live, entry.live)) routing = true;
      if (before) {
        for (const r of before.resources) released.add(resourceKey(r));
        const kept = new Set(entry.resources.map(resourceKey));
        for (const r of before.resources) if (!kept.has(resourceKey(r))) removed.push({ typeUrl: r.typeUrl, name: r.name });
      }
      upserts.push(...entry.resources);
    }
    if (last.services.size + services.filter(([name]) => !last.services.has(name)).length !== registry.services.size) {
      for (const [name, before] of last.services) {
        if (registry.services.has(name)) continue;
        this.services.delete(name);
        services.push([name, undefined]);
        routing = true;
        for (const r of before.resources) {
          released.add(resourceKey(r));
          removed.push({ typeUrl: r.typeUrl, name: r.name });
        }
      }
    }
    let extras = last.extras;
    if (routing) {
      extras = new Map(this.extras(model).map((r) => [r.name, r]));
      for (const [name, r] of last.extras) {
        released.add(resourceKey(r));
        if (!extras.has(name)) removed.push({ typeUrl: r.typeUrl, name });
      }
      upserts.push(...extras.values());
    }
    return { upserts, removed, released, services, extras, routing };
  }

  private bumpEpoch(registry: Registry): void {
    this.routingEpoch += 1;
    this.epochRegistry = registry;
  }

  /** A mirror's cluster depends on the mirror alone: built once per mirror of a rule set. */
  private mirrorClusters = new WeakMap<Mirror, Resource>();
  private mirrorCluster(mirror: Mirror): Resource {
    let cluster = this.mirrorClusters.get(mirror);
    if (!cluster) {
      cluster = checkedResource(TypeUrl.Cluster, buildMirrorCluster(mirror));
      this.mirrorClusters.set(mirror, cluster);
    }
    return cluster;
  }

  /** The virtual host of a service rules name, or of a shadow's: rebuilt only when what it depends on changed. */
  private vhost(name: string, rules: RuleSet, subsets: SubsetIndex, standIn: number | undefined): ResourceObject {
    const own = rulesOf(rules, name);
    const liveness = own
      ? targetsOf(own)
          .map((t) => (subsets.hasInstances(t) ? '1' : '0'))
          .join('')
      : '';
    const key = standIn === undefined ? name : `${name}\u0000${standIn}`;
    const cached = this.vhosts.get(key);
    if (cached && cached.rules === own && cached.settings === rules.settings && cached.liveness === liveness && cached.standIn === standIn) return cached.vhost;
    const vhost = buildVirtualHost(name, rules, subsets, { readOnlyStandIn: standIn });
    this.vhosts.set(key, { rules: own, settings: rules.settings, liveness, standIn, vhost });
    return vhost;
  }

  /** Per group: its virtual hosts (a plain host by its service's name, see vhost) and its resources. */
  private groups = new Map<string, { rules: RuleSet; vhosts: (ResourceObject | string)[]; resources: Resource[]; epoch: number }>();

  /**
   * A proxy kind's listeners and routes: translateForProxy with cached virtual hosts.
   * When every virtual host is the one built last time (an instance moved, nothing
   * that routes changed), the encoded resources of last time are returned as they were.
   */
  forProxy(model: Model, key: ProxyKey, group: string): Resource[] {
    const cachedGroup = this.groups.get(group);
    // Nothing routes differently since this group was built (sharedSnapshot tracks it).
    if (cachedGroup && cachedGroup.epoch === this.routingEpoch && this.epochRegistry === model.registry && cachedGroup.rules === model.rules) {
      return cachedGroup.resources;
    }
    const subsets = this.index(model.registry, model.rules);
    const used: (ResourceObject | string)[] = [];
    const vhostOf = (name: string, standIn?: number): ResourceObject => {
      // A plain host is made anew each time: cheaper than a cache entry for each of thousands of them.
      if (hasPlainHost(model.rules, name, standIn)) {
        used.push(name);
        return plainVirtualHost(name);
      }
      const vhost = this.vhost(name, model.rules, subsets, standIn);
      used.push(vhost);
      return vhost;
    };
    const objects = translateForProxy(model, key, { subsets, vhostOf });
    const epoch = this.epochRegistry === model.registry ? this.routingEpoch : -1;
    if (cachedGroup && cachedGroup.rules === model.rules && cachedGroup.vhosts.length === used.length && cachedGroup.vhosts.every((v, i) => v === used[i])) {
      cachedGroup.epoch = epoch;
      return cachedGroup.resources;
    }
    const resources = objects.map((o: TypedObject) => checkedResource(o.typeUrl, o.object));
    this.groups.set(group, { rules: model.rules, vhosts: used, resources, epoch });
    return resources;
  }
}
