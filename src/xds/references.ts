// Which other resources a resource needs before Envoy can use it. Read from the
// plain objects translate produced, so a translator bug that points a route at a
// missing cluster is caught here, before anything is published.
import { TypeUrl, type ResourceObject, type ResourceTypeUrl } from './resources.js';

export interface Reference {
  readonly typeUrl: ResourceTypeUrl;
  readonly name: string;
}

const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

type Obj = Record<string, unknown>;
const objects = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter((x): x is Obj => typeof x === 'object' && x !== null) : []);
const obj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function routeActionClusters(action: Obj | undefined): string[] {
  if (!action) return [];
  const names: string[] = [];
  const direct = str(action.cluster);
  if (direct) names.push(direct);
  for (const wc of objects(obj(action.weighted_clusters)?.clusters)) {
    const n = str(wc.name);
    if (n) names.push(n);
  }
  for (const mirror of objects(action.request_mirror_policies)) {
    const n = str(mirror.cluster);
    if (n) names.push(n);
  }
  return names;
}

function routeConfigurationRefs(object: ResourceObject): Reference[] {
  const names = new Set<string>();
  for (const vh of objects(object.virtual_hosts)) {
    for (const route of objects(vh.routes)) for (const n of routeActionClusters(obj(route.route))) names.add(n);
    for (const mirror of objects(vh.request_mirror_policies)) {
      const n = str(mirror.cluster);
      if (n) names.add(n);
    }
  }
  return [...names].map((name) => ({ typeUrl: TypeUrl.Cluster, name }));
}

/** An HTTP connection manager's needs: its RDS route configuration, or an inline one's clusters. */
function connectionManagerRefs(config: Obj): Reference[] {
  const refs: Reference[] = [];
  const rds = obj(config.rds);
  const name = str(rds?.route_config_name);
  if (name && obj(obj(rds?.config_source)?.ads)) refs.push({ typeUrl: TypeUrl.RouteConfiguration, name });
  const inline = obj(config.route_config);
  if (inline) refs.push(...routeConfigurationRefs(inline));
  return refs;
}

function listenerRefs(object: ResourceObject): Reference[] {
  const refs: Reference[] = [];
  const chains = [...objects(object.filter_chains), ...(obj(object.default_filter_chain) ? [obj(object.default_filter_chain)!] : [])];
  for (const chain of chains) {
    for (const filter of objects(chain.filters)) {
      const config = obj(filter.typed_config);
      if (config?.['@type'] === HCM_TYPE) refs.push(...connectionManagerRefs(config));
    }
  }
  // gRPC clients (and Envoy Mobile) take an API listener: an HCM with no socket.
  const api = obj(obj(object.api_listener)?.api_listener);
  if (api?.['@type'] === HCM_TYPE) refs.push(...connectionManagerRefs(api));
  return refs;
}

function clusterRefs(object: ResourceObject): Reference[] {
  if (object.type !== 'EDS') return [];
  const eds = obj(object.eds_cluster_config);
  const name = str(eds?.service_name) ?? str(object.name);
  return name ? [{ typeUrl: TypeUrl.ClusterLoadAssignment, name }] : [];
}

export function referencesOf(typeUrl: ResourceTypeUrl, object: ResourceObject): Reference[] {
  switch (typeUrl) {
    case TypeUrl.Listener:
      return listenerRefs(object);
    case TypeUrl.RouteConfiguration:
      return routeConfigurationRefs(object);
    case TypeUrl.Cluster:
      return clusterRefs(object);
    default:
      return [];
  }
}
