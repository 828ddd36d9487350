// Names Envoy sees: in stats, config dumps and access logs. One scheme, derived from
// the model, documented in the README ("Names Envoy sees").
import { STABLE_SUBSET } from '../model/types.js';

/** `api` for the stable subset, `api.beta` for a tagged one. */
export function clusterName(service: string, subset: string): string {
  return subset === STABLE_SUBSET ? service : `${service}.${subset}`;
}

/** The copy of a subset's cluster that mirror `mirror` sends to (it marks its requests). */
export const mirrorClusterName = (service: string, subset: string, mirror: string): string =>
  `${clusterName(service, subset)}.mirror-${mirror}`;

/** The local application behind a sidecar's inbound listener. */
export const localAppClusterName = (port: number): string => `local_app_${port}`;

/** The cluster a JWT issuer's remote JWKS is fetched through. */
export const jwksClusterName = (issuer: string): string => `jwks.${issuer}`;

/** A listener and its route configuration share a name: `edge_10000`, `outbound_15001`. */
export const listenerName = (kind: 'edge' | 'access' | 'outbound' | 'inbound', port: number): string => `${kind}_${port}`;

/**
 * The header a JWT claim is copied into at the edge: `x-shadowplane-claim-main.beta`.
 * A dot parts issuer and claim (issuer names have none), so two pairs cannot meet in
 * one header; characters a header name cannot hold become `_`.
 */
export const claimHeaderName = (issuer: string, claim: string): string =>
  `x-shadowplane-claim-${issuer}.${claim.replace(/[^A-Za-z0-9._-]/g, '_')}`.toLowerCase();

/** A route's name in config dumps and stats: `api/beta-users`. */
export const routeName = (service: string, rule: string): string => `${service}/${rule}`;

// The second part of the route names Shadowplane makes beside the rules' own (a
// service's last route is `<service>/stable`).
export const devRouteRule = (key: string): string => `dev-${key}`;
export const tenantRouteRule = (tenant: string): string => `tenant-${tenant}`;
export const STAND_IN_ROUTE_RULE = 'read-only-stand-in';
