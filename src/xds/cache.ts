// Snapshots and the cache that holds one per proxy group. The server meets the cache
// only through `ConfigWatcher`, so the protocol loop is testable without a cache and
// the cache without gRPC.
import { PUSH_ORDER, TYPE_SHORT_NAMES, type ResourceTypeUrl } from './resources.js';
import type { Resource } from './resource.js';
import type { Reference } from './references.js';
import { ResourceMap } from './resource-map.js';

/** A name a snapshot no longer has. */
export interface Removal {
  readonly typeUrl: ResourceTypeUrl;
  readonly name: string;
}

/**
 * Adds resources one by one into per-type maps, and looks up each one's references
 * when the next one comes (a subset's cluster, then the endpoints it refers to): maps
 * only grow while they are built, so a reference found then is found in the snapshot.
 * Only the resources with a reference not found by then are kept for the snapshot's
 * check: it no longer walks tens of thousands of resources that have left the CPU's
 * caches to look up what was there while they were fresh.
 */
class TypeMapsBuilder {
  private readonly byType = new Map<ResourceTypeUrl, InstanceType<typeof ResourceMap.Builder>>();
  /** The last type added to, and its builder: resources mostly come in runs of one type. */
  private lastType?: ResourceTypeUrl;
  private lastBuilder?: InstanceType<typeof ResourceMap.Builder>;
  /** The last resource added, if it has references: they are looked up when the next one comes, or at the end. */
  private waiting?: Resource;
  private readonly unresolved: Resource[] = [];

  add(r: Resource): void {
    let builder = r.typeUrl === this.lastType ? this.lastBuilder : this.byType.get(r.typeUrl);
    if (!builder) this.byType.set(r.typeUrl, (builder = new ResourceMap.Builder((name) => `${TYPE_SHORT_NAMES[r.typeUrl]} resource "${name}"`)));
    this.lastType = r.typeUrl;
    this.lastBuilder = builder;
    builder.add(r);
    this.lookUpWaiting();
    if (r.references.length > 0) this.waiting = r;
  }

  private lookUpWaiting(): void {
    const r = this.waiting;
    if (!r) return;
    this.waiting = undefined;
    for (const ref of r.references) {
      const builder = ref.typeUrl === this.lastType ? this.lastBuilder : this.byType.get(ref.typeUrl);
      if (!builder?.has(ref.name)) {
        this.unresolved.push(r);
        return;
      }
    }
  }

  /** The resources with a reference not found while they were added, in the order they were added. */
  unresolvedWhenAdded(): Resource[] {
    this.lookUpWaiting();
    return this.unresolved;
  }

  build(): Map<ResourceTypeUrl, ResourceMap> {
    const out = new Map<ResourceTypeUrl, ResourceMap>();
    for (const [typeUrl, builder] of this.byType) out.set(typeUrl, builder.build());
    return out;
  }
}

function mapsByType(resources: Iterable<Resource>): Map<ResourceTypeUrl, ResourceMap> {
  const builder = new TypeMapsBuilder();
  for (const r of resources) builder.add(r);
  return builder.build();
}

interface Unresolved {
  resource: Resource;
  ref: Reference;
}

const REMEMBER_FROM = 64;
const NONE_MISSING: readonly Reference[] = Object.freeze([]);

/** Per resource, the maps its references were last resolved against and what was missing. */
const resolutions = new WeakMap<Resource, { maps: Map<ResourceTypeUrl, ResourceMap>; missing: readonly Reference[] }>();

/**
 * The references of `r` that `snapshot` does not hold. Remembered per resource: while
 * the maps it refers into are the same, or have only gained names since, only what
 * was missing is looked up again (a route configuration of 20,000 references is not
 * re-checked because one endpoint moved).
 */
export function missingReferences(r: Resource, snapshot: Snapshot): readonly Reference[] {
  if (r.references.length === 0) return NONE_MISSING;
  // A few references are cheaper to look up than to remember; and what is remembered
  // keeps the maps it was checked against alive, so only the large (route
  // configurations, checked again on every publish) are.
  if (r.references.length < REMEMBER_FROM) {
    // A whole snapshot checks every one of its 41,000 resources: no list is made for those that resolve.
    let missing: Reference[] | undefined;
    for (const ref of r.references) if (!snapshot.resources(ref.typeUrl).has(ref.name)) (missing ??= []).push(ref);
    return missing ?? NONE_MISSING;
  }
  const last = resolutions.get(r);
  let recheck: readonly Reference[] = r.references;
  if (last) {
    let same = true;
    let onlyGained = true;
    for (const [typeUrl, map] of last.maps) {
      const now = snapshot.resources(typeUrl);
      if (now === map) continue;
      same = false;
      if (now.diffFrom(map).removed.length > 0) onlyGained = false;
    }
    if (same) return last.missing;
    if (onlyGained) recheck = last.missing;
  }
  const maps = new Map<ResourceTypeUrl, ResourceMap>();
  for (const ref of r.references) if (!maps.has(ref.typeUrl)) maps.set(ref.typeUrl, snapshot.resources(ref.typeUrl));
  const missing = recheck.filter((ref) => !maps.get(ref.typeUrl)!.has(ref.name));
  resolutions.set(r, { maps, missing });
  return missing;
}

