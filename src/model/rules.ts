// Routing rules: what platform engineers write (a `RuleDocument`, YAML, possibly
// spread over several files or Consul KV keys) and what the translator reads (a
// merged, checked `RuleSet`). This file holds the shape only: the zod schema of one
// document (strict: unknown keys are refused, so a typo never silently does nothing)
// and the types of the merged set. Everything that needs more than one field, another
// document, the clock or the registry is in validate-rules.ts.
//
// Field names are snake_case, as in Envoy's own YAML, and the RuleSet keeps them, so
// a field has one name from the file to the translator.
import { z } from 'zod';

// ---------------------------------------------------------------------------------
// Names. Service, route, mirror and subset names end up in Envoy resource names and
// stats (`api.beta`), so they are lower-case and short.

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const serviceNameSchema = z
  .string()
  .regex(DNS_LABEL, 'a service name is lower-case letters, digits and dashes, starts and ends with a letter or digit, at most 63 characters');

export const subsetNameSchema = z
  .string()
  .regex(DNS_LABEL, 'a subset name is a routing tag (beta, canary, shadow, stable, dev-…): lower-case letters, digits and dashes, at most 63 characters')
  .describe('a subset of the service: stable (instances without a routing tag) or a tag such as beta, canary, shadow, dev-laptop-1');

const ruleNameSchema = z
  .string()
  .regex(/^[a-z0-9-]{1,63}$/, 'a name is 1 to 63 lower-case letters, digits and dashes; it appears in Envoy route names and stats');

const issuerNameSchema = z
  .string()
  .regex(/^[a-z0-9-]{1,63}$/, 'an issuer name is 1 to 63 lower-case letters, digits and dashes');

/** A lower-case HTTP field name (an RFC 7230 token); pseudo-headers (`:path`) are not tokens. */
export const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
export const headerNameSchema = z
  .string()
  .max(256, 'a header name is at most 256 characters')
  .regex(
    HEADER_NAME,
    'write the header name in lower case (letters, digits, - and the other token characters); pseudo-headers such as :path or :authority cannot be matched here (use path_prefix for the path)',
  );

const methodSchema = z
  .string()
  .regex(/^[A-Z][A-Z-]{0,31}$/, 'write HTTP methods in upper case, e.g. GET, HEAD, OPTIONS, POST');

const routingValueSchema = (what: string) =>
  z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, `${what} is 1 to 64 letters, digits, dots, dashes or underscores`);

// ---------------------------------------------------------------------------------
// Conditions. A value condition names exactly one way to match; "exactly one" needs
// more than one field, so validate-rules.ts checks it (SP_RULE_MATCHER_COUNT). The
// `exactlyOneOf` meta becomes `oneOf` in the published JSON Schema, for editors.

const VALUE_MATCHERS = ['exact', 'prefix', 'regex', 'present', 'absent'] as const;

const valueMatchFields = {
  exact: z.string().max(4096, 'an exact value is at most 4096 characters').optional().describe('the value equals this string'),
  prefix: z.string().min(1, 'a prefix cannot be empty; use present: true to match any value').max(4096).optional().describe('the value starts with this string'),
  regex: z
    .string()
    .min(1, 'a regex cannot be empty; use present: true to match any value')
    .max(1024, 'a regex is at most 1024 characters')
    .optional()
    .describe('RE2 syntax (as Envoy runs it); must match the whole value'),
  present: z
    .literal(true, { error: 'write present: true, or leave it out (for "the header is missing" write absent: true)' })
    .optional()
    .describe('the header (or claim) is present, with any value'),
  absent: z
    .literal(true, { error: 'write absent: true, or leave it out (for "the header is present" write present: true)' })
    .optional()
    .describe('the header (or claim) is missing'),
  invert: z.boolean().default(false).describe('negate exact, prefix or regex (not allowed with present/absent: use the other one)'),
};

export const headerConditionSchema = z
  .object({ name: headerNameSchema.describe('lower-case header name'), ...valueMatchFields })
  .strict()
  .meta({ exactlyOneOf: [...VALUE_MATCHERS] });

const claimNameSchema = z
  .string()
  .max(256)
  .regex(/^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/, 'a claim name is letters, digits, _, : and -, with dots for nested claims (e.g. groups or org.plan)');

