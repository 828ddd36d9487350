// Rule validation: every problem of every document, each with its file (and line),
// its path in the document, a stable code and a message that says what to do.
//
// Three passes, and all of them always run, so one typo does not hide the next
// problem:
//  1. shape: each document against the zod schema (rules.ts);
//  2. semantics: checks that need several fields, other documents, the clock or
//     the registry. They run on whatever parsed: each route, mirror, issuer… is
//     parsed on its own ("salvaged"), and an item whose shape is wrong is skipped
//     here (its shape problem is already reported) while its siblings are checked;
//  3. the merged RuleSet, built only when there is no error.
// Errors make the rule set unusable; warnings (a subset no instance carries yet) do
// not: CI may register the instances after the rules.
import type { z } from 'zod';
import { parseYaml, YamlSyntaxError } from '../util/yaml.js';
import { re2Error } from './re2.js';
import {
  DEFAULT_SETTINGS,
  MAX_MIRROR_CONDITIONS,
  READ_ONLY_METHODS,
  SHADOW_SUBSET,
  mirrorConditionKey,
  allowRuleSchema,
  jwtIssuerSchema,
  rateLimitSchema,
  routeSchema,
  mirrorSchema,
  devRouteSchema,
  tenantRouteSchema,
  ruleDocumentSchema,
  settingsSchema,
  type AccessGateway,
  type AllowRuleDoc,
  type ClaimConditionDoc,
  type DevRouteDoc,
  type HeaderConditionDoc,
  type JwtIssuer,
  type JwtIssuerDoc,
  type MatchDoc,
  type MirrorDoc,
  type PathMatch,
  type PathMatchDoc,
  type RateLimit,
  type RateLimitDoc,
  type Route,
  type RouteDoc,
  type RouteMatch,
  type RuleDocument,
  type RuleSet,
  type ServiceRules,
  type Settings,
  type SettingsDoc,
  type Target,
  type TargetDoc,
  type TenantRouteDoc,
  type ValueMatch,
} from './rules.js';
import { DEFAULT_ROUTING_TAGS, subsetsOf } from './subsets.js';
// The naming scheme itself, not a restatement of it: what it cannot tell apart is refused here.
import { STAND_IN_ROUTE_RULE, clusterName, devRouteRule, jwksClusterName, mirrorClusterName, routeName, tenantRouteRule } from '../translate/names.js';
import { STABLE_SUBSET, type Registry, type Service } from './types.js';

/**
 * Every code a rule problem can carry, with what it means. Codes are stable: they are
 * documented in docs/rules.md and a code is never reused for another meaning.
 */
export const RULE_CODES = {
  SP_RULE_YAML_SYNTAX: 'the text is not valid YAML',
  SP_RULE_UNKNOWN_KEY: 'a key the format does not have (often a typo)',
  SP_RULE_REQUIRED: 'a required key is missing',
  SP_RULE_WRONG_TYPE: 'a value of the wrong type (text, number, list, mapping)',
  SP_RULE_INVALID_VALUE: 'a value of the right type that is not allowed (name format, range, URL, date)',
  SP_RULE_MATCHER_COUNT: 'a condition or path names no way to match, or more than one',
  SP_RULE_INVERT_PRESENCE: 'invert together with present or absent',
  SP_RULE_REGEX_INVALID: 'a regex that RE2 (which Envoy runs) refuses',
  SP_RULE_MATCH_EMPTY: 'a match without any condition',
  SP_RULE_ROUTE_ACTION: 'a route with both to and split, or neither',
  SP_RULE_SPLIT_WEIGHT_ZERO: 'a split whose weights add up to 0',
  SP_RULE_SPLIT_DUPLICATE_TARGET: 'a split that names the same target twice',
  SP_RULE_ROUTE_UNREACHABLE: 'a route after a route without match, which takes every request',
  SP_RULE_DUPLICATE_NAME: 'two routes, or two mirrors, of a service with the same name',
  SP_RULE_DUPLICATE_DEV_KEY: 'two dev routes of a service with the same key',
  SP_RULE_DUPLICATE_TENANT: 'two tenant routes of a service for the same tenant',
  SP_RULE_DUPLICATE_ITEM: 'a list (methods, remove_headers, audiences) with the same entry twice',
  SP_RULE_MIRROR_PERCENT_PRECISION: 'a mirror percent with more than 4 decimals',
  SP_RULE_MIRROR_TO_PRIMARY: "a mirror to its own service's stable subset",
  SP_RULE_MIRROR_METHOD: 'a mirror of CONNECT requests, which Envoy cannot mirror',
  SP_RULE_MIRROR_WRITES: 'a mirror that copies writes (methods other than GET, HEAD, OPTIONS) to a subset other than shadow, whose sidecars do not stand in for them (a warning)',
  SP_RULE_MIRROR_MARKER_REMOVED: 'a mirror that removes its own marker header',
  SP_RULE_MIRROR_CONDITIONS: 'a service whose mirrors have more than 6 different conditions (methods and match)',
  SP_RULE_HEADER_NOT_REMOVABLE: 'removing the host header from mirrored requests',
  SP_RULE_DEV_ROUTE_SUBSET: 'a dev route to a subset that is not dev-*',
  SP_RULE_DEV_ROUTE_EXPIRED: 'a dev route whose expiry has passed',
  SP_RULE_DEV_ROUTE_TOO_LONG: 'a dev route that expires further ahead than settings.max_dev_route_hours',
  SP_RULE_CLAIM_ISSUER_UNKNOWN: 'a claim condition naming an issuer that jwt_issuers does not define',
  SP_RULE_JWKS_SOURCE: 'a JWT issuer with both jwks and jwks_uri, or neither',
  SP_RULE_JWKS_INVALID: 'an inline jwks that is not a JSON key set',
  SP_RULE_RATE_LIMIT_BURST: 'a rate limit whose burst is below requests_per_second',
  SP_RULE_SETTINGS_HEADER_CLASH: 'two of dev_route_header, tenant_header and caller_header are the same header',
  SP_RULE_DEFINED_TWICE: 'a service or JWT issuer defined in two documents',
  SP_RULE_VALUE_CONFLICT: 'a setting or the gateway rate limit set to different values in two documents',
  SP_RULE_UNKNOWN_SERVICE: 'a service the registry does not know',
  SP_RULE_NAME_CLASH: 'two rules that would give two Envoy clusters one name (e.g. two services mirroring one target under one mirror name)',
  SP_RULE_ROUTE_NAME_CLASH: 'a route named like one Shadowplane makes for the service: stable, dev-<key>, tenant-<tenant> (a warning)',
  SP_RULE_SUBSET_EMPTY: 'a subset no instance of the service carries yet (a warning)',
  SP_RULE_ENVOY_REJECTS: 'the rules translate into configuration that Envoy would refuse (checked against its protos)',
} as const;

