// Snapshots and the cache that holds one per proxy group. The server meets the cache
// only through `ConfigWatcher`, so the protocol loop is testable without a cache and
// the cache without gRPC.
import { PUSH_ORDER, TYPE_SHORT_NAMES, type ResourceTypeUrl } from './resources.js';
import type { Resource } from './resource.js';

const EMPTY: ReadonlyMap<string, Resource> = new Map();

/** Type versions, kept with the resource map they describe: maps are shared between snapshots. */
const versionsOfMaps = new WeakMap<ReadonlyMap<string, Resource>, string>();

function indexByType(resources: Iterable<Resource>, into = new Map<ResourceTypeUrl, Map<string, Resource>>()): Map<ResourceTypeUrl, Map<string, Resource>> {
  for (const r of resources) {
    let names = into.get(r.typeUrl);
    if (!names) into.set(r.typeUrl, (names = new Map()));
    if (names.has(r.name)) throw new Error(`duplicate ${TYPE_SHORT_NAMES[r.typeUrl]} resource "${r.name}"`);
    names.set(r.name, r);
  }
  return into;
}

/**
 * An immutable, complete set of resources for one group of proxies. Groups share what
 * they have in common: a snapshot composed from a shared one reuses its maps (and their
 * versions) for every type the group adds nothing to.
 */
export class Snapshot {
  private problems?: string[];

  private constructor(
    private readonly byType: ReadonlyMap<ResourceTypeUrl, ReadonlyMap<string, Resource>>,
    private readonly base?: Snapshot,
    private readonly own: readonly Resource[] = [],
  ) {}

  /** Throws if two resources of one type share a name (Envoy would NACK the response). */
  static create(resources: Iterable<Resource>): Snapshot {
    return new Snapshot(indexByType(resources));
  }

  /** `base` plus a group's own resources; `base`'s maps are reused where `own` adds nothing. */
  static compose(base: Snapshot, own: readonly Resource[]): Snapshot {
    const added = indexByType(own);
    const byType = new Map<ResourceTypeUrl, ReadonlyMap<string, Resource>>(base.byType);
    for (const [typeUrl, names] of added) {
      const shared = base.byType.get(typeUrl);
      if (!shared) {
        byType.set(typeUrl, names);
        continue;
      }
      for (const name of names.keys()) if (shared.has(name)) throw new Error(`duplicate ${TYPE_SHORT_NAMES[typeUrl]} resource "${name}"`);
      byType.set(typeUrl, new Map([...shared, ...names]));
    }
    return new Snapshot(byType, base, own);
  }

  resources(typeUrl: ResourceTypeUrl): ReadonlyMap<string, Resource> {
    return this.byType.get(typeUrl) ?? EMPTY;
  }

  /** The type's version (see versionOf); computed once per resource map. */
  version(typeUrl: ResourceTypeUrl): string {
    const map = this.resources(typeUrl);
    let v = versionsOfMaps.get(map);
    if (v === undefined) {
      v = versionOf(map.values());
      versionsOfMaps.set(map, v);
    }
    return v;
  }

  /**
   * Every reference that does not resolve: a route to a missing cluster, an EDS cluster
   * without endpoints, a listener whose RDS route configuration is missing. A composed
   * snapshot checks only its own resources, plus what its base left unresolved.
   */
  inconsistencies(): string[] {
    if (this.problems) return this.problems;
    const problems: string[] = [];
    const check = (r: Resource): void => {
      for (const ref of r.references) {
        if (!this.resources(ref.typeUrl).has(ref.name)) {
          problems.push(`${TYPE_SHORT_NAMES[r.typeUrl]} "${r.name}" refers to missing ${TYPE_SHORT_NAMES[ref.typeUrl]} "${ref.name}"`);
        }
      }
    };
    if (this.base) {
      const unresolved = new Set(this.base.inconsistencies());
      if (unresolved.size > 0) for (const typeUrl of PUSH_ORDER) for (const r of this.base.resources(typeUrl).values()) check(r);
      for (const r of this.own) check(r);
    } else {
      for (const typeUrl of PUSH_ORDER) for (const r of this.resources(typeUrl).values()) check(r);
    }
    this.problems = problems;
    return problems;
  }
}

const MASK = (1n << 64n) - 1n;

/**
 * A SotW type version for any set of resources; equal sets give equal versions in any
 * process. The sum of the resources' tokens (mod 2^64) with the count: independent of
 * order, so no sorting, and cheap to recompute.
 */
export function versionOf(resources: Iterable<Resource>): string {
  let sum = 0n;
  let count = 0;
  for (const r of resources) {
    sum = (sum + r.token()) & MASK;
    count++;
  }
  return count === 0 ? 'empty' : `${sum.toString(16).padStart(16, '0')}-${count}`;
}

export type SnapshotListener = (snapshot: Snapshot) => void;

/** What the server needs from a cache: the current snapshot of a group, and its changes. */
export interface ConfigWatcher {
  get(group: string): Snapshot | undefined;
  /** Calls `listener` with every snapshot published for `group` from now on. */
  watch(group: string, listener: SnapshotListener): () => void;
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

export class SnapshotCache implements ConfigWatcher {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly listeners = new Map<string, Set<SnapshotListener>>();

  /**
   * Publishes `snapshot` for `group` after checking it. An inconsistent snapshot is
   * refused with every problem listed, and the last good one stays live.
   */
  set(group: string, snapshot: Snapshot): void {
    const problems = snapshot.inconsistencies();
    if (problems.length > 0) throw new InconsistentSnapshotError(group, problems);
    if (this.snapshots.get(group) === snapshot) return;
    this.snapshots.set(group, snapshot);
    for (const listener of this.listeners.get(group) ?? []) listener(snapshot);
  }

  get(group: string): Snapshot | undefined {
    return this.snapshots.get(group);
  }

  groups(): string[] {
    return [...this.snapshots.keys()].sort();
  }

  watch(group: string, listener: SnapshotListener): () => void {
    let set = this.listeners.get(group);
    if (!set) this.listeners.set(group, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(group);
    };
  }

  /** Number of live watches, for leak checks and metrics. */
  watchCount(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }
}