export const claimConditionSchema = z
  .object({
    issuer: issuerNameSchema.describe('a key of jwt_issuers'),
    name: claimNameSchema.describe('the claim; dots reach into nested objects (org.plan)'),
    ...valueMatchFields,
  })
  .strict()
  .meta({ exactlyOneOf: [...VALUE_MATCHERS] });

export const matchSchema = z
  .object({
    headers: z.array(headerConditionSchema).optional().describe('every header condition must hold'),
    claim: claimConditionSchema.optional().describe('a claim of the verified JWT (Envoy jwt_authn copies it into a header)'),
    path_prefix: z.string().max(4096).regex(/^\//, 'a path prefix starts with /').optional().describe('the request path starts with this'),
  })
  .strict()
  .describe('all conditions must hold (AND); at least one condition');

// ---------------------------------------------------------------------------------
// Targets: a subset of the rule's own service, or another service's subset.

export const targetObjectSchema = z
  .object({
    service: serviceNameSchema,
    subset: subsetNameSchema,
  })
  .strict();

export const targetSchema = z
  .union([subsetNameSchema, targetObjectSchema])
  .describe('a subset of this service (beta), or { service, subset } for another service');

const weightSchema = z
  .number({ error: 'a weight is a whole number from 0 to 10000' })
  .int({ error: 'a weight is a whole number from 0 to 10000' })
  .min(0, { error: 'a weight is a whole number from 0 to 10000' })
  .max(10_000, { error: 'a weight is a whole number from 0 to 10000' });

export const splitEntrySchema = z.object({ to: targetSchema, weight: weightSchema }).strict();

export const routeSchema = z
  .object({
    name: ruleNameSchema.describe('unique within the service; used in Envoy route names and stats'),
    match: matchSchema.optional(),
    to: targetSchema.optional(),
    split: z
      .array(splitEntrySchema)
      .min(1, 'a split needs at least one entry')
      .optional()
      .describe('weighted split; weights are relative, their sum must be above 0'),
  })
  .strict()
  .meta({ exactlyOneOf: ['to', 'split'] });

/**
 * Methods a copy may send anywhere: a `shadow` subset's sidecars answer every other
 * method with settings.stand_in_status, and no other subset's sidecars do.
 */
export const READ_ONLY_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS'];
/** A mirror copies only what cannot write unless its rule says otherwise. */
export const DEFAULT_MIRROR_METHODS: readonly string[] = READ_ONLY_METHODS;
/** The subset whose sidecars stand in for writes (translate.ts: a sidecar of this subset). */
export const SHADOW_SUBSET = 'shadow';

/**
 * At most this many distinct mirror conditions (methods and match) per service. A
 * request must meet every mirror whose condition it meets, and Envoy runs one route's
 * mirrors, so each route gets a variant per combination of conditions: 2^n - 1 more
 * routes per route (63 at 6). Validation refuses more (SP_RULE_MIRROR_CONDITIONS).
 */
export const MAX_MIRROR_CONDITIONS = 6;
export const DEFAULT_MARKER_HEADER = 'x-shadowplane-mirror';

export const mirrorSchema = z
  .object({
    name: ruleNameSchema.describe("unique within the service; names the mirror's cluster (<target>.mirror-<name>), so two services mirroring one target need different names"),
    match: matchSchema.optional().describe('mirror only requests that match; default: all requests of the service'),
    to: targetSchema,
    percent: z
      .number({ error: 'percent is a number above 0 and at most 100, e.g. 10 or 0.5' })
      .gt(0, { error: 'percent is above 0 (remove the mirror to stop mirroring)' })
      .max(100, { error: 'percent is at most 100' })
      .describe('share of requests mirrored, above 0 and at most 100, up to 4 decimals'),
    methods: z
      .array(methodSchema)
      .min(1, 'list at least one method, or leave methods out for GET, HEAD, OPTIONS')
      .default([...DEFAULT_MIRROR_METHODS])
      .describe('only requests with these methods are mirrored'),
    marker_header: headerNameSchema.default(DEFAULT_MARKER_HEADER).describe('added to mirrored requests; its value is the mirror name'),
    remove_headers: z.array(headerNameSchema).default([]).describe('removed from mirrored requests (e.g. authorization)'),
  })
  .strict();

export const devRouteSchema = z
  .object({
    key: routingValueSchema('a dev route key').describe('value of the dev routing header (settings.dev_route_header)'),
    to: subsetNameSchema.describe('a dev-* subset of this service'),
    owner: z.string().min(1, 'name the owner, e.g. alice@example.com').max(254).describe('who asked for it; shown in audits'),
    expires: z.iso
      .datetime({ offset: true, error: 'write an ISO-8601 date and time with seconds and a timezone, e.g. 2026-11-22T18:00:00Z' })
      .describe('when the route stops; in the future and at most settings.max_dev_route_hours ahead'),
  })
  .strict();

export const tenantRouteSchema = z
  .object({
    tenant: routingValueSchema('a tenant').describe('value of the tenant header (settings.tenant_header)'),
    to: targetSchema,
  })
  .strict();

export const serviceRulesSchema = z
  .object({
    routes: z.array(routeSchema).optional().describe('evaluated in order, first match wins; no match goes to the stable subset'),
    mirrors: z.array(mirrorSchema).optional().describe('each applies independently to the service traffic'),
    dev_routes: z.array(devRouteSchema).optional(),
    tenant_routes: z.array(tenantRouteSchema).optional(),
  })
  .strict();

// ---------------------------------------------------------------------------------
// JWT issuers, the access gateway and settings.

export const jwtIssuerSchema = z
  .object({
    issuer: z.string().min(1, 'the issuer (the iss claim), e.g. https://auth.example.test').describe('the iss claim of its tokens'),
    audiences: z.array(z.string().min(1)).min(1, 'list at least one audience, or leave audiences out').optional(),
    jwks: z.string().min(1).optional().describe('inline JWKS as a JSON string: {"keys": [...]}'),
    jwks_uri: z
      .url({ protocol: /^https?$/, error: 'jwks_uri is an http:// or https:// URL' })
      .optional()
      .describe('where Envoy fetches the JWKS'),
  })
  .strict()
  .meta({ exactlyOneOf: ['jwks', 'jwks_uri'] });

export const rateLimitSchema = z
  .object({
    requests_per_second: z
      .number()
      .int({ error: 'requests_per_second is a whole number from 1 to 1000000' })
      .min(1, { error: 'requests_per_second is a whole number from 1 to 1000000' })
      .max(1_000_000, { error: 'requests_per_second is a whole number from 1 to 1000000' }),
    burst: z
      .number()
      .int({ error: 'burst is a whole number from 1 to 1000000' })
      .min(1, { error: 'burst is a whole number from 1 to 1000000' })
      .max(1_000_000, { error: 'burst is a whole number from 1 to 1000000' })
      .optional()
      .describe('requests allowed at once; at least requests_per_second; default: requests_per_second'),
  })
  .strict()
  .describe('per caller (settings.caller_header)');

export const pathMatchSchema = z
  .object({
    prefix: z.string().max(4096).regex(/^\//, 'a path prefix starts with /').optional(),
    exact: z.string().max(4096).regex(/^\//, 'a path starts with /').optional(),
    regex: z.string().min(1).max(1024, 'a regex is at most 1024 characters').optional().describe('RE2 syntax; must match the whole path'),
  })
  .strict()
  .meta({ exactlyOneOf: ['prefix', 'exact', 'regex'] });

export const allowRuleSchema = z
  .object({
    service: serviceNameSchema.describe('a service in the registry'),
    methods: z.array(methodSchema).min(1, 'list at least one method, or leave methods out for any method').optional().describe('default: any method'),
    paths: z.array(pathMatchSchema).min(1, 'list at least one path, or leave paths out for any path').optional().describe('default: any path'),
    rate_limit: rateLimitSchema.optional().describe('overrides access_gateway.rate_limit for this rule'),
  })
  .strict();

export const accessGatewaySchema = z
  .object({
    rate_limit: rateLimitSchema.optional(),
    allow: z.array(allowRuleSchema).optional().describe('a request passes if any rule allows it; everything else is refused'),
  })
  .strict();

export const DEFAULT_SETTINGS: Settings = {
  dev_route_header: 'x-dev-route',
  tenant_header: 'x-tenant',
  caller_header: 'x-caller',
  max_dev_route_hours: 24,
  stand_in_status: 204,
};

// Settings carry no zod default: a document that leaves a key out must not conflict
// with one that sets it (merging needs to see what was written). The default is
// published as an annotation only.
export const settingsSchema = z
  .object({
    dev_route_header: headerNameSchema
      .optional()
      .meta({ default: DEFAULT_SETTINGS.dev_route_header, description: 'the header whose value selects a dev route' }),
    tenant_header: headerNameSchema
      .optional()
      .meta({ default: DEFAULT_SETTINGS.tenant_header, description: 'the header whose value selects a tenant route' }),
    caller_header: headerNameSchema
      .optional()
      .meta({
        default: DEFAULT_SETTINGS.caller_header,
        description: 'identifies the caller at the access gateway, for rate limits and the audit log',
      }),
    max_dev_route_hours: z
      .number()
      .int({ error: 'max_dev_route_hours is a whole number from 1 to 168' })
      .min(1, { error: 'max_dev_route_hours is a whole number from 1 to 168' })
      .max(168, { error: 'max_dev_route_hours is a whole number from 1 to 168' })
      .optional()
      .meta({ default: DEFAULT_SETTINGS.max_dev_route_hours, description: 'how far ahead a dev route may expire' }),
    stand_in_status: z
      .number()
      .int({ error: 'stand_in_status is an HTTP status from 200 to 599' })
      .min(200, { error: 'stand_in_status is an HTTP status from 200 to 599' })
      .max(599, { error: 'stand_in_status is an HTTP status from 200 to 599' })
      .optional()
      .meta({ default: DEFAULT_SETTINGS.stand_in_status, description: 'what shadow egress answers for methods that are not read-only' }),
  })
  .strict();

export const ruleDocumentSchema = z
  .object({
    services: z.record(serviceNameSchema, serviceRulesSchema).optional().describe('rules by service name'),
    jwt_issuers: z.record(issuerNameSchema, jwtIssuerSchema).optional().describe('JWT issuers that claim conditions name'),
    access_gateway: accessGatewaySchema.optional().describe('what dev services may call in production'),
    settings: settingsSchema.optional(),
  })
  .strict();

// Document types: what zod gives for one file (defaults applied, `to` as written).
export type RuleDocument = z.output<typeof ruleDocumentSchema>;
export type ServiceRulesDoc = z.output<typeof serviceRulesSchema>;
export type RouteDoc = z.output<typeof routeSchema>;
export type MirrorDoc = z.output<typeof mirrorSchema>;
export type DevRouteDoc = z.output<typeof devRouteSchema>;
export type TenantRouteDoc = z.output<typeof tenantRouteSchema>;
export type MatchDoc = z.output<typeof matchSchema>;
export type HeaderConditionDoc = z.output<typeof headerConditionSchema>;
export type ClaimConditionDoc = z.output<typeof claimConditionSchema>;
export type TargetDoc = z.output<typeof targetSchema>;
export type JwtIssuerDoc = z.output<typeof jwtIssuerSchema>;
export type AllowRuleDoc = z.output<typeof allowRuleSchema>;
export type PathMatchDoc = z.output<typeof pathMatchSchema>;
export type RateLimitDoc = z.output<typeof rateLimitSchema>;
export type SettingsDoc = z.output<typeof settingsSchema>;

// ---------------------------------------------------------------------------------
// The merged rule set: what the translator reads. Every target is resolved to
// { service, subset }, every default is filled in, and every invariant that
// validate-rules.ts checks holds.

export interface Target {
  readonly service: string;
  readonly subset: string;
}

export type ValueMatch =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'regex'; readonly value: string }
  | { readonly kind: 'present' }
  | { readonly kind: 'absent' };

export interface HeaderCondition {
  readonly name: string;
  readonly match: ValueMatch;
  /** Only with exact, prefix or regex. */
  readonly invert: boolean;
}

export interface ClaimCondition {
  /** A key of `RuleSet.jwt_issuers`. */
  readonly issuer: string;
  /** Dot-nested claim name, as Envoy's `claim_to_headers.claim_name` takes it. */
  readonly claim: string;
  readonly match: ValueMatch;
  readonly invert: boolean;
}

export interface RouteMatch {
  readonly headers: readonly HeaderCondition[];
  readonly claim?: ClaimCondition;
  readonly path_prefix?: string;
}

export interface WeightedTarget {
  readonly to: Target;
  readonly weight: number;
}

interface RouteBase {
  readonly name: string;
  /** Absent: every request matches (then it is the service's last route). */
  readonly match?: RouteMatch;
}
export type Route = (RouteBase & { readonly to: Target }) | (RouteBase & { readonly split: readonly WeightedTarget[] });

export interface Mirror {
  readonly name: string;
  readonly match?: RouteMatch;
  readonly to: Target;
  /** Above 0, at most 100, at most 4 decimals: a whole number of parts per million. */
  readonly percent: number;
  readonly methods: readonly string[];
  readonly marker_header: string;
  readonly remove_headers: readonly string[];
}

export interface DevRoute {
  readonly key: string;
  /** A `dev-*` subset of the service the route is under. */
  readonly to: Target;
  readonly owner: string;
  /** ISO-8601 in UTC (`Date.prototype.toISOString`). The translator drops it from then on. */
  readonly expires: string;
}

export interface TenantRoute {
  readonly tenant: string;
  readonly to: Target;
}

export interface ServiceRules {
  readonly routes: readonly Route[];
  readonly mirrors: readonly Mirror[];
  readonly dev_routes: readonly DevRoute[];
  readonly tenant_routes: readonly TenantRoute[];
}

export type JwtIssuer =
  | { readonly issuer: string; readonly audiences: readonly string[]; readonly jwks: string }
  | { readonly issuer: string; readonly audiences: readonly string[]; readonly jwks_uri: string };

export interface RateLimit {
  readonly requests_per_second: number;
  /** Defaults to requests_per_second; never below it. */
  readonly burst: number;
}

export type PathMatch = { readonly kind: 'prefix' | 'exact' | 'regex'; readonly value: string };

export interface AllowRule {
  readonly service: string;
  /** Empty: any method. */
  readonly methods: readonly string[];
  /** Empty: any path. */
  readonly paths: readonly PathMatch[];
  readonly rate_limit?: RateLimit;
}

export interface AccessGateway {
  readonly rate_limit?: RateLimit;
  readonly allow: readonly AllowRule[];
}

export interface Settings {
  readonly dev_route_header: string;
  readonly tenant_header: string;
  readonly caller_header: string;
  readonly max_dev_route_hours: number;
  readonly stand_in_status: number;
}

export interface RuleSet {
  /** Keys sorted, so equal rules iterate (and translate) equally. */
  readonly services: Readonly<Record<string, ServiceRules>>;
  readonly jwt_issuers: Readonly<Record<string, JwtIssuer>>;
  /** Absent when no document configures the access gateway. */
  readonly access_gateway?: AccessGateway;
  readonly settings: Settings;
}

/** Per rule set's `services` (never changed once made), its entries as a Map. */
const servicesIndex = new WeakMap<RuleSet['services'], ReadonlyMap<string, ServiceRules>>();

/**
 * The rules of one registry service, if any. An own property only: the registry may
 * hold a service called `constructor` or `toString`, which a plain index would find
 * on Object.prototype. Looked up in a Map made once per rule set: a translation asks
 * for every registry service, and an object of a thousand keys is slow to search.
 */
export function rulesOf(rules: RuleSet, service: string): ServiceRules | undefined {
  let index = servicesIndex.get(rules.services);
  if (!index) servicesIndex.set(rules.services, (index = new Map(Object.entries(rules.services))));
  return index.get(service);
}

/**
 * A mirror's condition as text: mirrors with equal keys share their routes (the
 * translator groups them by it, validation counts them by it).
 */
export function mirrorConditionKey(mirror: Pick<Mirror, 'methods' | 'match'>): string {
  return JSON.stringify([[...mirror.methods].sort(), mirror.match ?? null]);
}

export const emptyRuleSet = (): RuleSet => ({ services: {}, jwt_issuers: {}, settings: DEFAULT_SETTINGS });