type Origin =
  // The resources whose references did not all resolve when they were added: the only ones a check must read.
  | { kind: 'whole'; unresolvedWhenAdded: readonly Resource[] }
  // What the snapshot it came from left unresolved (not the snapshot: no chain of them is kept alive).
  | { kind: 'update'; unresolvedBefore: readonly Unresolved[]; upserts: readonly Resource[]; removedAny: boolean }
  | { kind: 'compose'; base: Snapshot; own: readonly Resource[] };

/** The maps of a group's own resources, kept per list so an unchanged list gives the same maps. */
const ownMaps = new WeakMap<readonly Resource[], Map<ResourceTypeUrl, ResourceMap>>();

/**
 * An immutable, complete set of resources for one group of proxies. Snapshots are
 * derived, not copied: an update or a group's composition shares every map it does
 * not change, and derives the ones it does (see resource-map.ts), so a change costs
 * what changed. Groups share what they have in common through `compose`.
 */
export class Snapshot {
  private unresolvedMemo?: Unresolved[];

  private constructor(
    private readonly byType: ReadonlyMap<ResourceTypeUrl, ResourceMap>,
    private readonly origin: Origin,
  ) {}

  /** Throws if two resources of one type share a name (Envoy would NACK the response). */
  static create(resources: Iterable<Resource>): Snapshot {
    const builder = Snapshot.builder();
    for (const r of resources) builder.add(r);
    return builder.build();
  }

  /**
   * Snapshot.create one resource at a time: a caller that makes tens of thousands of
   * resources adds each while it is fresh, instead of listing them and then walking
   * the list again (see TypeMapsBuilder). `add` throws on a duplicate name.
   */
  static builder(): { add: (r: Resource) => void; build: () => Snapshot } {
    const maps = new TypeMapsBuilder();
    return {
      add: (r) => maps.add(r),
      build: () => new Snapshot(maps.build(), { kind: 'whole', unresolvedWhenAdded: maps.unresolvedWhenAdded() }),
    };
  }

  /** `base` plus a group's own resources, which must not repeat a name `base` has. */
  static compose(base: Snapshot, own: readonly Resource[]): Snapshot {
    let added = ownMaps.get(own);
    if (!added) ownMaps.set(own, (added = mapsByType(own)));
    const byType = new Map<ResourceTypeUrl, ResourceMap>(base.byType);
    for (const [typeUrl, names] of added) {
      const shared = base.byType.get(typeUrl);
      if (!shared) {
        byType.set(typeUrl, names);
        continue;
      }
      for (const name of names.keys()) if (shared.has(name)) throw new Error(`duplicate ${TYPE_SHORT_NAMES[typeUrl]} resource "${name}"`);
      byType.set(typeUrl, shared.with(names.values()));
    }
    return new Snapshot(byType, { kind: 'compose', base, own });
  }

  /** This snapshot with `upserts` added or replaced and `removed` gone; unchanged maps are shared. */
  update(upserts: readonly Resource[], removed: readonly Removal[] = []): Snapshot {
    if (upserts.length === 0 && removed.length === 0) return this;
    const byType = new Map(this.byType);
    const touched = new Set<ResourceTypeUrl>([...upserts.map((r) => r.typeUrl), ...removed.map((r) => r.typeUrl)]);
    for (const typeUrl of touched) {
      const map = this.resources(typeUrl).with(
        upserts.filter((r) => r.typeUrl === typeUrl),
        removed.filter((r) => r.typeUrl === typeUrl).map((r) => r.name),
      );
      if (map.size === 0) byType.delete(typeUrl);
      else byType.set(typeUrl, map);
    }
    const removedAny = removed.length > 0;
    return new Snapshot(byType, { kind: 'update', unresolvedBefore: removedAny ? [] : this.unresolved(), upserts, removedAny });
  }

  resources(typeUrl: ResourceTypeUrl): ResourceMap {
    return this.byType.get(typeUrl) ?? ResourceMap.EMPTY;
  }

  /** The type's SotW version (see ResourceMap.version). */
  version(typeUrl: ResourceTypeUrl): string {
    return this.resources(typeUrl).version;
  }

  /** Whether `r` (this very object) is in the snapshot. */
  private holds(r: Resource): boolean {
    return this.resources(r.typeUrl).get(r.name) === r;
  }