export type RuleCode = keyof typeof RULE_CODES;

export interface RuleProblem {
  /** The file or Consul KV key the problem is in. */
  readonly source: string;
  /** Where in the document, e.g. `services.api.routes[0].match.headers[0].regex`; '' for the whole document. */
  readonly path: string;
  readonly code: RuleCode;
  /** What is wrong and what to do about it. */
  readonly message: string;
  /** `file:line:col` when the document came from text; else the source. */
  readonly at: string;
}

/** One document to validate: a parsed value, where it came from, and how to find a path in its text. */
export interface RuleInput {
  readonly source: string;
  readonly value: unknown;
  readonly locate?: (path: readonly PropertyKey[]) => string;
}

export interface ValidateOptions {
  /** Cross-check services and subsets against it; without it those checks are skipped. */
  readonly registry?: Registry;
  /** The clock for dev route expiry; default: now. */
  readonly now?: Date;
  /**
   * An expired dev route is an error (default: refuse to write it), or a warning and
   * the route is left out of the rule set (for reloading stored rules, where one
   * forgotten dev route must not make the whole set unusable).
   */
  readonly expiredDevRoutes?: 'error' | 'warning';
}

export interface RuleValidation {
  /** Present exactly when there are no errors. */
  readonly ruleSet: RuleSet | undefined;
  readonly errors: readonly RuleProblem[];
  readonly warnings: readonly RuleProblem[];
}

/** `file:line:col: path: message [CODE]`, for logs and the CLI. */
export function formatProblem(p: RuleProblem): string {
  return `${p.at}: ${p.path || '(top level)'}: ${p.message} [${p.code}]`;
}

// ---------------------------------------------------------------------------------
// Reading text.

/** Parses YAML text; syntax errors come back as problems located at `file:line:col`. */
export function readRuleText(source: string, text: string): { input: RuleInput | undefined; errors: RuleProblem[] } {
  try {
    const parsed = parseYaml(source, text);
    return { input: { source, value: parsed.value, locate: parsed.locate }, errors: [] };
  } catch (err) {
    if (!(err instanceof YamlSyntaxError)) throw err;
    const errors = err.problems.map((line): RuleProblem => {
      const m = /^(.*:\d+:\d+): (.*)$/.exec(line);
      return { source, path: '', code: 'SP_RULE_YAML_SYNTAX', message: `${m?.[2] ?? line}; fix the YAML`, at: m?.[1] ?? source };
    });
    return { input: undefined, errors };
  }
}

/** One file alone: read, validate, and (when valid) its rule set. */
export function validateRuleFile(source: string, text: string, options: ValidateOptions = {}): RuleValidation {
  const { input, errors } = readRuleText(source, text);
  if (!input) return { ruleSet: undefined, errors, warnings: [] };
  return validateRules([input], options);
}

// ---------------------------------------------------------------------------------
// Problems and paths.

type PathKey = string | number;

interface Origin {
  readonly source: string;
  readonly locate?: (path: readonly PropertyKey[]) => string;
}

/** `services.api.routes[0].match`; keys that are not plain names are quoted: `services["a.b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(String(key))) out += out === '' ? String(key) : `.${String(key)}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

class Report {
  readonly errors: RuleProblem[] = [];
  readonly warnings: RuleProblem[] = [];

  error(origin: Origin, path: readonly PathKey[], code: RuleCode, message: string): void {
    this.errors.push(problem(origin, path, code, message));
  }

  warn(origin: Origin, path: readonly PathKey[], code: RuleCode, message: string): void {
    this.warnings.push(problem(origin, path, code, message));
  }
}

function problem(origin: Origin, path: readonly PropertyKey[], code: RuleCode, message: string): RuleProblem {
  return { source: origin.source, path: formatPath(path), code, message, at: origin.locate?.(path) ?? origin.source };
}

/** Where `path` was written, for messages that name the other of two places. */
const placeOf = (origin: Origin, path: readonly PathKey[]): string => origin.locate?.(path) ?? origin.source;

// ---------------------------------------------------------------------------------
// Pass 1: shape. Zod's issues, turned into coded problems with messages that say
// what to do.

type Issue = z.core.$ZodIssue;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): { found: boolean; value: unknown } {
  let node = root;
  for (const key of path) {
    if (Array.isArray(node) && typeof key === 'number' && key < node.length) node = node[key];
    else if (isRecord(node) && typeof key === 'string' && Object.hasOwn(node, key)) node = node[key];
    else return { found: false, value: undefined };
  }
  return { found: true, value: node };
}

/** The union branch the value most likely meant: the one that got past the type check. */
function flattenIssues(issues: readonly Issue[], prefix: readonly PropertyKey[]): { path: PropertyKey[]; issue: Issue }[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const rootTypeMisses = (branch: readonly Issue[]) => branch.filter((i) => i.code === 'invalid_type' && i.path.length === 0).length;
      const allMissType = issue.errors.every((b) => rootTypeMisses(b) > 0);
      if (allMissType) {
        const expected = issue.errors.flatMap((b) => b.filter((i) => i.code === 'invalid_type').map((i) => (i as { expected: string }).expected));
        return [{ path, issue: { code: 'invalid_type', expected: expected.join(' or '), path: [], message: '' } as unknown as Issue }];
      }
      const best = [...issue.errors].sort((a, b) => rootTypeMisses(a) - rootTypeMisses(b) || a.length - b.length)[0]!;
      return flattenIssues(best, path);
    }
    return [{ path, issue }];
  });
}

const EXPECTED: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  record: 'a mapping (key: value)',
  array: 'a list',
};

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'an empty value';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the text ${JSON.stringify(v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'boolean') return `the value ${v}`;
  return typeof v;
}

// Walking the schema along a path, for the keys an object allows and a field's description.
function unwrapSchema(s: z.ZodType): z.ZodType {
  let out: z.ZodType & { unwrap?: () => z.ZodType } = s;
  while ((out.def.type === 'optional' || out.def.type === 'default' || out.def.type === 'nullable') && out.unwrap) {
    out = out.unwrap();
  }
  return out;
}

function childSchema(s: z.ZodType, key: PropertyKey): z.ZodType | undefined {
  const u = unwrapSchema(s) as z.ZodType & Record<string, unknown>;
  switch (u.def.type) {
    case 'object':
      return (u.shape as Record<string, z.ZodType>)[String(key)];
    case 'record':
      return u.valueType as z.ZodType;
    case 'array':
      return u.element as z.ZodType;
    case 'union':
      for (const option of u.options as z.ZodType[]) {
        const c = childSchema(option, key);
        if (c) return c;
      }
      return undefined;
    default:
      return undefined;
  }
}

