// xDS resources shaped for a proxyless gRPC client (gRFC A27, as @grpc/grpc-js-xds
// validates them), built by name: `apiListener('echo', 'echo')`,
// `grpcRoutes('echo', 'echo', [headerRoute('x-beta', 'true', 'echo.beta'), defaultRoute('echo')])`,
// `grpcService('echo', [port])`. Clusters are the same EDS-over-ADS clusters Envoy gets.
import { Resource } from '../../src/xds/resource.js';
import { TypeUrl } from '../../src/xds/resources.js';
import { cluster } from './xds-fixtures.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

/**
 * The Listener a gRPC channel on `xds:///<name>` asks for: no address and no filter
 * chains, only an `api_listener` holding the HttpConnectionManager, whose routes come
 * over ADS as `routeConfigName`. gRPC requires the router to be the last HTTP filter.
 */
export function apiListener(name: string, routeConfigName: string): Resource {
  return Resource.fromObject(TypeUrl.Listener, {
    name,
    api_listener: {
      api_listener: {
        '@type': HCM,
        stat_prefix: name,
        rds: { route_config_name: routeConfigName, config_source: ADS_SOURCE },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
      },
    },
  });
}

export interface GrpcRoute {
  name: string;
  /** Request metadata the call must carry, as name → exact value. */
  headers: Record<string, string>;
  cluster: string;
}

/** Calls carrying `header: value` go to `clusterName`. */
export function headerRoute(header: string, value: string, clusterName: string): GrpcRoute {
  return { name: `${header}=${value}`, headers: { [header]: value }, cluster: clusterName };
}

/** Every call goes to `clusterName`; put it last, routes match in order. */
export function defaultRoute(clusterName: string): GrpcRoute {
  return { name: 'default', headers: {}, cluster: clusterName };
}

/** A RouteConfiguration with one virtual host for `domain` (the channel's target name). */
export function grpcRoutes(name: string, domain: string, routes: readonly GrpcRoute[]): Resource {
  return Resource.fromObject(TypeUrl.RouteConfiguration, {
    name,
    virtual_hosts: [
      {
        name: domain,
        domains: [domain],
        routes: routes.map((r) => ({
          name: r.name,
          match: {
            prefix: '/',
            headers: Object.entries(r.headers).map(([header, exact]) => ({ name: header, string_match: { exact } })),
          },
          route: { cluster: r.cluster },
        })),
      },
    ],
  });
}

/**
 * The ClusterLoadAssignment of `clusterName`: 127.0.0.1 at each port, in one locality.
 * gRPC rejects a locality without a `locality` field and silently drops one without a
 * `load_balancing_weight` (A27), where Envoy accepts both; so both are always set here.
 */
export function grpcEndpoints(clusterName: string, ports: readonly number[]): Resource {
  return Resource.fromObject(TypeUrl.ClusterLoadAssignment, {
    cluster_name: clusterName,
    endpoints: [
      {
        locality: { zone: 'test' },
        load_balancing_weight: { value: 1 },
        lb_endpoints: ports.map((port) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } })),
      },
    ],
  });
}

/** An EDS cluster and its endpoints, as a gRPC client takes them. */
export function grpcService(name: string, ports: readonly number[]): Resource[] {
  return [cluster(name), grpcEndpoints(name, ports)];
}

/**
 * A grpc-js-xds bootstrap (the JSON of `GRPC_XDS_BOOTSTRAP_CONFIG`) naming one
 * plaintext xDS server at `serverUri` (`127.0.0.1:port`).
 */
export function grpcBootstrap(serverUri: string, node: { id: string; cluster: string }): string {
  return JSON.stringify({
    xds_servers: [{ server_uri: serverUri, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: node.id, cluster: node.cluster, locality: {} },
  });
}