  private unresolved(): Unresolved[] {
    if (this.unresolvedMemo) return this.unresolvedMemo;
    const out: Unresolved[] = [];
    const check = (r: Resource): void => {
      for (const ref of missingReferences(r, this)) out.push({ resource: r, ref });
    };
    const stillMissing = (u: Unresolved): boolean => this.holds(u.resource) && !this.resources(u.ref.typeUrl).has(u.ref.name);
    const origin = this.origin;
    if (origin.kind === 'compose') {
      // A base's resources resolve within the base or not at all: only its problems are looked at again.
      out.push(...origin.base.unresolved().filter(stillMissing));
      for (const r of origin.own) check(r);
    } else if (origin.kind === 'update' && !origin.removedAny) {
      // Nothing went away: what resolved still does; look again at what did not, and at what is new.
      out.push(...origin.unresolvedBefore.filter(stillMissing));
      for (const r of origin.upserts) if (this.holds(r)) check(r);
    } else if (origin.kind === 'whole') {
      for (const r of origin.unresolvedWhenAdded) check(r);
      // Reported type by type, in push order, as the maps list them.
      if (out.length > 1) out.sort((a, b) => PUSH_ORDER.indexOf(a.resource.typeUrl) - PUSH_ORDER.indexOf(b.resource.typeUrl));
    } else {
      for (const typeUrl of PUSH_ORDER) for (const r of this.resources(typeUrl).values()) check(r);
    }
    this.unresolvedMemo = out;
    return out;
  }

  /**
   * Every reference that does not resolve: a route to a missing cluster, an EDS cluster
   * without endpoints, a listener whose RDS route configuration is missing.
   */
  inconsistencies(): string[] {
    return this.unresolved().map(
      ({ resource: r, ref }) => `${TYPE_SHORT_NAMES[r.typeUrl]} "${r.name}" refers to missing ${TYPE_SHORT_NAMES[ref.typeUrl]} "${ref.name}"`,
    );
  }
}

/**
 * Told of every snapshot published for the group it watches. An object rather than a
 * callback: a stream is its own watcher, where a callback and the function that undoes
 * the watch were two closures kept by every idle stream.
 */
export interface SnapshotWatcher {
  onSnapshot(snapshot: Snapshot): void;
}

/** What the server needs from a cache: the current snapshot of a group, and its changes. */
export interface ConfigWatcher {
  get(group: string): Snapshot | undefined;
  /** Tells `watcher` of every snapshot published for `group` from now on, until `unwatch`. */
  watch(group: string, watcher: SnapshotWatcher): void;
  unwatch(group: string, watcher: SnapshotWatcher): void;
}

export class InconsistentSnapshotError extends Error {
  constructor(
    readonly group: string,
    readonly problems: string[],
  ) {
    super(`snapshot for group "${group}" is inconsistent: ${problems.join('; ')}`);
    this.name = 'InconsistentSnapshotError';
  }
}

/** Watchers told of a new snapshot in one turn of the event loop; the rest follow in later turns. */
const FAN_OUT_SLICE = 500;

export class SnapshotCache implements ConfigWatcher {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly watchers = new Map<string, Set<SnapshotWatcher>>();
  /** Per group, the fan-out still under way: cancelled when a newer snapshot starts its own. */
  private readonly fanOuts = new Map<string, NodeJS.Immediate>();

  /**
   * Publishes `snapshot` for `group` after checking it. An inconsistent snapshot is
   * refused with every problem listed, and the last good one stays live. Watchers are
   * told in slices, so thousands of streams building their responses do not keep the
   * event loop from reading their acknowledgements (or anything else) for long.
   */
  set(group: string, snapshot: Snapshot): void {
    const problems = snapshot.inconsistencies();
    if (problems.length > 0) throw new InconsistentSnapshotError(group, problems);
    if (this.snapshots.get(group) === snapshot) return;
    this.snapshots.set(group, snapshot);
    const pending = this.fanOuts.get(group);
    if (pending) clearImmediate(pending);
    this.fanOuts.delete(group);
    const watchers = [...(this.watchers.get(group) ?? [])];
    const notify = (from: number): void => {
      const end = Math.min(watchers.length, from + FAN_OUT_SLICE);
      const live = this.watchers.get(group);
      for (let i = from; i < end; i++) if (live?.has(watchers[i]!)) watchers[i]!.onSnapshot(snapshot);
      if (end < watchers.length) this.fanOuts.set(group, setImmediate(() => notify(end)));
      else this.fanOuts.delete(group);
    };
    notify(0);
  }

  get(group: string): Snapshot | undefined {
    return this.snapshots.get(group);
  }

  groups(): string[] {
    return [...this.snapshots.keys()].sort();
  }

  watch(group: string, watcher: SnapshotWatcher): void {
    let set = this.watchers.get(group);
    if (!set) this.watchers.set(group, (set = new Set()));
    set.add(watcher);
  }

  unwatch(group: string, watcher: SnapshotWatcher): void {
    const set = this.watchers.get(group);
    if (!set?.delete(watcher)) return;
    if (set.size === 0) this.watchers.delete(group);
  }

  /** Number of live watches, for leak checks and metrics. */
  watchCount(): number {
    let n = 0;
    for (const s of this.watchers.values()) n += s.size;
    return n;
  }
}