function schemaAt(path: readonly PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = ruleDocumentSchema;
  for (const key of path) s = s && childSchema(s, key);
  return s;
}

function keysAt(path: readonly PropertyKey[]): string[] {
  const s = schemaAt(path);
  if (!s) return [];
  const u = unwrapSchema(s) as z.ZodType & Record<string, unknown>;
  if (u.def.type === 'object') return Object.keys(u.shape as object);
  if (u.def.type === 'union') {
    const obj = (u.options as z.ZodType[]).map(unwrapSchema).find((o) => o.def.type === 'object') as (z.ZodType & { shape: object }) | undefined;
    return obj ? Object.keys(obj.shape) : [];
  }
  return [];
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** ` (did you mean "routes"?)` when one candidate is close. */
function didYouMean(word: string, candidates: readonly string[]): string {
  const scored = candidates.map((c) => ({ c, d: editDistance(word.toLowerCase(), c) })).sort((x, y) => x.d - y.d);
  const best = scored[0];
  return best && best.d > 0 && best.d <= (word.length >= 4 ? 2 : 1) ? ` (did you mean "${best.c}"?)` : '';
}

function shapeProblems(input: RuleInput): RuleProblem[] {
  const root = input.value ?? {};
  const result = ruleDocumentSchema.safeParse(root);
  if (result.success) return [];
  const out: RuleProblem[] = [];
  for (const { path, issue } of flattenIssues(result.error.issues, [])) {
    switch (issue.code) {
      case 'unrecognized_keys': {
        const allowed = keysAt(path);
        for (const key of issue.keys) {
          const where = allowed.length > 0 ? `; allowed here: ${allowed.join(', ')}` : '';
          out.push(problem(input, [...path, key], 'SP_RULE_UNKNOWN_KEY', `unknown key "${key}"${didYouMean(key, allowed)}${where}`));
        }
        break;
      }
      case 'invalid_type': {
        const at = valueAt(root, path);
        if (!at.found || at.value === undefined) {
          const key = path[path.length - 1];
          const description = schemaAt(path)?.description;
          out.push(problem(input, path, 'SP_RULE_REQUIRED', `add ${String(key)}: it is required here${description ? ` (${description})` : ''}`));
        } else if (issue.expected === 'int') {
          out.push(problem(input, path, 'SP_RULE_INVALID_VALUE', issue.message));
        } else {
          const expected = issue.expected.split(' or ').map((e) => EXPECTED[e] ?? e).join(' or ');
          const quote =
            issue.expected.startsWith('string') && (typeof at.value === 'boolean' || typeof at.value === 'number')
              ? `; quote it: "${String(at.value)}"`
              : '';
          out.push(problem(input, path, 'SP_RULE_WRONG_TYPE', `expected ${expected}, got ${describeValue(at.value)}${quote}`));
        }
        break;
      }
      case 'invalid_key':
        out.push(problem(input, path, 'SP_RULE_INVALID_VALUE', `"${String(path[path.length - 1])}": ${issue.issues[0]?.message ?? issue.message}`));
        break;
      default:
        out.push(problem(input, path, 'SP_RULE_INVALID_VALUE', issue.message));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Salvage: each item parsed on its own; an item with a shape problem is a hole
// (undefined), so paths keep their indexes.

interface PartialService {
  readonly routes: readonly (RouteDoc | undefined)[];
  readonly mirrors: readonly (MirrorDoc | undefined)[];
  readonly dev_routes: readonly (DevRouteDoc | undefined)[];
  readonly tenant_routes: readonly (TenantRouteDoc | undefined)[];
}

interface PartialDocument {
  readonly origin: Origin;
  readonly services: readonly (readonly [string, PartialService])[];
  readonly jwt_issuers: readonly (readonly [string, JwtIssuerDoc | undefined])[];
  readonly access_gateway?: {
    readonly rate_limit?: RateLimitDoc;
    readonly allow: readonly (AllowRuleDoc | undefined)[];
  };
  readonly settings: SettingsDoc;
}

function parsed<T>(schema: z.ZodType<T>, value: unknown): T | undefined {
  const r = schema.safeParse(value);
  return r.success ? r.data : undefined;
}

function items<T>(schema: z.ZodType<T>, value: unknown): (T | undefined)[] {
  return Array.isArray(value) ? value.map((v) => parsed(schema, v)) : [];
}

function salvage(input: RuleInput): PartialDocument {
  const doc = isRecord(input.value) ? input.value : {};
  const services = isRecord(doc.services)
    ? Object.entries(doc.services).map(([name, raw]): [string, PartialService] => {
        const s = isRecord(raw) ? raw : {};
        return [
          name,
          {
            routes: items(routeSchema, s.routes),
            mirrors: items(mirrorSchema, s.mirrors),
            dev_routes: items(devRouteSchema, s.dev_routes),
            tenant_routes: items(tenantRouteSchema, s.tenant_routes),
          },
        ];
      })
    : [];
  const jwt_issuers = isRecord(doc.jwt_issuers)
    ? Object.entries(doc.jwt_issuers).map(([name, raw]): [string, JwtIssuerDoc | undefined] => [name, parsed(jwtIssuerSchema, raw)])
    : [];
  const gateway = isRecord(doc.access_gateway) ? doc.access_gateway : undefined;
  const settings: SettingsDoc = {};
  if (isRecord(doc.settings)) {
    for (const [key, schema] of Object.entries(settingsSchema.shape)) {
      const value = parsed(schema as z.ZodType, doc.settings[key]);
      if (value !== undefined) (settings as Record<string, unknown>)[key] = value;
    }
  }
  const rateLimit = gateway && parsed(rateLimitSchema, gateway.rate_limit);
  return {
    origin: input,
    services,
    jwt_issuers,
    ...(gateway && {
      access_gateway: {
        ...(rateLimit && { rate_limit: rateLimit }),
        allow: items(allowRuleSchema, gateway.allow),
      },
    }),
    settings,
  };
}

// ---------------------------------------------------------------------------------
// Merging documents. A service or issuer lives in exactly one document; settings and
// the gateway rate limit may repeat only with equal values; allow rules add up.

interface Located<T> {
  readonly origin: Origin;
  readonly value: T;
}

interface Merged {
  readonly services: Map<string, Located<PartialService>>;
  readonly issuers: Map<string, Located<JwtIssuerDoc | undefined>>;
  gateway: boolean;
  gatewayRateLimit: Located<RateLimitDoc> | undefined;
  readonly allow: { readonly origin: Origin; readonly index: number; readonly rule: AllowRuleDoc | undefined }[];
  readonly settings: Settings;
  readonly settingOrigins: Map<keyof Settings, Origin>;
}

const sameValue = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function merge(docs: readonly PartialDocument[], report: Report): Merged {
  const merged: Merged = {
    services: new Map(),
    issuers: new Map(),
    gateway: false,
    gatewayRateLimit: undefined,
    allow: [],
    settings: { ...DEFAULT_SETTINGS },
    settingOrigins: new Map(),
  };
  const settings = merged.settings as Record<keyof Settings, unknown>;
  for (const doc of docs) {
    const { origin } = doc;
    for (const [name, rules] of doc.services) {
      const first = merged.services.get(name);
      if (first) {
        report.error(
          origin,
          ['services', name],
          'SP_RULE_DEFINED_TWICE',
          `service "${name}" is also defined at ${placeOf(first.origin, ['services', name])}; keep all rules of a service in one file`,
        );
      } else {
        merged.services.set(name, { origin, value: rules });
      }
    }
    for (const [name, issuer] of doc.jwt_issuers) {
      const first = merged.issuers.get(name);
      if (first) {
        report.error(
          origin,
          ['jwt_issuers', name],
          'SP_RULE_DEFINED_TWICE',
          `JWT issuer "${name}" is also defined at ${placeOf(first.origin, ['jwt_issuers', name])}; define each issuer once`,
        );
      } else {
        merged.issuers.set(name, { origin, value: issuer });
      }
    }
    if (doc.access_gateway) {
      merged.gateway = true;
      const limit = doc.access_gateway.rate_limit;
      if (limit) {
        const first = merged.gatewayRateLimit;
        if (!first) merged.gatewayRateLimit = { origin, value: limit };
        else if (!sameValue(first.value, limit)) {
          report.error(
            origin,
            ['access_gateway', 'rate_limit'],
            'SP_RULE_VALUE_CONFLICT',
            `access_gateway.rate_limit differs from the one at ${placeOf(first.origin, ['access_gateway', 'rate_limit'])}; set it in one file`,
          );
        }
      }
      doc.access_gateway.allow.forEach((rule, index) => merged.allow.push({ origin, index, rule }));
    }
    for (const [key, value] of Object.entries(doc.settings) as [keyof Settings, unknown][]) {
      const first = merged.settingOrigins.get(key);
      if (first && !sameValue(settings[key], value)) {
        report.error(
          origin,
          ['settings', key],
          'SP_RULE_VALUE_CONFLICT',
          `settings.${key} is ${JSON.stringify(value)} here but ${JSON.stringify(settings[key])} at ${placeOf(first, ['settings', key])}; set it in one file`,
        );
      } else if (!first) {
        settings[key] = value;
        merged.settingOrigins.set(key, origin);
      }
    }
  }
  return merged;
}

// ---------------------------------------------------------------------------------
// Pass 2: semantics.

const VALUE_MATCHERS = ['exact', 'prefix', 'regex', 'present', 'absent'] as const;
const PATH_MATCHERS = ['prefix', 'exact', 'regex'] as const;

interface PendingTarget {
  readonly origin: Origin;
  readonly path: readonly PathKey[];
  readonly target: Target;
  /** Written as { service, subset }: an unknown service is reported at `.service`. */
  readonly explicit: boolean;
}

/** A cluster the rules make, and who makes it. */
interface NameClaim {
  readonly origin: Origin;
  readonly path: readonly PathKey[];
  /** Equal for claims of one cluster (two routes to api.beta): those do not clash. */
  readonly identity: string;
  /** For messages: `mirror "shadow-10" of "web"`. */
  readonly owner: string;
}

class Checker {
  readonly targets: PendingTarget[] = [];
  readonly mirrors: { origin: Origin; path: readonly PathKey[]; service: string; name: string; to: Target }[] = [];

  constructor(
    private readonly report: Report,
    private readonly merged: Merged,
    private readonly options: ValidateOptions,
    private readonly now: number,
  ) {}

  run(): void {
    for (const [name, { origin, value }] of this.merged.services) this.service(origin, name, value);
    for (const [name, { origin, value }] of this.merged.issuers) if (value) this.issuer(origin, ['jwt_issuers', name], value);
    if (this.merged.gatewayRateLimit) {
      this.rateLimit(this.merged.gatewayRateLimit.origin, ['access_gateway', 'rate_limit'], this.merged.gatewayRateLimit.value);
    }
    for (const { origin, index, rule } of this.merged.allow) if (rule) this.allowRule(origin, ['access_gateway', 'allow', index], rule);
    this.settings();
    this.clusterNames();
    if (this.options.registry) this.registry(this.options.registry);
  }

  /**
   * Envoy takes each cluster name once, and a snapshot with a name twice is refused
   * whole, so rules whose clusters would share a name are refused here, on load and in
   * the admin API alike. The registry is not needed: what rules name, they make (a
   * cluster per target subset, per mirror, per JWT issuer with a remote key set).
   */
  private clusterNames(): void {
    const claims = new Map<string, NameClaim[]>();
    const claim = (name: string, c: NameClaim): void => {
      const list = claims.get(name) ?? [];
      if (!list.some((other) => other.identity === c.identity)) list.push(c);
      claims.set(name, list);
    };
    for (const { origin, path, target } of this.targets) {
      claim(clusterName(target.service, target.subset), {
        origin,
        path,
        identity: `subset ${target.service} ${target.subset}`,
        owner: `the cluster of subset "${target.subset}" of "${target.service}"`,
      });
    }
    for (const { origin, path, service, name, to } of this.mirrors) {
      claim(mirrorClusterName(to.service, to.subset, name), { origin, path, identity: `mirror ${service} ${name}`, owner: `mirror "${name}" of "${service}"` });
    }
    for (const [name, { origin, value }] of this.merged.issuers) {
      if (value?.jwks_uri === undefined) continue;
      claim(jwksClusterName(name), { origin, path: ['jwt_issuers', name], identity: `jwks ${name}`, owner: `the key set cluster of JWT issuer "${name}"` });
    }
    for (const [name, [first, ...others]] of claims) {
      for (const c of others) {
        this.report.error(
          c.origin,
          c.path,
          'SP_RULE_NAME_CLASH',
          `${c.owner} would be the Envoy cluster "${name}", and so would ${first!.owner} (${placeOf(first!.origin, first!.path)}); Envoy takes each cluster name once, so rename one of them (the naming scheme is in the README, "Names Envoy sees")`,
        );
      }
    }
  }

  private service(origin: Origin, name: string, rules: PartialService): void {
    const base = ['services', name];
    const routeNames = new Map<string, number>();
    let catchAll: number | undefined;
    rules.routes.forEach((route, i) => {
      if (!route) return;
      const path = [...base, 'routes', i];
      this.unique(origin, path, routeNames, route.name, i, 'route');
      if (catchAll !== undefined) {
        this.report.error(
          origin,
          path,
          'SP_RULE_ROUTE_UNREACHABLE',
          `routes[${catchAll}] has no match, so it takes every request and this route never matches; move this route before it, or give that one a match`,
        );
      }
      if (route.match) this.match(origin, [...path, 'match'], route.match);
      else catchAll ??= i;
      this.route(origin, path, name, route);
    });

    const mirrorNames = new Map<string, number>();
    rules.mirrors.forEach((mirror, i) => {
      if (mirror) this.mirror(origin, [...base, 'mirrors', i], name, mirror, mirrorNames, i);
    });
    this.mirrorConditions(origin, base, name, rules.mirrors);

    const devKeys = new Map<string, number>();
    rules.dev_routes.forEach((dev, i) => {
      if (dev) this.devRoute(origin, [...base, 'dev_routes', i], name, dev, devKeys, i);
    });

    const tenants = new Map<string, number>();
    rules.tenant_routes.forEach((tenant, i) => {
      if (!tenant) return;
      const path = [...base, 'tenant_routes', i];
      const first = tenants.get(tenant.tenant);
      if (first !== undefined) {
        this.report.error(
          origin,
          [...path, 'tenant'],
          'SP_RULE_DUPLICATE_TENANT',
          `tenant "${tenant.tenant}" already has a route at tenant_routes[${first}]; keep one route per tenant`,
        );
      } else {
        tenants.set(tenant.tenant, i);
      }
      this.target(origin, [...path, 'to'], name, tenant.to);
    });
    this.routeNames(origin, base, name, rules);
  }

  /**
   * Envoy does not need route names to differ, but people read them in config dumps
   * and stats: a rule's route named like one Shadowplane makes is worth a warning.
   */
  private routeNames(origin: Origin, base: readonly PathKey[], service: string, rules: PartialService): void {
    const made = new Map<string, string>([
      [STABLE_SUBSET, `the route to its stable subset that ends the routes of "${service}"`],
      [STAND_IN_ROUTE_RULE, "the route that answers a shadow's writes"],
    ]);
    rules.dev_routes.forEach((dev, i) => dev && made.set(devRouteRule(dev.key), `the route of dev_routes[${i}]`));
    rules.tenant_routes.forEach((tenant, i) => tenant && made.set(tenantRouteRule(tenant.tenant), `the route of tenant_routes[${i}]`));
    rules.routes.forEach((route, i) => {
      const other = route && made.get(route.name);
      if (!route || other === undefined) return;
      this.report.warn(
        origin,
        [...base, 'routes', i, 'name'],
        'SP_RULE_ROUTE_NAME_CLASH',
        `Envoy would see two routes named "${routeName(service, route.name)}", this one and ${other}, and config dumps and stats could not tell them apart; rename this route`,
      );
    });
  }

  private unique(origin: Origin, path: readonly PathKey[], seen: Map<string, number>, name: string, i: number, kind: 'route' | 'mirror'): void {
    const first = seen.get(name);
    if (first !== undefined) {
      this.report.error(
        origin,
        [...path, 'name'],
        'SP_RULE_DUPLICATE_NAME',
        `${kind} name "${name}" is already used by ${kind}s[${first}]; names are unique within a service (they name Envoy routes and stats)`,
      );
    } else {
      seen.set(name, i);
    }
  }

  private route(origin: Origin, path: readonly PathKey[], service: string, route: RouteDoc): void {
    if ((route.to === undefined) === (route.split === undefined)) {
      this.report.error(
        origin,
        path,
        'SP_RULE_ROUTE_ACTION',
        route.to === undefined
          ? 'say where the route goes: to: <subset>, or split: [{ to, weight }, …]'
          : 'use either to or split, not both',
      );
    }
    if (route.to !== undefined) this.target(origin, [...path, 'to'], service, route.to);
    if (route.split) {
      const total = route.split.reduce((sum, e) => sum + e.weight, 0);
      if (total === 0) {
        this.report.error(origin, [...path, 'split'], 'SP_RULE_SPLIT_WEIGHT_ZERO', 'the weights add up to 0, so no request could go anywhere; give at least one entry a weight above 0');
      }
      const seen = new Map<string, number>();
      route.split.forEach((entry, k) => {
        const target = resolve(service, entry.to);
        const key = `${target.service}/${target.subset}`;
        const first = seen.get(key);
        if (first !== undefined) {
          this.report.error(
            origin,
            [...path, 'split', k, 'to'],
            'SP_RULE_SPLIT_DUPLICATE_TARGET',
            `${key} already appears at split[${first}]; list each target once and add the weights together`,
          );
        } else {
          seen.set(key, k);
        }
        this.target(origin, [...path, 'split', k, 'to'], service, entry.to);
      });
    }
  }

  private match(origin: Origin, path: readonly PathKey[], match: MatchDoc): void {
    const conditions = (match.headers?.length ?? 0) + (match.claim ? 1 : 0) + (match.path_prefix !== undefined ? 1 : 0);
    if (conditions === 0) {
      this.report.error(
        origin,
        path,
        'SP_RULE_MATCH_EMPTY',
        'add at least one condition (headers, claim or path_prefix), or remove match to take every request',
      );
    }
    match.headers?.forEach((header, k) => this.valueCondition(origin, [...path, 'headers', k], header));
    if (match.claim) {
      const claimPath = [...path, 'claim'];
      this.valueCondition(origin, claimPath, match.claim);
      if (!this.merged.issuers.has(match.claim.issuer)) {
        const known = [...this.merged.issuers.keys()];
        this.report.error(
          origin,
          [...claimPath, 'issuer'],
          'SP_RULE_CLAIM_ISSUER_UNKNOWN',
          `no JWT issuer "${match.claim.issuer}"${didYouMean(match.claim.issuer, known)}; define it under jwt_issuers${known.length > 0 ? ` (defined: ${known.join(', ')})` : ''}`,
        );
      }
    }
  }

  private valueCondition(origin: Origin, path: readonly PathKey[], condition: HeaderConditionDoc | ClaimConditionDoc): void {
    const given = VALUE_MATCHERS.filter((k) => condition[k] !== undefined);
    if (given.length !== 1) {
      this.report.error(
        origin,
        path,
        'SP_RULE_MATCHER_COUNT',
        given.length === 0
          ? 'say how to match: one of exact, prefix, regex, present: true, absent: true'
          : `use only one of ${given.join(' and ')} (for two conditions on one header, write two entries)`,
      );
    }
    if (condition.invert && (condition.present || condition.absent)) {
      this.report.error(
        origin,
        [...path, 'invert'],
        'SP_RULE_INVERT_PRESENCE',
        'remove invert: write absent: true instead of an inverted present: true, and the reverse',
      );
    }
    if (condition.regex !== undefined) this.regex(origin, [...path, 'regex'], condition.regex);
  }

  private regex(origin: Origin, path: readonly PathKey[], pattern: string): void {
    const error = re2Error(pattern);
    if (error !== undefined) {
      this.report.error(
        origin,
        path,
        'SP_RULE_REGEX_INVALID',
        `RE2, the regex engine Envoy runs, refuses this regex: ${error}. RE2 has no lookaround ((?=, (?!, (?<=) and no backreferences (\\1); write named groups as (?P<name>…)`,
      );
    }
  }

  private mirror(origin: Origin, path: readonly PathKey[], service: string, mirror: MirrorDoc, names: Map<string, number>, i: number): void {
    this.unique(origin, path, names, mirror.name, i, 'mirror');
    if (mirror.match) this.match(origin, [...path, 'match'], mirror.match);
    const target = resolve(service, mirror.to);
    if (target.service === service && target.subset === STABLE_SUBSET) {
      this.report.error(
        origin,
        [...path, 'to'],
        'SP_RULE_MIRROR_TO_PRIMARY',
        `mirroring "${service}" to its own stable subset sends each copied request to production a second time; mirror to a shadow subset (to: shadow)`,
      );
    }
    this.target(origin, [...path, 'to'], service, mirror.to);
    this.mirrors.push({ origin, path: [...path, 'name'], service, name: mirror.name, to: target });
    const perMillion = mirror.percent * 10_000;
    if (Math.abs(perMillion - Math.round(perMillion)) > 1e-6) {
      this.report.error(
        origin,
        [...path, 'percent'],
        'SP_RULE_MIRROR_PERCENT_PRECISION',
        `use at most 4 decimals (e.g. ${Math.max(1, Math.round(perMillion)) / 10_000}); Envoy counts mirrored requests per million`,
      );
    }
    this.duplicates(origin, [...path, 'methods'], mirror.methods);
    mirror.methods.forEach((method, k) => {
      if (method === 'CONNECT') {
        this.report.error(origin, [...path, 'methods', k], 'SP_RULE_MIRROR_METHOD', 'Envoy cannot mirror CONNECT requests; remove CONNECT from methods');
      }
    });
    const writes = mirror.methods.filter((m) => m !== 'CONNECT' && !READ_ONLY_METHODS.includes(m));
    if (writes.length > 0 && target.subset !== SHADOW_SUBSET) {
      this.report.warn(
        origin,
        [...path, 'methods'],
        'SP_RULE_MIRROR_WRITES',
        `copies of ${writes.join(', ')} requests to subset "${target.subset}" of "${target.service}" are real writes: only the sidecars of a "${SHADOW_SUBSET}" subset answer them with settings.stand_in_status; mirror writes to a ${SHADOW_SUBSET} subset, or only ${READ_ONLY_METHODS.join(', ')}`,
      );
    }
    this.duplicates(origin, [...path, 'remove_headers'], mirror.remove_headers);
    mirror.remove_headers.forEach((header, k) => {
      if (header === 'host') {
        this.report.error(
          origin,
          [...path, 'remove_headers', k],
          'SP_RULE_HEADER_NOT_REMOVABLE',
          'Envoy cannot remove the host header (mirrored requests get "-shadow" appended to it); remove host from remove_headers',
        );
      } else if (header === mirror.marker_header) {
        this.report.error(
          origin,
          [...path, 'remove_headers', k],
          'SP_RULE_MIRROR_MARKER_REMOVED',
          `${header} is this mirror's marker header, which shadow services use to tell copies apart; do not remove it`,
        );
      }
    });
  }

  /** Each route gets a variant per combination of mirror conditions: their number is bounded. */
  private mirrorConditions(origin: Origin, base: readonly PathKey[], service: string, mirrors: readonly (MirrorDoc | undefined)[]): void {
    const conditions = new Set<string>();
    mirrors.forEach((mirror, i) => {
      if (!mirror) return;
      const key = mirrorConditionKey({ methods: mirror.methods, ...(mirror.match && { match: routeMatch(mirror.match) }) });
      if (conditions.has(key)) return;
      conditions.add(key);
      if (conditions.size !== MAX_MIRROR_CONDITIONS + 1) return;
      const count = new Set(defined(mirrors).map((m) => mirrorConditionKey({ methods: m.methods, ...(m.match && { match: routeMatch(m.match) }) }))).size;
      this.report.error(
        origin,
        [...base, 'mirrors', i],
        'SP_RULE_MIRROR_CONDITIONS',
        `the mirrors of "${service}" have ${count} different conditions (methods and match), at most ${MAX_MIRROR_CONDITIONS} are allowed: every route gets a variant for each combination of them (${2 ** count - 1} per route here); give mirrors the same methods and match, or remove some`,
      );
    });
  }

  private devRoute(origin: Origin, path: readonly PathKey[], service: string, dev: DevRouteDoc, keys: Map<string, number>, i: number): void {
    const first = keys.get(dev.key);
    if (first !== undefined) {
      this.report.error(
        origin,
        [...path, 'key'],
        'SP_RULE_DUPLICATE_DEV_KEY',
        `dev route key "${dev.key}" is already used by dev_routes[${first}]; each key selects one destination`,
      );
    } else {
      keys.set(dev.key, i);
    }
    if (!dev.to.startsWith('dev-')) {
      this.report.error(
        origin,
        [...path, 'to'],
        'SP_RULE_DEV_ROUTE_SUBSET',
        `a dev route goes to a dev-* subset (e.g. dev-laptop-1), not "${dev.to}"; for other subsets write a route with a header match`,
      );
    }
    this.target(origin, [...path, 'to'], service, dev.to);
    const expires = Date.parse(dev.expires);
    const maxHours = this.merged.settings.max_dev_route_hours;
    if (expires <= this.now) {
      const message = `this dev route expired at ${new Date(expires).toISOString()}; remove it, or move expires into the next ${maxHours} hours`;
      if (this.options.expiredDevRoutes === 'warning') this.report.warn(origin, [...path, 'expires'], 'SP_RULE_DEV_ROUTE_EXPIRED', `${message} (left out meanwhile)`);
      else this.report.error(origin, [...path, 'expires'], 'SP_RULE_DEV_ROUTE_EXPIRED', message);
    } else if (expires - this.now > maxHours * 3_600_000) {
      this.report.error(
        origin,
        [...path, 'expires'],
        'SP_RULE_DEV_ROUTE_TOO_LONG',
        `dev routes last at most ${maxHours} hours (settings.max_dev_route_hours); expire it by ${new Date(this.now + maxHours * 3_600_000).toISOString()}`,
      );
    }
  }

  private issuer(origin: Origin, path: readonly PathKey[], issuer: JwtIssuerDoc): void {
    if ((issuer.jwks === undefined) === (issuer.jwks_uri === undefined)) {
      this.report.error(
        origin,
        path,
        'SP_RULE_JWKS_SOURCE',
        issuer.jwks === undefined
          ? 'say where the signing keys are: jwks (inline JSON) or jwks_uri (a URL)'
          : 'use either jwks or jwks_uri, not both',
      );
    }
    if (issuer.jwks !== undefined) {
      const problem = jwksProblem(issuer.jwks);
      if (problem) this.report.error(origin, [...path, 'jwks'], 'SP_RULE_JWKS_INVALID', `${problem}; jwks is a JSON key set: '{"keys": [{"kty": "RSA", …}]}'`);
    }
    if (issuer.audiences) this.duplicates(origin, [...path, 'audiences'], issuer.audiences);
  }

  private rateLimit(origin: Origin, path: readonly PathKey[], limit: RateLimitDoc): void {
    if (limit.burst !== undefined && limit.burst < limit.requests_per_second) {
      this.report.error(
        origin,
        [...path, 'burst'],
        'SP_RULE_RATE_LIMIT_BURST',
        `burst ${limit.burst} is below requests_per_second ${limit.requests_per_second}, so that rate can never be reached; raise burst to at least ${limit.requests_per_second}, or leave it out`,
      );
    }
  }

  private allowRule(origin: Origin, path: readonly PathKey[], rule: AllowRuleDoc): void {
    if (rule.methods) this.duplicates(origin, [...path, 'methods'], rule.methods);
    rule.paths?.forEach((p, k) => {
      const given = PATH_MATCHERS.filter((m) => p[m] !== undefined);
      if (given.length !== 1) {
        this.report.error(
          origin,
          [...path, 'paths', k],
          'SP_RULE_MATCHER_COUNT',
          given.length === 0 ? 'say how to match the path: one of prefix, exact, regex' : `use only one of ${given.join(' and ')} (write two entries for two paths)`,
        );
      }
      if (p.regex !== undefined) this.regex(origin, [...path, 'paths', k, 'regex'], p.regex);
    });
    if (rule.rate_limit) this.rateLimit(origin, [...path, 'rate_limit'], rule.rate_limit);
    if (this.options.registry && !this.options.registry.services.has(rule.service)) {
      this.report.error(origin, [...path, 'service'], 'SP_RULE_UNKNOWN_SERVICE', unknownService(rule.service, this.options.registry));
    }
  }

  private settings(): void {
    const keys = ['dev_route_header', 'tenant_header', 'caller_header'] as const;
    const { settings, settingOrigins } = this.merged;
    keys.forEach((key, i) => {
      const clash = keys.slice(0, i).find((other) => settings[other] === settings[key]);
      if (!clash) return;
      // Report where one of the two was written; a default clashes only with a written value.
      const written = settingOrigins.has(key) ? key : clash;
      const origin = settingOrigins.get(written);
      if (!origin) return;
      this.report.error(
        origin,
        ['settings', written],
        'SP_RULE_SETTINGS_HEADER_CLASH',
        `${key} and ${clash} are both "${settings[key]}"; each header has one meaning, pick another name`,
      );
    });
  }

  private duplicates(origin: Origin, path: readonly PathKey[], list: readonly string[]): void {
    list.forEach((item, k) => {
      const first = list.indexOf(item);
      if (first !== k) this.report.error(origin, [...path, k], 'SP_RULE_DUPLICATE_ITEM', `"${item}" is already listed at [${first}]; remove this one`);
    });
  }

  private target(origin: Origin, path: readonly PathKey[], service: string, to: TargetDoc): void {
    this.targets.push({ origin, path, target: resolve(service, to), explicit: typeof to !== 'string' });
  }

  private registry(registry: Registry): void {
    for (const [name, { origin }] of this.merged.services) {
      if (!registry.services.has(name)) this.report.error(origin, ['services', name], 'SP_RULE_UNKNOWN_SERVICE', unknownService(name, registry));
    }
    const referenced = new Map<string, Set<string>>();
    for (const { target } of this.targets) {
      const set = referenced.get(target.service) ?? new Set<string>();
      set.add(target.subset);
      referenced.set(target.service, set);
    }
    for (const { origin, path, target, explicit } of this.targets) {
      const service = registry.services.get(target.service);
      if (!service) {
        // A rule's own unknown service is reported once, at services.<name>.
        if (explicit) this.report.error(origin, [...path, 'service'], 'SP_RULE_UNKNOWN_SERVICE', unknownService(target.service, registry));
        continue;
      }
      if (!hasInstances(service, target.subset, referenced.get(target.service) ?? new Set(), registry.routingTags)) {
        this.report.warn(
          origin,
          path,
          'SP_RULE_SUBSET_EMPTY',
          target.subset === STABLE_SUBSET
            ? `every instance of "${target.service}" carries a routing tag, so its stable subset is empty: requests sent there fail (503) until an untagged instance registers`
            : `no instance of "${target.service}" carries the tag "${target.subset}" yet; until one registers with that tag, routes to it are left out (their requests go on to the next route), mirrors to it copy nothing, and split weight for it goes to stable`,
        );
      }
    }
  }
}

function resolve(service: string, to: TargetDoc): Target {
  return typeof to === 'string' ? { service, subset: to } : { service: to.service, subset: to.subset };
}

function unknownService(name: string, registry: Registry): string {
  const known = [...registry.services.keys()].sort();
  const list = known.length <= 12 ? ` (known: ${known.join(', ') || 'none'})` : '';
  return `the registry has no service "${name}"${didYouMean(name, known)}${list}; register it first, or fix the name`;
}

/**
 * Whether some instance is in `subset`. Tags that rules name count as routing tags
 * (a `tenant-acme` instance leaves stable once a rule routes to it), as the
 * translator builds subsets.
 */
function hasInstances(service: Service, subset: string, referenced: ReadonlySet<string>, routingTags: readonly string[] = DEFAULT_ROUTING_TAGS): boolean {
  const patterns = [...routingTags, ...[...referenced].filter((s) => s !== STABLE_SUBSET)];
  return subsetsOf(service, patterns).some((s) => s.name === subset && s.instances.length > 0);
}

function jwksProblem(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `jwks is not JSON (${err instanceof Error ? err.message : String(err)})`;
  }
  if (!isRecord(value) || !Array.isArray(value.keys)) return 'jwks has no "keys" list';
  if (value.keys.length === 0) return 'jwks has no keys, so no token could be verified';
  const bad = value.keys.findIndex((k) => !isRecord(k) || typeof k.kty !== 'string');
  if (bad >= 0) return `keys[${bad}] is not a JSON Web Key (it needs at least "kty")`;
  return undefined;
}

// ---------------------------------------------------------------------------------
// Pass 3: the rule set.

function valueMatch(c: HeaderConditionDoc | ClaimConditionDoc): ValueMatch {
  if (c.exact !== undefined) return { kind: 'exact', value: c.exact };
  if (c.prefix !== undefined) return { kind: 'prefix', value: c.prefix };
  if (c.regex !== undefined) return { kind: 'regex', value: c.regex };
  if (c.absent) return { kind: 'absent' };
  return { kind: 'present' };
}

function routeMatch(m: MatchDoc): RouteMatch {
  return {
    headers: (m.headers ?? []).map((h) => ({ name: h.name, match: valueMatch(h), invert: h.invert })),
    ...(m.claim && { claim: { issuer: m.claim.issuer, claim: m.claim.name, match: valueMatch(m.claim), invert: m.claim.invert } }),
    ...(m.path_prefix !== undefined && { path_prefix: m.path_prefix }),
  };
}

const rateLimit = (l: RateLimitDoc): RateLimit => ({ requests_per_second: l.requests_per_second, burst: l.burst ?? l.requests_per_second });

function pathMatch(p: PathMatchDoc): PathMatch {
  if (p.prefix !== undefined) return { kind: 'prefix', value: p.prefix };
  if (p.exact !== undefined) return { kind: 'exact', value: p.exact };
  return { kind: 'regex', value: p.regex ?? '' };
}

const defined = <T>(list: readonly (T | undefined)[]): T[] => list.filter((x): x is T => x !== undefined);
const byKey = <T>(entries: [string, T][]): Record<string, T> => Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

function buildRuleSet(merged: Merged, now: number, dropExpired: boolean): RuleSet {
  const services = [...merged.services].map(([name, { value }]): [string, ServiceRules] => [
    name,
    {
      routes: defined(value.routes).map((r): Route => {
        const base = { name: r.name, ...(r.match && { match: routeMatch(r.match) }) };
        return r.to !== undefined
          ? { ...base, to: resolve(name, r.to) }
          : { ...base, split: (r.split ?? []).map((e) => ({ to: resolve(name, e.to), weight: e.weight })) };
      }),
      mirrors: defined(value.mirrors).map((m) => ({
        name: m.name,
        ...(m.match && { match: routeMatch(m.match) }),
        to: resolve(name, m.to),
        percent: m.percent,
        methods: m.methods,
        marker_header: m.marker_header,
        remove_headers: m.remove_headers,
      })),
      dev_routes: defined(value.dev_routes)
        .filter((d) => !dropExpired || Date.parse(d.expires) > now)
        .map((d) => ({ key: d.key, to: resolve(name, d.to), owner: d.owner, expires: new Date(Date.parse(d.expires)).toISOString() })),
      tenant_routes: defined(value.tenant_routes).map((t) => ({ tenant: t.tenant, to: resolve(name, t.to) })),
    },
  ]);
  const issuers = [...merged.issuers].flatMap(([name, { value }]): [string, JwtIssuer][] => {
    if (!value) return [];
    const audiences = value.audiences ?? [];
    return [[name, value.jwks !== undefined ? { issuer: value.issuer, audiences, jwks: value.jwks } : { issuer: value.issuer, audiences, jwks_uri: value.jwks_uri ?? '' }]];
  });
  const gateway: AccessGateway | undefined = merged.gateway
    ? {
        ...(merged.gatewayRateLimit && { rate_limit: rateLimit(merged.gatewayRateLimit.value) }),
        allow: defined(merged.allow.map((a) => a.rule)).map((r) => ({
          service: r.service,
          methods: r.methods ?? [],
          paths: (r.paths ?? []).map(pathMatch),
          ...(r.rate_limit && { rate_limit: rateLimit(r.rate_limit) }),
        })),
      }
    : undefined;
  return {
    services: byKey(services),
    jwt_issuers: byKey(issuers),
    ...(gateway && { access_gateway: gateway }),
    settings: { ...merged.settings },
  };
}

// ---------------------------------------------------------------------------------
// Entry points.

/**
 * Validates several documents as one rule set: shape, semantics, conflicts between
 * documents and (with a registry) references to services and subsets. Collects every
 * problem; the rule set is present only when there is no error.
 */
export function validateRules(inputs: readonly RuleInput[], options: ValidateOptions = {}): RuleValidation {
  const report = new Report();
  for (const input of inputs) report.errors.push(...shapeProblems(input));
  const merged = merge(inputs.map(salvage), report);
  const now = (options.now ?? new Date()).getTime();
  new Checker(report, merged, options, now).run();
  const ruleSet = report.errors.length === 0 ? buildRuleSet(merged, now, options.expiredDevRoutes === 'warning') : undefined;
  const order = inDocumentOrder(inputs);
  return { ruleSet, errors: order(report.errors), warnings: order(report.warnings) };
}

/** Problems sorted as a reader meets them: by document, then line and column. */
function inDocumentOrder(inputs: readonly RuleInput[]): (problems: readonly RuleProblem[]) => RuleProblem[] {
  const rank = new Map(inputs.map((input, i) => [input.source, i]));
  const position = (p: RuleProblem): [number, number] => {
    const m = /:(\d+):(\d+)$/.exec(p.at);
    return m ? [Number(m[1]), Number(m[2])] : [0, 0];
  };
  return (problems) =>
    problems
      .map((p, i) => ({ p, i, doc: rank.get(p.source) ?? 0, at: position(p) }))
      .sort((a, b) => a.doc - b.doc || a.at[0] - b.at[0] || a.at[1] - b.at[1] || a.i - b.i)
      .map(({ p }) => p);
}

/**
 * Merges documents that each passed validation into one rule set. Only conflicts
 * between documents are checked (a service or issuer defined twice, a setting set
 * differently); the first definition wins. Use validateRules for everything else.
 */
export function mergeRuleDocuments(documents: readonly { source: string; document: RuleDocument }[]): { ruleSet: RuleSet; errors: RuleProblem[] } {
  const report = new Report();
  const merged = merge(
    documents.map((d) => salvage({ source: d.source, value: d.document })),
    report,
  );
  return { ruleSet: buildRuleSet(merged, 0, false), errors: report.errors };
}

/** Every { service, subset } a rule sends traffic to, sorted and each once: the subsets the translator must build. */
export function subsetsReferenced(ruleSet: RuleSet): Target[] {
  const seen = new Map<string, Target>();
  const add = (t: Target) => seen.set(`${t.service}\u0000${t.subset}`, t);
  for (const rules of Object.values(ruleSet.services)) {
    for (const route of rules.routes) {
      if ('to' in route) add(route.to);
      else route.split.forEach((e) => add(e.to));
    }
    rules.mirrors.forEach((m) => add(m.to));
    rules.dev_routes.forEach((d) => add(d.to));
    rules.tenant_routes.forEach((t) => add(t.to));
  }
  return [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, t]) => t);
}
