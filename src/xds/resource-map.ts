// An immutable map of resources by name that is cheap to derive from: one change to a
// map of 20,000 endpoints makes a new map in time proportional to the changes since
// its root (bounded, see below), not to the map, and knows how it differs from the
// map it came from. Snapshots, streams' selections and what a stream was sent
// are all ResourceMaps, so a change costs what changed, not the size of the model.
//
// A map is a flat `root` (never mutated once built) plus `changes` over it (a name's
// new resource, or `null` for a name removed). Deriving copies only `changes`; when
// they grow past a share of the root the map is flattened into a new root (amortised).
// The type version (the sum of the resources' tokens, and their count) is carried
// along, so it too costs what changed.
import { hex8, type Resource } from './resource.js';

const TWO_32 = 2 ** 32;

/**
 * The sum of tokens mod 2^64, kept as two plain numbers (high and low 32-bit halves,
 * each a sum not yet reduced): exact while fewer than 2^21 tokens are added or taken
 * away between reductions, which `reduced` does on every derived map.
 */
interface TokenSum {
  readonly high: number;
  readonly low: number;
}

const mod32 = (n: number): number => ((n % TWO_32) + TWO_32) % TWO_32;

function reduced(high: number, low: number): TokenSum {
  const carry = Math.floor(low / TWO_32);
  return { high: mod32(high + carry), low: mod32(low) };
}

/** Changes kept beside a root before it is flattened: at least this many… */
const MIN_CHANGES = 256;
/** …or this share of the root's size (1/8). */
const CHANGES_SHIFT = 3;

export interface ResourceDiff {
  /** Resources new or different (by version) in the newer map. */
  readonly upserts: readonly Resource[];
  /** Names in the older map that the newer one does not have. */
  readonly removed: readonly string[];
}

const NO_DIFF: ResourceDiff = { upserts: [], removed: [] };

export class ResourceMap implements ReadonlyMap<string, Resource> {
  /** Diffs from older maps, computed once and shared by every stream that asks. */
  private readonly diffs = new WeakMap<ResourceMap, ResourceDiff>();

  private constructor(
    private readonly root: ReadonlyMap<string, Resource>,
    private readonly changes: ReadonlyMap<string, Resource | null> | undefined,
    readonly size: number,
    private readonly sum: TokenSum,
  ) {}

  static readonly EMPTY = new ResourceMap(new Map(), undefined, 0, { high: 0, low: 0 });

  /** Throws on a duplicate name: Envoy would reject the response. */
  static of(resources: Iterable<Resource>): ResourceMap {
    const builder = new ResourceMap.Builder();
    for (const r of resources) builder.add(r);
    return builder.build();
  }

  /** Adds resources one by one, then makes the map. */
  static Builder = class {
    private readonly root = new Map<string, Resource>();
    private high = 0;
    private low = 0;

    constructor(private readonly describe = (name: string) => `resource "${name}"`) {}

    add(r: Resource): void {
      const size = this.root.size;
      this.root.set(r.name, r);
      if (this.root.size === size) throw new Error(`duplicate ${this.describe(r.name)}`); // the name was there
      this.high += r.tokenHigh;
      this.low += r.tokenLow;
    }

    has(name: string): boolean {
      return this.root.has(name);
    }

    build(): ResourceMap {
      return this.root.size === 0 ? ResourceMap.EMPTY : new ResourceMap(this.root, undefined, this.root.size, reduced(this.high, this.low));
    }
  };

  /**
   * The SotW version of the map's resources: equal sets give equal versions in any
   * process, independent of order (the sum of 64-bit tokens, with the count).
   */
  get version(): string {
    // Read by every stream on every pump: made once.
    this.versionText ??= this.size === 0 ? 'empty' : `${hex8(this.sum.high)}${hex8(this.sum.low)}-${this.size}`;
    return this.versionText;
  }

  private versionText?: string;

  /**
   * The resources of this map that `names` name. Derived from `before` (what the same
   * names selected of an earlier map) when given, so it costs what changed between the
   * two maps rather than the names.
   */
  select(names: ReadonlySet<string>, before?: { readonly of: ResourceMap; readonly selection: ResourceMap }): ResourceMap {
    if (before) {
      const change = this.diffFrom(before.of);
      return before.selection.with(
        change.upserts.filter((r) => names.has(r.name)),
        change.removed.filter((n) => names.has(n)),
      );
    }
    const picked: Resource[] = [];
    for (const name of names) {
      const r = this.get(name);
      if (r) picked.push(r);
    }
    return ResourceMap.of(picked);
  }

