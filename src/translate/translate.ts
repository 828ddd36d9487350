// Model → Envoy resources. Pure and deterministic: equal models give byte-equal
// resources, so versions are content hashes and replicas agree without talking.
import type { Model } from '../model/types.js';
import { TypeUrl, type ResourceObject, type ResourceTypeUrl } from '../xds/resources.js';
import { allSubsets, buildCluster, buildClusterLoadAssignment } from './clusters.js';
import { buildHttpListener, buildRouteConfiguration } from './listeners.js';
import type { ProxyKey } from './proxy.js';

export interface TypedObject {
  typeUrl: ResourceTypeUrl;
  object: ResourceObject;
}

/** Clusters and endpoints: the same for every proxy, so built once per model. */
export function translateShared(model: Model): TypedObject[] {
  return allSubsets(model.registry).flatMap((subset) => [
    { typeUrl: TypeUrl.Cluster, object: buildCluster(subset) },
    { typeUrl: TypeUrl.ClusterLoadAssignment, object: buildClusterLoadAssignment(subset) },
  ]);
}

/** What depends on the kind of proxy: its listeners and routes. */
export function translateForProxy(model: Model, key: ProxyKey): TypedObject[] {
  return [
    { typeUrl: TypeUrl.Listener, object: buildHttpListener(key) },
    { typeUrl: TypeUrl.RouteConfiguration, object: buildRouteConfiguration(key, model.registry) },
  ];
}
