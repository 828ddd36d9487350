// Make-before-break, shared by the SotW and delta loops (xDS spec, "Eventual
// consistency considerations"):
//  - a route or listener that needs a cluster is held back until the proxy has
//    acknowledged that cluster and its endpoints (routes are not warmed by Envoy);
//  - a cluster that leaves the snapshot stays on the proxy until no route or listener
//    the proxy may still hold refers to it.
import { missingReferences, type Snapshot } from './cache.js';
import type { Resource } from './resource.js';
import { ResourceMap } from './resource-map.js';
import { TypeUrl, type ResourceTypeUrl } from './resources.js';

/** What one stream's client has been sent or has acknowledged. */
export interface ClientView {
  /**
   * Resources of a type the client may hold: sent (perhaps not yet applied) and
   * acknowledged. A name sent at a new version but not yet ACKed appears twice, newest
   * first: until the ACK the proxy may still run the old one.
   */
  held(typeUrl: ResourceTypeUrl): Iterable<Resource>;
  /** Resources of a type the client has acknowledged, by name. */
  acked(typeUrl: ResourceTypeUrl): ReadonlyMap<string, Resource>;
}

/** Clusters gone from the snapshot that a route or listener the client may hold still needs. */
export function retainedClusters(snapshot: Snapshot, client: ClientView): Map<string, Resource> {
  const needed = new Set<string>();
  for (const typeUrl of [TypeUrl.Listener, TypeUrl.RouteConfiguration] as const) {
    for (const r of client.held(typeUrl)) {
      // Remembered per resource and cluster map: a route configuration's thousands of references are not walked per stream.
      for (const ref of missingReferences(r, snapshot)) if (ref.typeUrl === TypeUrl.Cluster) needed.add(ref.name);
    }
  }
  const retained = new Map<string, Resource>();
  if (needed.size === 0) return retained;
  // `held` lists the newest sent version of a name first: keep that one.
  for (const r of client.held(TypeUrl.Cluster)) if (needed.has(r.name) && !retained.has(r.name)) retained.set(r.name, r);
  return retained;
}

/**
 * The resources of each type this client should have now: the snapshot's, plus the
 * clusters (and their endpoints) kept for routes it may still hold. Made for one pump
 * of a stream: the kept clusters are worked out once, for CDS and EDS alike, and again
 * once clusters have been sent (what the client may hold has changed).
 */
export function desiredPerPump(snapshot: Snapshot, client: ClientView): { of(typeUrl: ResourceTypeUrl): ResourceMap; clustersSent(): void } {
  let retained: Map<string, Resource> | undefined;
  return {
    of(typeUrl) {
      const base = snapshot.resources(typeUrl);
      if (typeUrl !== TypeUrl.Cluster && typeUrl !== TypeUrl.ClusterLoadAssignment) return base;
      return withRetained(typeUrl, base, (retained ??= retainedClusters(snapshot, client)), client);
    },
    clustersSent() {
      retained = undefined;
    },
  };
}

function withRetained(typeUrl: ResourceTypeUrl, base: ResourceMap, retained: Map<string, Resource>, client: ClientView): ResourceMap {
  if (retained.size === 0) return base;
  if (typeUrl === TypeUrl.Cluster) return base.with(retained.values());
  const endpointNames = new Set([...retained.values()].flatMap((c) => c.references.map((ref) => ref.name)));
  const kept = new Map<string, Resource>();
  for (const r of client.held(TypeUrl.ClusterLoadAssignment)) if (endpointNames.has(r.name) && !base.has(r.name) && !kept.has(r.name)) kept.set(r.name, r);
  return base.with(kept.values());
}

const neededBySnapshot = new WeakMap<Snapshot, WeakMap<Resource, string[]>>();

/**
 * The clusters a route or listener needs: its own references, and for a listener those
 * of the route configurations it takes over RDS (LDS goes after the CDS/EDS it needs).
 * Worked out once per snapshot and resource.
 */