  /** Whether this map and `other` derive from one root: then `diffFrom` between them costs only their changes. */
  sharesRootWith(other: ResourceMap): boolean {
    return this.root === other.root;
  }

  get(name: string): Resource | undefined {
    if (this.changes) {
      const changed = this.changes.get(name);
      if (changed !== undefined) return changed ?? undefined;
    }
    return this.root.get(name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /**
   * This map with `removed` gone, then `upserts` set. A resource equal (by version) to
   * the one it replaces keeps the old one, so identity-keyed caches stay valid; no
   * effective change returns this same map.
   */
  with(upserts: Iterable<Resource>, removed: Iterable<string> = []): ResourceMap {
    let changes: Map<string, Resource | null> | undefined;
    let size = this.size;
    let { high, low } = this.sum;
    const change = (name: string, next: Resource | null): void => {
      const before = changes ? (changes.has(name) ? (changes.get(name) ?? undefined) : this.root.get(name)) : this.get(name);
      if ((before ?? null) === next || (before && next && before.sameContent(next))) return;
      changes ??= new Map(this.changes);
      if (before) {
        size -= 1;
        high -= before.tokenHigh;
        low -= before.tokenLow;
      }
      if (next) {
        size += 1;
        high += next.tokenHigh;
        low += next.tokenLow;
      }
      if ((this.root.get(name) ?? null) === next) changes.delete(name);
      else changes.set(name, next);
    };
    for (const name of removed) change(name, null);
    for (const r of upserts) change(r.name, r);
    if (!changes) return this;
    const sum = reduced(high, low);
    if (changes.size > Math.max(MIN_CHANGES, this.root.size >> CHANGES_SHIFT)) {
      const flat = new Map<string, Resource>();
      for (const [name, r] of this.root) {
        const changed = changes.get(name);
        if (changed === undefined) flat.set(name, r);
        else if (changed) flat.set(name, changed);
      }
      for (const [name, r] of changes) if (r && !this.root.has(name)) flat.set(name, r);
      return new ResourceMap(flat, undefined, size, sum);
    }
    return new ResourceMap(this.root, changes.size > 0 ? changes : undefined, size, sum);
  }

  /**
   * What changed from `older` to this map. Maps derived from one root differ only in
   * their changes (cheap); otherwise every name is compared once. Cached per pair.
   */
  diffFrom(older: ResourceMap): ResourceDiff {
    if (older === this) return NO_DIFF;
    let diff = this.diffs.get(older);
    if (diff) return diff;
    const upserts: Resource[] = [];
    const removed: string[] = [];
    const compare = (name: string): void => {
      const now = this.get(name);
      const before = older.get(name);
      if (now === before) return;
      if (!now) removed.push(name);
      else if (!before || !before.sameContent(now)) upserts.push(now);
    };
    if (older.root === this.root) {
      const names = new Set([...(this.changes?.keys() ?? []), ...(older.changes?.keys() ?? [])]);
      for (const name of names) compare(name);
    } else {
      for (const name of this.keys()) compare(name);
      for (const name of older.keys()) if (!this.has(name)) removed.push(name);
    }
    diff = { upserts, removed };
    this.diffs.set(older, diff);
    return diff;
  }

  entries(): MapIterator<[string, Resource]> {
    return this.changes ? this.overlaid() : this.root.entries();
  }

  keys(): MapIterator<string> {
    return this.changes ? this.overlaidKeys() : this.root.keys();
  }

  values(): MapIterator<Resource> {
    return this.changes ? this.overlaidValues() : this.root.values();
  }

  private *overlaid(): MapIterator<[string, Resource]> {
    const changes = this.changes!;
    for (const entry of this.root) if (!changes.has(entry[0])) yield entry;
    for (const [name, r] of changes) if (r) yield [name, r];
  }

  private *overlaidKeys(): MapIterator<string> {
    for (const [name] of this.overlaid()) yield name;
  }

  private *overlaidValues(): MapIterator<Resource> {
    for (const [, r] of this.overlaid()) yield r;
  }

  [Symbol.iterator](): MapIterator<[string, Resource]> {
    return this.entries();
  }

  forEach(callback: (value: Resource, key: string, map: ReadonlyMap<string, Resource>) => void): void {
    for (const [name, r] of this.entries()) callback(r, name, this);
  }
}
