// The translate → encode → snapshot → cache path, step for step as src/app.ts runs it
// on every change: its `rebuild` and `publish` are closures, so they are restated here
// (keep the two in step). Timed in phases so a figure can say where the time went.
import type { Model } from '../../src/model/types.js';
import { IncrementalTranslator } from '../../src/translate/incremental.js';
import { refuseNameClashes } from '../../src/translate/name-clashes.js';
import { groupKey, proxyKeyOf, type ProxyKey } from '../../src/translate/proxy.js';
import { Snapshot, SnapshotCache } from '../../src/xds/cache.js';
import { PUSH_ORDER, type ResourceTypeUrl } from '../../src/xds/resources.js';
import { now } from './stats.js';

/** The proxy every simulated proxy is: an edge gateway, as envoy/gateway.yaml describes it. */
export const EDGE_METADATA = { role: 'edge', listener_address: '127.0.0.1', listener_port: 10000 };
export const EDGE_KEY: ProxyKey = proxyKeyOf('gateway', EDGE_METADATA);
export const EDGE_GROUP = groupKey(EDGE_KEY);
/** The route configuration an edge proxy asks for over RDS (listener and routes share the name). */
export const EDGE_ROUTE_CONFIG = 'edge_10000';

export interface Phases {
  /** refuseNameClashes and translator.sharedSnapshot: clusters and endpoints translated, checked and encoded where changed, and the shared snapshot derived. */
  shared: number;
  /** Per group: translator.forProxy, Snapshot.compose, cache.set (consistency check, then every watching stream's pump). */
  groups: number;
}

export interface Rebuilt {
  sharedCount: number;
  snapshots: Map<string, Snapshot>;
  phases: Phases;
}

/** app.ts's translator, groups and cache; `rebuild` is its `rebuild`, `publish` its `publish`. */
export class AppPipeline {
  readonly translator = new IncrementalTranslator();
  readonly groups = new Map<string, ProxyKey>();
  private shared?: Snapshot;

  constructor(readonly cache = new SnapshotCache()) {}

  addGroup(key: ProxyKey): string {
    const group = groupKey(key);
    this.groups.set(group, key);
    return group;
  }

  /** Unlike app.ts, a failure throws: a benchmark must not time a refused build. */
  rebuild(given: Model): Rebuilt {
    const t0 = now();
    // app.ts's model(): the registry without subsets whose cluster names are taken.
    const model: Model = { registry: refuseNameClashes(given.registry, given.rules).registry, rules: given.rules };
    const shared = this.translator.sharedSnapshot(model);
    this.shared = shared;
    const t2 = now();
    const snapshots = new Map<string, Snapshot>();
    for (const [group, key] of this.groups) {
      const snapshot = Snapshot.compose(shared, this.translator.forProxy(model, key, group));
      this.cache.set(group, snapshot);
      snapshots.set(group, snapshot);
    }
    const t3 = now();
    let sharedCount = 0;
    for (const typeUrl of PUSH_ORDER) sharedCount += shared.resources(typeUrl).size;
    return { sharedCount, snapshots, phases: { shared: t2 - t0, groups: t3 - t2 } };
  }
}

/** Count and bytes (of the encoded Anys) per type: the size of what a full sync carries. */
export function snapshotSizes(snapshot: Snapshot, typeUrls: readonly ResourceTypeUrl[]): string {
  return typeUrls
    .map((typeUrl) => {
      let bytes = 0;
      const resources = snapshot.resources(typeUrl);
      for (const r of resources.values()) bytes += r.any.length;
      return `${typeUrl.slice(typeUrl.lastIndexOf('.') + 1)} ${resources.size.toLocaleString('en-US')} (${(bytes / 1e6).toFixed(2)} MB)`;
    })
    .join(', ');
}

export const formatPhases = (list: readonly Phases[], median: (xs: number[]) => number): string =>
  (['shared', 'groups'] as const).map((k) => `${k} ${median(list.map((p) => p[k])).toFixed(1)} ms`).join(', ');
