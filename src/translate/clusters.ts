// Clusters and endpoints: one EDS cluster per service subset, the same for every proxy.
import type { Registry, Subset } from '../model/types.js';
import { subsetsOf } from '../model/subsets.js';
import { clusterName } from './names.js';
import type { ResourceObject } from '../xds/resources.js';

const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

export function buildCluster(subset: Subset): ResourceObject {
  return {
    name: clusterName(subset.service, subset.name),
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE },
    connect_timeout: { seconds: 1 },
  };
}

export function buildClusterLoadAssignment(subset: Subset): ResourceObject {
  return {
    cluster_name: clusterName(subset.service, subset.name),
    endpoints:
      subset.instances.length === 0
        ? []
        : [
            {
              // Envoy needs neither, but gRPC's xDS client refuses a locality-less group
              // and ignores one without weight.
              locality: {},
              load_balancing_weight: { value: 1 },
              lb_endpoints: subset.instances.map((i) => ({
                endpoint: { address: { socket_address: { address: i.address, port_value: i.port } } },
              })),
            },
          ],
  };
}

export function allSubsets(registry: Registry): Subset[] {
  return [...registry.services.values()].flatMap((s) => subsetsOf(s));
}