function clustersNeeded(r: Resource, snapshot: Snapshot): string[] {
  let cache = neededBySnapshot.get(snapshot);
  if (!cache) neededBySnapshot.set(snapshot, (cache = new WeakMap()));
  let needed = cache.get(r);
  if (!needed) {
    needed = walkClustersNeeded(r, snapshot);
    cache.set(r, needed);
  }
  return needed;
}

function walkClustersNeeded(r: Resource, snapshot: Snapshot): string[] {
  const routeConfigs = snapshot.resources(TypeUrl.RouteConfiguration);
  return r.references.flatMap((ref) => {
    if (ref.typeUrl === TypeUrl.Cluster) return [ref.name];
    if (ref.typeUrl !== TypeUrl.RouteConfiguration) return [];
    return (routeConfigs.get(ref.name)?.references ?? []).flatMap((inner) => (inner.typeUrl === TypeUrl.Cluster ? [inner.name] : []));
  });
}

/**
 * Clusters that `pending` (routes or listeners about to be sent) need, which the
 * client has not yet acknowledged at their current version, or whose endpoints it has
 * never acknowledged. Empty means the resources may go out. Any acknowledged version
 * of the endpoints will do: a cluster that has had endpoints is warm (an updated one
 * keeps serving while it re-warms), and waiting for the latest endpoints would hold
 * routes back for as long as endpoints churn.
 */
export function unmetClusters(pending: Iterable<Resource>, snapshot: Snapshot, client: ClientView): string[] {
  const unmet = new Set<string>();
  for (const list of unmetLists(pending, snapshot, client)) for (const name of list) unmet.add(name);
  return [...unmet].sort();
}

/** Whether anything in `pending` waits (unmetClusters is not empty), without listing what. */
export function anyUnmetCluster(pending: Iterable<Resource>, snapshot: Snapshot, client: ClientView): boolean {
  for (const list of unmetLists(pending, snapshot, client)) if (list.length > 0) return true;
  return false;
}

function* unmetLists(pending: Iterable<Resource>, snapshot: Snapshot, client: ClientView): Generator<readonly string[]> {
  const clusters = snapshot.resources(TypeUrl.Cluster);
  const ackedClusters = client.acked(TypeUrl.Cluster);
  const ackedEndpoints = client.acked(TypeUrl.ClusterLoadAssignment);
  for (const r of pending) yield unmetFor(r, snapshot, clusters, ackedClusters, ackedEndpoints);
}

/**
 * What one resource waits for. Remembered while the snapshot and the acknowledged maps
 * are the same objects, which SotW streams in the same state share: a thousand proxies
 * asking at once work it out once. (A delta stream's acknowledged maps change in
 * place, so for those it is worked out every time.)
 */
const unmetMemo = new WeakMap<Resource, WeakMap<ResourceMap, WeakMap<ResourceMap, { snapshot: Snapshot; unmet: string[] }>>>();

function unmetFor(
  r: Resource,
  snapshot: Snapshot,
  clusters: ResourceMap,
  ackedClusters: ReadonlyMap<string, Resource>,
  ackedEndpoints: ReadonlyMap<string, Resource>,
): string[] {
  const shareable = ackedClusters instanceof ResourceMap && ackedEndpoints instanceof ResourceMap;
  let byEndpoints: WeakMap<ResourceMap, { snapshot: Snapshot; unmet: string[] }> | undefined;
  if (shareable) {
    let byClusters = unmetMemo.get(r);
    if (!byClusters) unmetMemo.set(r, (byClusters = new WeakMap()));
    byEndpoints = byClusters.get(ackedClusters);
    if (!byEndpoints) byClusters.set(ackedClusters, (byEndpoints = new WeakMap()));
    const memo = byEndpoints.get(ackedEndpoints);
    if (memo?.snapshot === snapshot) return memo.unmet;
  }
  const unmet: string[] = [];
  for (const name of clustersNeeded(r, snapshot)) {
    const cluster = clusters.get(name);
    if (!cluster) continue; // retained or dangling: nothing newer to wait for
    if (ackedClusters.get(name)?.version !== cluster.version || cluster.references.some((dep) => !ackedEndpoints.has(dep.name))) unmet.push(name);
  }
  if (shareable) byEndpoints!.set(ackedEndpoints, { snapshot, unmet });
  return unmet;
}
