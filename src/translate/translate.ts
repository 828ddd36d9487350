// Model → Envoy resources. Pure and deterministic: equal models give byte-equal
// resources, so versions are content hashes and replicas agree without talking.
import type { Model } from '../model/types.js';
import { SHADOW_SUBSET } from '../model/rules.js';
import { TypeUrl, type ResourceObject, type ResourceTypeUrl } from '../xds/resources.js';
import { allSubsets, buildCluster, buildClusterLoadAssignment, buildJwksCluster, buildLocalAppCluster, buildMirrorCluster } from './clusters.js';
import { buildAuditLog, claimHeaders } from './filters.js';
import {
  accessFilters,
  accessVirtualHosts,
  buildHttpListener,
  edgeFilters,
  edgeStrip,
  inboundRouteConfiguration,
  serviceVirtualHosts,
} from './listeners.js';
import { listenerName } from './names.js';
import type { ProxyKey } from './proxy.js';
import { liveMirrors, type SubsetIndex } from './routes.js';
import { serviceNames } from '../model/service-names.js';

export interface TypedObject {
  typeUrl: ResourceTypeUrl;
  object: ResourceObject;
}

const typed = (typeUrl: ResourceTypeUrl) => (object: ResourceObject): TypedObject => ({ typeUrl, object });

/** Which subsets have instances, for rules whose targets may not be registered yet. */
export function subsetIndex(model: Model): SubsetIndex {
  const live = new Set(
    allSubsets(model.registry, model.rules)
      .filter((s) => s.instances.length > 0)
      .map((s) => `${s.service}\u0000${s.name}`),
  );
  return { hasInstances: (t) => live.has(`${t.service}\u0000${t.subset}`) };
}

/** What every proxy shares: a cluster and endpoints per subset, mirror and JWKS clusters. */
export function translateShared(model: Model): TypedObject[] {
  const out: TypedObject[] = [];
  for (const subset of allSubsets(model.registry, model.rules)) {
    out.push(typed(TypeUrl.Cluster)(buildCluster(subset)), typed(TypeUrl.ClusterLoadAssignment)(buildClusterLoadAssignment(subset)));
  }
  const subsets = subsetIndex(model);
  for (const service of serviceNames(model.registry)) {
    for (const mirror of liveMirrors(service, model.rules, subsets)) out.push(typed(TypeUrl.Cluster)(buildMirrorCluster(mirror)));
  }
  for (const issuer of [...claimHeaders(model.rules).keys()].sort()) {
    const config = model.rules.jwt_issuers[issuer];
    if (config && 'jwks_uri' in config) out.push(typed(TypeUrl.Cluster)(buildJwksCluster(issuer, config)));
  }
  return out;
}

/** Hooks for the incremental translator: a cheaper subset index, cached virtual hosts. */
export interface ForProxyOptions {
  subsets?: SubsetIndex;
  vhostOf?: (service: string, readOnlyStandIn?: number) => ResourceObject;
}

/** What depends on the kind of proxy: its listeners and routes (and a sidecar's local app). */
export function translateForProxy(model: Model, key: ProxyKey, options: ForProxyOptions = {}): TypedObject[] {
  const subsets = options.subsets ?? subsetIndex(model);
  const { registry, rules } = model;
  const vhosts = (standIn?: number): ResourceObject[] =>
    options.vhostOf
      ? serviceNames(registry).map((s) => options.vhostOf!(s, standIn))
      : serviceVirtualHosts(registry, rules, subsets, standIn);
  switch (key.role) {
    case 'edge': {
      const name = listenerName('edge', key.port);
      return [
        typed(TypeUrl.Listener)(buildHttpListener(name, key.address, key.port, edgeFilters(rules), { earlyHeaderMutation: edgeStrip(rules) })),
        typed(TypeUrl.RouteConfiguration)({ name, virtual_hosts: vhosts() }),
      ];
    }
    case 'access': {
      const name = listenerName('access', key.port);
      return [
        typed(TypeUrl.Listener)(buildHttpListener(name, key.address, key.port, accessFilters(rules), { accessLog: buildAuditLog(key.auditLog, rules.settings.caller_header) })),
        typed(TypeUrl.RouteConfiguration)({ name, virtual_hosts: accessVirtualHosts(registry, rules.access_gateway) }),
      ];
    }
    case 'sidecar': {
      const outbound = listenerName('outbound', key.outboundPort);
      const inbound = listenerName('inbound', key.inboundPort);
      // A shadow only reads production: what would write gets a stand-in answer.
      const standIn = key.subset === SHADOW_SUBSET ? rules.settings.stand_in_status : undefined;
      return [
        typed(TypeUrl.Listener)(buildHttpListener(outbound, key.address, key.outboundPort, [])),
        typed(TypeUrl.RouteConfiguration)({ name: outbound, virtual_hosts: vhosts(standIn) }),
        typed(TypeUrl.Listener)(buildHttpListener(inbound, key.address, key.inboundPort, [])),
        typed(TypeUrl.RouteConfiguration)(inboundRouteConfiguration(key.inboundPort, key.appPort)),
        typed(TypeUrl.Cluster)(buildLocalAppCluster(key.appPort)),
      ];
    }
  }
}
