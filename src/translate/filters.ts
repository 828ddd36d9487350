// HTTP filters a role needs, one builder per filter.
import type { AccessGateway, RateLimit, RuleSet } from '../model/rules.js';
import type { ResourceObject } from '../xds/resources.js';
import { buildMethodMatcher, buildPathPermission } from './matchers.js';
import { claimHeaderName, jwksClusterName } from './names.js';

const T = 'type.googleapis.com/envoy.extensions.filters.http';

export function buildRouterFilter(): ResourceObject {
  return { name: 'envoy.filters.http.router', typed_config: { '@type': `${T}.router.v3.Router` } };
}

/** Rule sets are never changed once validated: each one's claim headers are worked out once. */
const claimHeadersOf = new WeakMap<RuleSet, ReadonlyMap<string, ReadonlyMap<string, string>>>();

/** Every claim header the rules route on, by issuer: what jwt_authn writes and the edge strips. */
export function claimHeaders(rules: RuleSet): ReadonlyMap<string, ReadonlyMap<string, string>> {
  const known = claimHeadersOf.get(rules);
  if (known) return known;
  const found = new Map<string, Map<string, string>>();
  for (const service of Object.values(rules.services)) {
    for (const c of [...service.routes.map((r) => r.match?.claim), ...service.mirrors.map((m) => m.match?.claim)]) {
      if (c === undefined) continue;
      const claims = found.get(c.issuer) ?? new Map<string, string>();
      claims.set(c.claim, claimHeaderName(c.issuer, c.claim));
      found.set(c.issuer, claims);
    }
  }
  claimHeadersOf.set(rules, found);
  return found;
}

/**
 * Removes the headers that only Shadowplane's own filters may set, before a route is
 * chosen or any filter runs (the connection manager's early header mutation): a claim
 * header forged by an outside caller must have no effect. An HTTP filter would be too
 * late, since filters look up their per-route config, and so fix the route, first.
 */
export function buildStripExtension(headers: readonly string[]): ResourceObject | undefined {
  if (headers.length === 0) return undefined;
  return {
    name: 'shadowplane.strip_internal_headers',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation',
      mutations: [...headers].sort().map((h) => ({ remove: h })),
    },
  };
}

/**
 * jwt_authn with one provider per issuer that rules route on. A token is optional (no
 * token: routed as anyone else), a bad one is refused; a good one's claims are copied
 * into headers and the route is chosen again with them.
 */
export function buildJwtFilter(rules: RuleSet): ResourceObject | undefined {
  const claims = claimHeaders(rules);
  if (claims.size === 0) return undefined;
  const providers: Record<string, ResourceObject> = {};
  for (const [name, byClaim] of [...claims].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const issuer = rules.jwt_issuers[name];
    if (!issuer) continue;
    providers[name] = {
      issuer: issuer.issuer,
      audiences: [...issuer.audiences],
      ...('jwks' in issuer
        ? { local_jwks: { inline_string: issuer.jwks } }
        : { remote_jwks: { http_uri: { uri: issuer.jwks_uri, cluster: jwksClusterName(name), timeout: { seconds: 5 } }, cache_duration: { seconds: 600 } } }),
      claim_to_headers: [...byClaim].sort(([a], [b]) => (a < b ? -1 : 1)).map(([claim, header]) => ({ header_name: header, claim_name: claim })),
      clear_route_cache: true,
      forward: true,
    };
  }
  const names = Object.keys(providers);
  if (names.length === 0) return undefined;
  return {
    name: 'envoy.filters.http.jwt_authn',
    typed_config: {
      '@type': `${T}.jwt_authn.v3.JwtAuthentication`,
      providers,
      rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [...names.map((n) => ({ provider_name: n })), { allow_missing: {} }] } } }],
    },
  };
}

/** The access gateway's policy as RBAC: allowed requests pass, the rest get 403. */
export function buildRbacFilter(gateway: AccessGateway | undefined): ResourceObject {
  const policies: Record<string, ResourceObject> = {};
  (gateway?.allow ?? []).forEach((rule, i) => {
    const and: ResourceObject[] = [
      {
        or_rules: {
          rules: [
            { header: { name: ':authority', string_match: { exact: rule.service } } },
            { header: { name: ':authority', string_match: { prefix: `${rule.service}:` } } },
          ],
        },
      },
    ];
    if (rule.methods.length > 0) and.push({ header: buildMethodMatcher(rule.methods) });
    if (rule.paths.length > 0) and.push({ or_rules: { rules: rule.paths.map(buildPathPermission) } });
    policies[policyName(rule.service, i)] = { permissions: [{ and_rules: { rules: and } }], principals: [{ any: true }] };
  });
  const rbac = { action: 'ALLOW', policies };
  return {
    name: 'envoy.filters.http.rbac',
    typed_config: {
      '@type': `${T}.rbac.v3.RBAC`,
      rules: rbac,
      // The same policies as shadow rules: Envoy then records which policy decided
      // (dynamic metadata shadow_effective_policy_id), which the audit log writes.
      shadow_rules: rbac,
    },
  };
}

export const policyName = (service: string, index: number): string => `allow/${service}/${index}`;

export function buildTokenBucket(limit: RateLimit): ResourceObject {
  return { max_tokens: limit.burst, tokens_per_fill: { value: limit.requests_per_second }, fill_interval: { seconds: 1 } };
}

/**
 * Rate limits of the access gateway. Each downstream connection has its own bucket:
 * per-caller buckets keyed by a header need Envoy's dynamic descriptors, which the
 * pinned Envoy API copy predates.
 */
export function buildLocalRateLimit(statPrefix: string, limit: RateLimit | undefined): ResourceObject {
  return {
    '@type': `${T}.local_ratelimit.v3.LocalRateLimit`,
    stat_prefix: statPrefix,
    ...(limit
      ? {
          token_bucket: buildTokenBucket(limit),
          filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
          filter_enforced: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
          local_rate_limit_per_downstream_connection: true,
        }
      : {}),
  };
}

export function buildRateLimitFilter(gateway: AccessGateway | undefined): ResourceObject {
  return { name: 'envoy.filters.http.local_ratelimit', typed_config: buildLocalRateLimit('access_gateway', gateway?.rate_limit) };
}

/** The audit log: one JSON line per request with caller, method, path, status and decision. */
export function buildAuditLog(path: string, callerHeader: string): ResourceObject {
  return {
    name: 'envoy.access_loggers.file',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
      path,
      log_format: {
        json_format: {
          time: '%START_TIME%',
          caller: `%REQ(${callerHeader})%`,
          method: '%REQ(:METHOD)%',
          path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
          authority: '%REQ(:AUTHORITY)%',
          status: '%RESPONSE_CODE%',
          decision: '%DYNAMIC_METADATA(envoy.filters.http.rbac:shadow_engine_result)%',
          rule: '%DYNAMIC_METADATA(envoy.filters.http.rbac:shadow_effective_policy_id)%',
          response_flags: '%RESPONSE_FLAGS%',
        },
      },
    },
  };
}
