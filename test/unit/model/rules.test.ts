import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { re2Error } from '../../../src/model/re2.js';
import { DEFAULT_SETTINGS, type RuleDocument } from '../../../src/model/rules.js';
import type { Instance, Registry } from '../../../src/model/types.js';
import {
  RULE_CODES,
  formatProblem,
  mergeRuleDocuments,
  readRuleText,
  subsetsReferenced,
  validateRuleFile,
  validateRules,
  type RuleCode,
  type RuleInput,
  type RuleValidation,
  type ValidateOptions,
} from '../../../src/model/validate-rules.js';
import { loadRegistryDir } from '../../../src/sources/file-registry.js';

// ---------------------------------------------------------------------------------
// Inputs by name.

const NOW = new Date('2026-01-01T00:00:00Z');
const hoursFromNow = (h: number): string => new Date(NOW.getTime() + h * 3_600_000).toISOString();

/** `{ api: ['', 'beta'] }`: service api with one untagged and one beta instance. */
function registryOf(services: Record<string, string[]>): Registry {
  return {
    services: new Map(
      Object.entries(services).map(([name, tagLists]) => [
        name,
        {
          name,
          instances: tagLists.map(
            (tags, i): Instance => ({ id: `${name}-${i}`, address: '127.0.0.1', port: 9000 + i, tags: tags ? tags.split(',') : [], meta: {} }),
          ),
        },
      ]),
    ),
  };
}

const REGISTRY = registryOf({ api: ['', '', 'beta', 'shadow', 'dev-laptop-1', 'tenant-acme'], web: [''] });

const api = (rules: object): object => ({ services: { api: rules } });
const header = (over: object = {}): object => ({ name: 'x-beta', exact: 'true', ...over });
const route = (over: object = {}): object => ({ name: 'beta-users', match: { headers: [header()] }, to: 'beta', ...over });
const mirror = (over: object = {}): object => ({ name: 'shadow-10', to: 'shadow', percent: 10, ...over });
/** `n` mirrors of api to its shadow, each on its own path: n different conditions. */
const mirrorsOnPaths = (n: number): object[] => Array.from({ length: n }, (_, i) => mirror({ name: `m${i}`, match: { path_prefix: `/p${i}/` } }));
const devRoute = (over: object = {}): object => ({ key: 'laptop-1', to: 'dev-laptop-1', owner: 'alice@example.com', expires: hoursFromNow(2), ...over });
const issuer = (over: object = {}): object => ({ issuer: 'https://auth.example.test', jwks: JSON.stringify({ keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB' }] }), ...over });
const gateway = (allow: object[], over: object = {}): object => ({ access_gateway: { allow, ...over } });

/** Files by name (objects are written as YAML, so every problem has a line), validated as one rule set. */
function validate(files: Record<string, object | string>, options: ValidateOptions = {}): RuleValidation {
  const inputs: RuleInput[] = [];
  const syntax = [];
  for (const [name, doc] of Object.entries(files)) {
    const read = readRuleText(name, typeof doc === 'string' ? doc : stringify(doc));
    syntax.push(...read.errors);
    if (read.input) inputs.push(read.input);
  }
  const result = validateRules(inputs, { registry: REGISTRY, now: NOW, ...options });
  return { ruleSet: syntax.length > 0 ? undefined : result.ruleSet, errors: [...syntax, ...result.errors], warnings: result.warnings };
}

// ---------------------------------------------------------------------------------
// One row per way to be wrong; every code has at least one row.

interface Refusal {
  name: string;
  files: Record<string, object | string>;
  code: RuleCode;
  path: string;
  /** Default x.yaml. */
  source?: string;
  warning?: boolean;
  message?: RegExp;
  /** Other codes the input also (rightly) triggers. */
  also?: RuleCode[];
}

const x = (doc: object | string): Record<string, object | string> => ({ 'x.yaml': doc });

const refusals: Refusal[] = [
  // shape
  { name: 'half-written YAML', files: x('services:\n  api: [\n'), code: 'SP_RULE_YAML_SYNTAX', path: '' },
  { name: 'a typo in a key', files: x(api({ routs: [] })), code: 'SP_RULE_UNKNOWN_KEY', path: 'services.api.routs', message: /did you mean "routes"/ },
  { name: 'claim_headers, which the translator derives', files: x({ jwt_issuers: { main: issuer({ claim_headers: {} }) } }), code: 'SP_RULE_UNKNOWN_KEY', path: 'jwt_issuers.main.claim_headers' },
  { name: 'a route without a name', files: x(api({ routes: [{ to: 'beta' }] })), code: 'SP_RULE_REQUIRED', path: 'services.api.routes[0].name' },
  { name: 'a mirror without percent', files: x(api({ mirrors: [{ name: 'm', to: 'shadow' }] })), code: 'SP_RULE_REQUIRED', path: 'services.api.mirrors[0].percent' },
  {
    name: 'an unquoted true',
    files: x(api({ routes: [route({ match: { headers: [header({ exact: true })] } })] })),
    code: 'SP_RULE_WRONG_TYPE',
    path: 'services.api.routes[0].match.headers[0].exact',
    message: /quote it: "true"/,
  },
  { name: 'a number as a target', files: x(api({ routes: [route({ to: 5 })] })), code: 'SP_RULE_WRONG_TYPE', path: 'services.api.routes[0].to' },
  { name: 'routes as a mapping', files: x(api({ routes: { a: 1 } })), code: 'SP_RULE_WRONG_TYPE', path: 'services.api.routes', message: /expected a list/ },
  { name: 'a list as the document', files: x('- services\n'), code: 'SP_RULE_WRONG_TYPE', path: '' },
  { name: 'an upper-case header name', files: x(api({ routes: [route({ match: { headers: [header({ name: 'X-Beta' })] } })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.routes[0].match.headers[0].name' },
  { name: 'a pseudo-header', files: x(api({ routes: [route({ match: { headers: [header({ name: ':path' })] } })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.routes[0].match.headers[0].name', message: /pseudo-headers/ },
  { name: 'an upper-case service name', files: x({ services: { Api: {} } }), code: 'SP_RULE_INVALID_VALUE', path: 'services.Api', also: ['SP_RULE_UNKNOWN_SERVICE'] },
  { name: 'a route name with an underscore', files: x(api({ routes: [route({ name: 'beta_users' })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.routes[0].name' },
  { name: 'an upper-case subset', files: x(api({ routes: [route({ to: 'Beta' })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.routes[0].to' },
  { name: 'a target object with a bad subset', files: x(api({ routes: [route({ to: { service: 'api', subset: 'B' } })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.routes[0].to.subset' },
  { name: 'a fractional weight', files: x(api({ routes: [route({ to: undefined, split: [{ to: 'beta', weight: 1.5 }] })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.routes[0].split[0].weight' },
  { name: 'a weight above 10000', files: x(api({ routes: [route({ to: undefined, split: [{ to: 'beta', weight: 10_001 }] })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.routes[0].split[0].weight' },
  { name: 'a percent of 0', files: x(api({ mirrors: [mirror({ percent: 0 })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.mirrors[0].percent' },
  { name: 'a percent above 100', files: x(api({ mirrors: [mirror({ percent: 150 })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.mirrors[0].percent' },
  { name: 'a lower-case method', files: x(api({ mirrors: [mirror({ methods: ['get'] })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.mirrors[0].methods[0]' },
  { name: 'a path prefix without /', files: x(api({ routes: [route({ match: { path_prefix: 'v2/' } })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.routes[0].match.path_prefix' },
  { name: 'present: false', files: x(api({ routes: [route({ match: { headers: [{ name: 'x-beta', present: false }] } })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.routes[0].match.headers[0].present' },
  { name: 'an expiry without timezone', files: x(api({ dev_routes: [devRoute({ expires: '2026-01-01T02:00:00' })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.dev_routes[0].expires' },
  { name: 'a dev key with a space', files: x(api({ dev_routes: [devRoute({ key: 'laptop 1' })] })), code: 'SP_RULE_INVALID_VALUE', path: 'services.api.dev_routes[0].key' },
  { name: 'a jwks_uri that is not http(s)', files: x({ jwt_issuers: { main: issuer({ jwks: undefined, jwks_uri: 'ftp://keys.example.test' }) } }), code: 'SP_RULE_INVALID_VALUE', path: 'jwt_issuers.main.jwks_uri' },
  { name: 'a stand-in status of 99', files: x({ settings: { stand_in_status: 99 } }), code: 'SP_RULE_INVALID_VALUE', path: 'settings.stand_in_status' },

  // conditions
  { name: 'a header with exact and prefix', files: x(api({ routes: [route({ match: { headers: [header({ prefix: 'tr' })] } })] })), code: 'SP_RULE_MATCHER_COUNT', path: 'services.api.routes[0].match.headers[0]' },
  { name: 'a header with no matcher', files: x(api({ routes: [route({ match: { headers: [{ name: 'x-beta' }] } })] })), code: 'SP_RULE_MATCHER_COUNT', path: 'services.api.routes[0].match.headers[0]' },
  {
    name: 'a claim with exact and present',
    files: x({ ...api({ routes: [route({ match: { claim: { issuer: 'main', name: 'beta', exact: 'true', present: true } } })] }), jwt_issuers: { main: issuer() } }),
    code: 'SP_RULE_MATCHER_COUNT',
    path: 'services.api.routes[0].match.claim',
  },
  { name: 'a gateway path with prefix and exact', files: x(gateway([{ service: 'api', paths: [{ prefix: '/v1/', exact: '/v1' }] }])), code: 'SP_RULE_MATCHER_COUNT', path: 'access_gateway.allow[0].paths[0]' },
  { name: 'a gateway path with no matcher', files: x(gateway([{ service: 'api', paths: [{}] }])), code: 'SP_RULE_MATCHER_COUNT', path: 'access_gateway.allow[0].paths[0]' },
  {
    name: 'invert with present',
    files: x(api({ routes: [route({ match: { headers: [{ name: 'x-beta', present: true, invert: true }] } })] })),
    code: 'SP_RULE_INVERT_PRESENCE',
    path: 'services.api.routes[0].match.headers[0].invert',
  },
  {
    name: 'a lookahead, which JavaScript accepts',
    files: x(api({ routes: [route({ match: { headers: [{ name: 'x-beta', regex: 'a(?=b)' }] } })] })),
    code: 'SP_RULE_REGEX_INVALID',
    path: 'services.api.routes[0].match.headers[0].regex',
    message: /invalid perl operator: \(\?=/,
  },
  {
    name: 'a backreference',
    files: x(api({ routes: [route({ match: { headers: [{ name: 'x-beta', regex: '(a)\\1' }] } })] })),
    code: 'SP_RULE_REGEX_INVALID',
    path: 'services.api.routes[0].match.headers[0].regex',
    message: /invalid escape sequence: \\1/,
  },
  {
    name: 'a bad claim regex',
    files: x({ ...api({ routes: [route({ match: { claim: { issuer: 'main', name: 'plan', regex: '[' } } })] }), jwt_issuers: { main: issuer() } }),
    code: 'SP_RULE_REGEX_INVALID',
    path: 'services.api.routes[0].match.claim.regex',
  },
  { name: 'a bad gateway path regex', files: x(gateway([{ service: 'api', paths: [{ regex: '/v1/(?!admin)' }] }])), code: 'SP_RULE_REGEX_INVALID', path: 'access_gateway.allow[0].paths[0].regex' },
  { name: 'an empty match', files: x(api({ routes: [route({ match: {} })] })), code: 'SP_RULE_MATCH_EMPTY', path: 'services.api.routes[0].match' },
  { name: 'a match with an empty header list', files: x(api({ mirrors: [mirror({ match: { headers: [] } })] })), code: 'SP_RULE_MATCH_EMPTY', path: 'services.api.mirrors[0].match' },
  {
    name: 'a claim naming an undefined issuer',
    files: x({ ...api({ routes: [route({ match: { claim: { issuer: 'mian', name: 'beta', exact: 'true' } } })] }), jwt_issuers: { main: issuer() } }),
    code: 'SP_RULE_CLAIM_ISSUER_UNKNOWN',
    path: 'services.api.routes[0].match.claim.issuer',
    message: /did you mean "main"/,
  },

  // routes
  { name: 'a route with neither to nor split', files: x(api({ routes: [route({ to: undefined })] })), code: 'SP_RULE_ROUTE_ACTION', path: 'services.api.routes[0]' },
  { name: 'a route with to and split', files: x(api({ routes: [route({ split: [{ to: 'beta', weight: 1 }] })] })), code: 'SP_RULE_ROUTE_ACTION', path: 'services.api.routes[0]' },
  {
    name: 'a split whose weights add up to 0',
    files: x(api({ routes: [route({ to: undefined, split: [{ to: 'beta', weight: 0 }, { to: 'stable', weight: 0 }] })] })),
    code: 'SP_RULE_SPLIT_WEIGHT_ZERO',
    path: 'services.api.routes[0].split',
  },
  {
    name: 'a split naming a target twice, in both forms',
    files: x(api({ routes: [route({ to: undefined, split: [{ to: 'beta', weight: 5 }, { to: { service: 'api', subset: 'beta' }, weight: 5 }] })] })),
    code: 'SP_RULE_SPLIT_DUPLICATE_TARGET',
    path: 'services.api.routes[0].split[1].to',
  },
  {
    name: 'a route after a route without match',
    files: x(api({ routes: [{ name: 'everyone', to: 'beta' }, route()] })),
    code: 'SP_RULE_ROUTE_UNREACHABLE',
    path: 'services.api.routes[1]',
  },
  { name: 'two routes with one name', files: x(api({ routes: [route(), route()] })), code: 'SP_RULE_DUPLICATE_NAME', path: 'services.api.routes[1].name' },
  { name: 'two mirrors with one name', files: x(api({ mirrors: [mirror(), mirror({ percent: 1 })] })), code: 'SP_RULE_DUPLICATE_NAME', path: 'services.api.mirrors[1].name' },

  // mirrors
  { name: 'a method listed twice', files: x(api({ mirrors: [mirror({ methods: ['GET', 'GET'] })] })), code: 'SP_RULE_DUPLICATE_ITEM', path: 'services.api.mirrors[0].methods[1]' },
  { name: 'an audience listed twice', files: x({ jwt_issuers: { main: issuer({ audiences: ['shop', 'shop'] }) } }), code: 'SP_RULE_DUPLICATE_ITEM', path: 'jwt_issuers.main.audiences[1]' },
  { name: 'five decimals of percent', files: x(api({ mirrors: [mirror({ percent: 0.00005 })] })), code: 'SP_RULE_MIRROR_PERCENT_PRECISION', path: 'services.api.mirrors[0].percent' },
  { name: 'a mirror to its own stable subset', files: x(api({ mirrors: [mirror({ to: 'stable' })] })), code: 'SP_RULE_MIRROR_TO_PRIMARY', path: 'services.api.mirrors[0].to' },
  {
    name: 'a mirror to its own stable subset, spelled out',
    files: x(api({ mirrors: [mirror({ to: { service: 'api', subset: 'stable' } })] })),
    code: 'SP_RULE_MIRROR_TO_PRIMARY',
    path: 'services.api.mirrors[0].to',
  },
  {
    name: 'a mirror of writes to a subset that does not stand in for them',
    files: x(api({ mirrors: [mirror({ to: 'beta', methods: ['GET', 'POST', 'DELETE'] })] })),
    code: 'SP_RULE_MIRROR_WRITES',
    path: 'services.api.mirrors[0].methods',
    message: /POST, DELETE requests to subset "beta" of "api" are real writes/,
    warning: true,
  },
  { name: 'mirroring CONNECT', files: x(api({ mirrors: [mirror({ methods: ['GET', 'CONNECT'] })] })), code: 'SP_RULE_MIRROR_METHOD', path: 'services.api.mirrors[0].methods[1]' },
  {
    name: 'a mirror removing its marker',
    files: x(api({ mirrors: [mirror({ marker_header: 'x-copy', remove_headers: ['authorization', 'x-copy'] })] })),
    code: 'SP_RULE_MIRROR_MARKER_REMOVED',
    path: 'services.api.mirrors[0].remove_headers[1]',
  },
  { name: 'a mirror removing host', files: x(api({ mirrors: [mirror({ remove_headers: ['host'] })] })), code: 'SP_RULE_HEADER_NOT_REMOVABLE', path: 'services.api.mirrors[0].remove_headers[0]' },
  {
    name: 'mirrors with seven different conditions',
    files: x(api({ mirrors: mirrorsOnPaths(7) })),
    code: 'SP_RULE_MIRROR_CONDITIONS',
    path: 'services.api.mirrors[6]',
    message: /7 different conditions .*at most 6 .*127 per route/,
  },

  // dev and tenant routes
  { name: 'a dev route to beta', files: x(api({ dev_routes: [devRoute({ to: 'beta' })] })), code: 'SP_RULE_DEV_ROUTE_SUBSET', path: 'services.api.dev_routes[0].to' },
  { name: 'a dev route that expired', files: x(api({ dev_routes: [devRoute({ expires: hoursFromNow(-1) })] })), code: 'SP_RULE_DEV_ROUTE_EXPIRED', path: 'services.api.dev_routes[0].expires' },
  { name: 'a dev route expiring now', files: x(api({ dev_routes: [devRoute({ expires: hoursFromNow(0) })] })), code: 'SP_RULE_DEV_ROUTE_EXPIRED', path: 'services.api.dev_routes[0].expires' },
  { name: 'a dev route for 25 hours', files: x(api({ dev_routes: [devRoute({ expires: hoursFromNow(25) })] })), code: 'SP_RULE_DEV_ROUTE_TOO_LONG', path: 'services.api.dev_routes[0].expires' },
  {
    name: 'a dev route longer than a lowered maximum',
    files: x({ ...api({ dev_routes: [devRoute({ expires: hoursFromNow(3) })] }), settings: { max_dev_route_hours: 2 } }),
    code: 'SP_RULE_DEV_ROUTE_TOO_LONG',
    path: 'services.api.dev_routes[0].expires',
  },
  { name: 'two dev routes with one key', files: x(api({ dev_routes: [devRoute(), devRoute()] })), code: 'SP_RULE_DUPLICATE_DEV_KEY', path: 'services.api.dev_routes[1].key' },
  {
    name: 'two routes for one tenant',
    files: x(api({ tenant_routes: [{ tenant: 'acme', to: 'tenant-acme' }, { tenant: 'acme', to: 'beta' }] })),
    code: 'SP_RULE_DUPLICATE_TENANT',
    path: 'services.api.tenant_routes[1].tenant',
  },

  // names Envoy sees
  {
    name: 'two services mirroring one target under one mirror name',
    files: { 'a.yaml': api({ mirrors: [mirror()] }), 'b.yaml': { services: { web: { mirrors: [mirror({ to: { service: 'api', subset: 'shadow' } })] } } } },
    code: 'SP_RULE_NAME_CLASH',
    path: 'services.web.mirrors[0].name',
    source: 'b.yaml',
    message: /mirror "shadow-10" of "web" would be the Envoy cluster "api\.shadow\.mirror-shadow-10", and so would mirror "shadow-10" of "api" \(a\.yaml:\d+:\d+\)/,
  },
  {
    name: "a mirror to a service's stable subset, named like one of its subsets",
    files: x({ services: { api: { routes: [route({ to: 'mirror-copy' })] }, web: { mirrors: [mirror({ name: 'copy', to: { service: 'api', subset: 'stable' } })] } } }),
    code: 'SP_RULE_NAME_CLASH',
    path: 'services.web.mirrors[0].name',
    message: /"api\.mirror-copy", and so would the cluster of subset "mirror-copy" of "api"/,
  },
  {
    name: "a JWT issuer's key set cluster, named like a subset",
    files: x({
      services: { api: { routes: [route({ to: { service: 'jwks', subset: 'main' } })] } },
      jwt_issuers: { main: issuer({ jwks: undefined, jwks_uri: 'https://auth.example.test/jwks' }) },
    }),
    code: 'SP_RULE_NAME_CLASH',
    path: 'jwt_issuers.main',
    message: /"jwks\.main"/,
    also: ['SP_RULE_UNKNOWN_SERVICE'],
  },

  {
    name: 'a route named like the route of a dev route',
    files: x(api({ routes: [route({ name: 'dev-laptop-1' })], dev_routes: [devRoute()] })),
    code: 'SP_RULE_ROUTE_NAME_CLASH',
    path: 'services.api.routes[0].name',
    warning: true,
    message: /two routes named "api\/dev-laptop-1", this one and the route of dev_routes\[0\]/,
  },
  {
    name: 'a route named stable',
    files: x(api({ routes: [route({ name: 'stable' })] })),
    code: 'SP_RULE_ROUTE_NAME_CLASH',
    path: 'services.api.routes[0].name',
    warning: true,
    message: /"api\/stable", this one and the route to its stable subset/,
  },

  // issuers, gateway, settings
  { name: 'an issuer without keys', files: x({ jwt_issuers: { main: issuer({ jwks: undefined }) } }), code: 'SP_RULE_JWKS_SOURCE', path: 'jwt_issuers.main' },
  { name: 'an issuer with jwks and jwks_uri', files: x({ jwt_issuers: { main: issuer({ jwks_uri: 'https://auth.example.test/jwks' }) } }), code: 'SP_RULE_JWKS_SOURCE', path: 'jwt_issuers.main' },
  { name: 'jwks that is not JSON', files: x({ jwt_issuers: { main: issuer({ jwks: '{keys: []' }) } }), code: 'SP_RULE_JWKS_INVALID', path: 'jwt_issuers.main.jwks', message: /not JSON/ },
  { name: 'jwks without a keys list', files: x({ jwt_issuers: { main: issuer({ jwks: '{"kty": "RSA"}' }) } }), code: 'SP_RULE_JWKS_INVALID', path: 'jwt_issuers.main.jwks' },
  { name: 'jwks with no keys', files: x({ jwt_issuers: { main: issuer({ jwks: '{"keys": []}' }) } }), code: 'SP_RULE_JWKS_INVALID', path: 'jwt_issuers.main.jwks' },
  { name: 'jwks with a key without kty', files: x({ jwt_issuers: { main: issuer({ jwks: '{"keys": [{"n": "x"}]}' }) } }), code: 'SP_RULE_JWKS_INVALID', path: 'jwt_issuers.main.jwks', message: /keys\[0\]/ },
  {
    name: 'a gateway burst below the rate',
    files: x(gateway([], { rate_limit: { requests_per_second: 10, burst: 5 } })),
    code: 'SP_RULE_RATE_LIMIT_BURST',
    path: 'access_gateway.rate_limit.burst',
  },
  {
    name: 'a rule burst below the rate',
    files: x(gateway([{ service: 'api', rate_limit: { requests_per_second: 3, burst: 1 } }])),
    code: 'SP_RULE_RATE_LIMIT_BURST',
    path: 'access_gateway.allow[0].rate_limit.burst',
  },
  { name: 'the tenant header set to the dev route header', files: x({ settings: { tenant_header: 'x-dev-route' } }), code: 'SP_RULE_SETTINGS_HEADER_CLASH', path: 'settings.tenant_header' },
  {
    name: 'the caller header set to the tenant header',
    files: x({ settings: { caller_header: 'x-org', tenant_header: 'x-org' } }),
    code: 'SP_RULE_SETTINGS_HEADER_CLASH',
    path: 'settings.caller_header',
  },

  // several documents
  {
    name: 'a service in two files',
    files: { 'a.yaml': api({ routes: [route()] }), 'b.yaml': api({ mirrors: [mirror()] }) },
    code: 'SP_RULE_DEFINED_TWICE',
    path: 'services.api',
    source: 'b.yaml',
    message: /also defined at a\.yaml:2:3/,
  },
  {
    name: 'an issuer in two files',
    files: { 'a.yaml': { jwt_issuers: { main: issuer() } }, 'b.yaml': { jwt_issuers: { main: issuer() } } },
    code: 'SP_RULE_DEFINED_TWICE',
    path: 'jwt_issuers.main',
    source: 'b.yaml',
  },
  {
    name: 'a setting with two values',
    files: { 'a.yaml': { settings: { tenant_header: 'x-org' } }, 'b.yaml': { settings: { tenant_header: 'x-team' } } },
    code: 'SP_RULE_VALUE_CONFLICT',
    path: 'settings.tenant_header',
    source: 'b.yaml',
    message: /"x-team" here but "x-org" at a\.yaml/,
  },
  {
    name: 'two gateway rate limits',
    files: { 'a.yaml': gateway([], { rate_limit: { requests_per_second: 1 } }), 'b.yaml': gateway([], { rate_limit: { requests_per_second: 2 } }) },
    code: 'SP_RULE_VALUE_CONFLICT',
    path: 'access_gateway.rate_limit',
    source: 'b.yaml',
  },

  // the registry
  { name: 'rules for an unknown service', files: x({ services: { apii: {} } }), code: 'SP_RULE_UNKNOWN_SERVICE', path: 'services.apii', message: /did you mean "api"/ },
  {
    name: 'a route to an unknown service',
    files: x(api({ routes: [route({ to: { service: 'payments', subset: 'stable' } })] })),
    code: 'SP_RULE_UNKNOWN_SERVICE',
    path: 'services.api.routes[0].to.service',
  },
  {
    name: 'a mirror to an unknown service',
    files: x(api({ mirrors: [mirror({ to: { service: 'payments', subset: 'shadow' } })] })),
    code: 'SP_RULE_UNKNOWN_SERVICE',
    path: 'services.api.mirrors[0].to.service',
  },
  { name: 'a gateway rule for an unknown service', files: x(gateway([{ service: 'payments' }])), code: 'SP_RULE_UNKNOWN_SERVICE', path: 'access_gateway.allow[0].service' },
  { name: 'a route to a subset nobody carries yet', files: x(api({ routes: [route({ to: 'canary' })] })), code: 'SP_RULE_SUBSET_EMPTY', path: 'services.api.routes[0].to', warning: true },
  { name: 'a dev route to a laptop not registered yet', files: x(api({ dev_routes: [devRoute({ to: 'dev-laptop-2' })] })), code: 'SP_RULE_SUBSET_EMPTY', path: 'services.api.dev_routes[0].to', warning: true },
  {
    name: "a route to another service's empty stable subset",
    files: x(api({ routes: [route({ to: { service: 'tagged', subset: 'stable' } })] })),
    code: 'SP_RULE_SUBSET_EMPTY',
    path: 'services.api.routes[0].to',
    warning: true,
  },
];

describe('rule validation refuses', () => {
  const registry = registryOf({ ...Object.fromEntries([...REGISTRY.services].map(([n, s]) => [n, s.instances.map((i) => i.tags.join(','))])), tagged: ['beta'] });

  it.each(refusals)('$name with $code at $path', ({ files, code, path: at, source = 'x.yaml', warning, message, also = [] }) => {
    const result = validate(files, { registry });
    const problems = warning ? result.warnings : result.errors;
    const hit = problems.find((p) => p.code === code && p.path === at);
    expect(hit, `problems were:\n${[...result.errors, ...result.warnings].map(formatProblem).join('\n')}`).toBeDefined();
    expect(hit!.source).toBe(source);
    expect(hit!.at).toMatch(new RegExp(`^${source.replace('.', '\\.')}:\\d+:\\d+$`));
    if (message) expect(hit!.message).toMatch(message);
    // The input is wrong in that one way only: no other problem of that severity.
    expect(problems.map((p) => p.code).filter((c) => c !== code && !also.includes(c))).toEqual([]);
    if (warning) expect(result.errors).toEqual([]);
    expect(result.ruleSet === undefined).toBe(!warning);
  });

  it('has a row for every code, and the docs a line for every code', () => {
    // Produced by the admin API's dry-run translation, tested in test/unit/admin/server.test.ts.
    const tested = new Set<string>([...refusals.map((r) => r.code), 'SP_RULE_ENVOY_REJECTS']);
    expect(Object.keys(RULE_CODES).filter((c) => !tested.has(c as RuleCode))).toEqual([]);
    const docs = readFileSync('docs/rules.md', 'utf8');
    expect(Object.keys(RULE_CODES).filter((c) => !docs.includes(`| \`${c}\` |`))).toEqual([]);
  });
});

describe('rule validation', () => {
  it('refuses clashing cluster names without a registry too, as rules are loaded', () => {
    const files = { 'a.yaml': api({ mirrors: [mirror()] }), 'b.yaml': { services: { web: { mirrors: [mirror({ to: { service: 'api', subset: 'shadow' } })] } } } };
    const inputs = Object.entries(files).map(([name, doc]) => readRuleText(name, stringify(doc)).input!);
    const result = validateRules(inputs, { now: NOW });
    expect(result.ruleSet).toBeUndefined();
    expect(result.errors.map((e) => `${e.source} ${e.code} ${e.path}`)).toEqual(['b.yaml SP_RULE_NAME_CLASH services.web.mirrors[0].name']);
    // Two mirrors to one target under different names, and two rules to one subset, are fine.
    const renamed = { ...files, 'b.yaml': { services: { web: { mirrors: [mirror({ name: 'web-shadow-10', to: { service: 'api', subset: 'shadow' } })], routes: [route({ to: { service: 'api', subset: 'shadow' } })] } } } };
    const ok = validateRules(Object.entries(renamed).map(([name, doc]) => readRuleText(name, stringify(doc)).input!), { now: NOW });
    expect(ok.errors).toEqual([]);
  });

  it('takes up to six different mirror conditions a service, however many mirrors share them', () => {
    const six = validate(x(api({ mirrors: mirrorsOnPaths(6) })));
    expect(six.errors).toEqual([]);
    // Forty mirrors, two conditions: mirrors with one condition share their routes.
    const shared = Array.from({ length: 40 }, (_, i) => mirror({ name: `m${i}`, percent: 1, ...(i % 2 === 0 && { methods: ['POST'] }) }));
    expect(validate(x(api({ mirrors: shared }))).errors).toEqual([]);
    // Conditions are compared as the translator groups them: key order and defaults do not count.
    const same = [
      mirror({ name: 'a', match: { headers: [{ name: 'x-a', exact: '1' }] }, methods: ['HEAD', 'GET'] }),
      mirror({ name: 'b', match: { headers: [{ exact: '1', name: 'x-a', invert: false }] }, methods: ['GET', 'HEAD'] }),
    ];
    const sameKey = validate(x(api({ mirrors: [...mirrorsOnPaths(5), ...same] })));
    expect(sameKey.errors).toEqual([]);
  });

  it('collects every problem of every file, not just the first, in reading order', () => {
    const result = validate({
      'a.yaml': api({
        routs: [],
        routes: [route({ name: 'Bad' }), route({ match: { headers: [{ name: 'x-a', regex: 'a(?=b)' }] } }), route({ name: 'r2', to: undefined })],
        mirrors: [mirror({ percent: 0.00001 })],
      }),
      'b.yaml': { settings: { tenant_header: 'x-caller' } },
    });
    expect(result.errors.map((p) => `${p.source} ${p.code} ${p.path}`)).toEqual([
      'a.yaml SP_RULE_UNKNOWN_KEY services.api.routs',
      'a.yaml SP_RULE_INVALID_VALUE services.api.routes[0].name',
      'a.yaml SP_RULE_REGEX_INVALID services.api.routes[1].match.headers[0].regex',
      'a.yaml SP_RULE_ROUTE_ACTION services.api.routes[2]',
      'a.yaml SP_RULE_MIRROR_PERCENT_PRECISION services.api.mirrors[0].percent',
      'b.yaml SP_RULE_SETTINGS_HEADER_CLASH settings.tenant_header',
    ]);
    expect(result.ruleSet).toBeUndefined();
  });

  it('locates a problem at file:line:col and formats it for people', () => {
    const text = ['services:', '  api:', '    routes:', '      - name: beta-users', '        match:', '          headers:', '            - { name: x-beta, regex: "(a)\\\\1" }', '        to: beta', ''].join('\n');
    const { errors } = validateRuleFile('rules/api.yaml', text, { now: NOW });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ source: 'rules/api.yaml', at: 'rules/api.yaml:7:31', code: 'SP_RULE_REGEX_INVALID' });
    expect(formatProblem(errors[0]!)).toMatch(/^rules\/api\.yaml:7:31: services\.api\.routes\[0\]\.match\.headers\[0\]\.regex: RE2.*\[SP_RULE_REGEX_INVALID\]$/);
  });

  it('names a source without positions when the document did not come from text (a KV key)', () => {
    const { errors } = validateRules([{ source: 'shadowplane/rules/api', value: api({ routes: [route({ to: undefined })] }) }], { now: NOW });
    expect(errors).toEqual([
      {
        source: 'shadowplane/rules/api',
        at: 'shadowplane/rules/api',
        path: 'services.api.routes[0]',
        code: 'SP_RULE_ROUTE_ACTION',
        message: 'say where the route goes: to: <subset>, or split: [{ to, weight }, …]',
      },
    ]);
  });

  it('skips the registry checks without a registry', () => {
    const result = validateRules([{ source: 'k', value: api({ routes: [route({ to: { service: 'payments', subset: 'canary' } })] }) }], { now: NOW });
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
  });

  it('accepts an empty file and an empty document as no rules', () => {
    for (const text of ['', '# nothing yet\n', '{}\n']) {
      const result = validateRuleFile('empty.yaml', text, { now: NOW });
      expect(result.errors).toEqual([]);
      expect(result.ruleSet).toEqual({ services: {}, jwt_issuers: {}, settings: DEFAULT_SETTINGS });
    }
  });

  it('can leave an expired dev route out with a warning, for reloading stored rules', () => {
    const result = validate(x(api({ dev_routes: [devRoute({ expires: hoursFromNow(-1) }), devRoute({ key: 'laptop-2' })] })), { expiredDevRoutes: 'warning' });
    expect(result.errors).toEqual([]);
    expect(result.warnings.map((p) => p.code)).toEqual(['SP_RULE_DEV_ROUTE_EXPIRED']);
    expect(result.ruleSet!.services.api!.dev_routes.map((d) => d.key)).toEqual(['laptop-2']);
  });

  it('counts a tag that rules route to as a routing tag when looking for stable instances', () => {
    // The only untagged-by-default instance carries tenant-acme; once a rule routes to
    // tenant-acme it leaves stable, so stable is empty.
    const registry = registryOf({ api: ['tenant-acme', 'beta'] });
    const result = validate(x(api({ routes: [route({ to: 'stable' })], tenant_routes: [{ tenant: 'acme', to: 'tenant-acme' }] })), { registry });
    expect(result.warnings.map((p) => `${p.code} ${p.path}`)).toEqual(['SP_RULE_SUBSET_EMPTY services.api.routes[0].to']);
  });
});

describe('valid rules', () => {
  const everything: object = {
    services: {
      web: { routes: [{ name: 'all-beta', to: 'stable' }] },
      api: {
        routes: [
          route(),
          {
            name: 'plan-pro',
            match: {
              headers: [{ name: 'x-region', prefix: 'eu-', invert: true }, { name: 'x-debug', absent: true }, { name: 'x-id', regex: '(?P<id>[0-9]+)' }],
              claim: { issuer: 'main', name: 'org.plan', exact: 'pro' },
              path_prefix: '/v2/',
            },
            to: { service: 'web', subset: 'stable' },
          },
          { name: 'canary-5', split: [{ to: 'beta', weight: 5 }, { to: 'stable', weight: 95 }] },
        ],
        mirrors: [mirror(), mirror({ name: 'half', percent: 0.5, methods: ['GET', 'POST'], marker_header: 'x-copy', remove_headers: ['authorization'], match: { path_prefix: '/v1/' } })],
        dev_routes: [devRoute({ expires: '2026-01-01T03:00:00+01:00' })],
        tenant_routes: [{ tenant: 'acme', to: 'tenant-acme' }],
      },
    },
    jwt_issuers: { main: issuer({ audiences: ['shop'] }), other: { issuer: 'https://other.example.test', jwks_uri: 'https://other.example.test/jwks' } },
    access_gateway: {
      rate_limit: { requests_per_second: 10 },
      allow: [{ service: 'api', methods: ['GET'], paths: [{ prefix: '/v1/' }, { exact: '/healthz' }, { regex: '/items/[0-9]+' }], rate_limit: { requests_per_second: 1, burst: 3 } }],
    },
    settings: { dev_route_header: 'x-dev', max_dev_route_hours: 48, stand_in_status: 202 },
  };

  it('uses every feature without a problem, and resolves it into the rule set', () => {
    const result = validate(x(everything));
    expect(result.errors.map(formatProblem)).toEqual([]);
    expect(result.warnings.map(formatProblem)).toEqual([]);
    const set = result.ruleSet!;
    expect(Object.keys(set.services)).toEqual(['api', 'web']);
    const apiRules = set.services.api!;
    expect(apiRules.routes[1]).toEqual({
      name: 'plan-pro',
      match: {
        headers: [
          { name: 'x-region', match: { kind: 'prefix', value: 'eu-' }, invert: true },
          { name: 'x-debug', match: { kind: 'absent' }, invert: false },
          { name: 'x-id', match: { kind: 'regex', value: '(?P<id>[0-9]+)' }, invert: false },
        ],
        claim: { issuer: 'main', claim: 'org.plan', match: { kind: 'exact', value: 'pro' }, invert: false },
        path_prefix: '/v2/',
      },
      to: { service: 'web', subset: 'stable' },
    });
    expect(apiRules.routes[2]).toEqual({
      name: 'canary-5',
      split: [
        { to: { service: 'api', subset: 'beta' }, weight: 5 },
        { to: { service: 'api', subset: 'stable' }, weight: 95 },
      ],
    });
    expect(apiRules.mirrors[0]).toEqual({
      name: 'shadow-10',
      to: { service: 'api', subset: 'shadow' },
      percent: 10,
      methods: ['GET', 'HEAD', 'OPTIONS'],
      marker_header: 'x-shadowplane-mirror',
      remove_headers: [],
    });
    expect(apiRules.dev_routes).toEqual([{ key: 'laptop-1', to: { service: 'api', subset: 'dev-laptop-1' }, owner: 'alice@example.com', expires: '2026-01-01T02:00:00.000Z' }]);
    expect(set.jwt_issuers.other).toEqual({ issuer: 'https://other.example.test', audiences: [], jwks_uri: 'https://other.example.test/jwks' });
    expect(set.access_gateway).toEqual({
      rate_limit: { requests_per_second: 10, burst: 10 },
      allow: [
        {
          service: 'api',
          methods: ['GET'],
          paths: [
            { kind: 'prefix', value: '/v1/' },
            { kind: 'exact', value: '/healthz' },
            { kind: 'regex', value: '/items/[0-9]+' },
          ],
          rate_limit: { requests_per_second: 1, burst: 3 },
        },
      ],
    });
    expect(set.settings).toEqual({ ...DEFAULT_SETTINGS, dev_route_header: 'x-dev', max_dev_route_hours: 48, stand_in_status: 202 });
  });

  it('merges files: a claim may name an issuer of another file, equal settings may repeat, allow rules add up', () => {
    const result = validate({
      'api.yaml': { ...api({ routes: [route({ match: { claim: { issuer: 'main', name: 'beta', exact: 'true' } } })] }), settings: { tenant_header: 'x-org' } },
      'auth.yaml': { jwt_issuers: { main: issuer() }, settings: { tenant_header: 'x-org' } },
      'gw-1.yaml': gateway([{ service: 'api' }], { rate_limit: { requests_per_second: 5 } }),
      'gw-2.yaml': gateway([{ service: 'web' }], { rate_limit: { requests_per_second: 5 } }),
    });
    expect(result.errors.map(formatProblem)).toEqual([]);
    expect(result.ruleSet!.settings.tenant_header).toBe('x-org');
    expect(result.ruleSet!.access_gateway!.allow.map((a) => a.service)).toEqual(['api', 'web']);
  });

  it('gives equal rule sets for equal rules in any key order', () => {
    const a = validate(x({ services: { web: {}, api: { routes: [route()] } } })).ruleSet;
    const b = validate(x({ services: { api: { routes: [route()] }, web: {} } })).ruleSet;
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
  });

  it('lists the subsets the rules send traffic to, each once, sorted', () => {
    const set = validate(x(everything)).ruleSet!;
    expect(subsetsReferenced(set).map((t) => `${t.service}.${t.subset}`)).toEqual([
      'api.beta',
      'api.dev-laptop-1',
      'api.shadow',
      'api.stable',
      'api.tenant-acme',
      'web.stable',
    ]);
  });

  it('merges already validated documents, refusing conflicts', () => {
    const doc = (over: object): RuleDocument => ({ ...(over as RuleDocument) });
    const { ruleSet, errors } = mergeRuleDocuments([
      { source: 'a', document: doc(api({ routes: [route()] })) },
      { source: 'b', document: doc({ services: { api: {}, web: {} } }) },
    ]);
    expect(errors.map((p) => `${p.source} ${p.code} ${p.path}`)).toEqual(['b SP_RULE_DEFINED_TWICE services.api']);
    expect(Object.keys(ruleSet.services)).toEqual(['api', 'web']);
    expect(ruleSet.services.api!.routes).toHaveLength(1);
  });
});

describe('the example rules', () => {
  it('validate cleanly against the example registry, without warnings', () => {
    const dir = 'examples/rules';
    const inputs = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((f) => {
        const file = path.join(dir, f);
        const read = readRuleText(file, readFileSync(file, 'utf8'));
        expect(read.errors).toEqual([]);
        return read.input!;
      });
    expect(inputs.length).toBeGreaterThan(0);
    const result = validateRules(inputs, { registry: loadRegistryDir('examples/registry') });
    expect([...result.errors, ...result.warnings].map(formatProblem)).toEqual([]);
    const api = result.ruleSet!.services.api!;
    expect(api.routes.map((r) => r.name)).toContain('beta-users');
    expect(api.mirrors.map((m) => `${m.to.subset} ${m.percent}`)).toEqual(['shadow 10']);
  });
});

describe('the documented example', () => {
  it('in docs/rules.md is valid', () => {
    const block = /```yaml\n([\s\S]*?)```/.exec(readFileSync('docs/rules.md', 'utf8'))![1]!;
    const result = validateRuleFile('docs/rules.md', block, { now: new Date('2026-11-22T12:00:00Z') });
    expect(result.errors.map(formatProblem)).toEqual([]);
    expect(Object.keys(result.ruleSet!.services.api!)).toEqual(['routes', 'mirrors', 'dev_routes', 'tenant_routes']);
  });
});

describe('RE2 checks', () => {
  const table: { pattern: string; refused: RegExp | undefined }[] = [
    { pattern: '^/v[0-9]+/users/[a-z]+$', refused: undefined },
    { pattern: '(?i)beta|canary', refused: undefined },
    { pattern: '(?P<id>[0-9]+)', refused: undefined },
    { pattern: '\\pL+', refused: undefined },
    { pattern: 'a(?=b)', refused: /invalid perl operator: \(\?=/ },
    { pattern: 'a(?!b)', refused: /invalid perl operator/ },
    { pattern: '(?<=a)b', refused: /invalid perl operator/ },
    { pattern: '(a)\\1', refused: /invalid escape sequence: \\1/ },
    // JavaScript syntax that re2-wasm's RE2 class would translate, but Envoy receives verbatim.
    { pattern: '\\u0041', refused: /invalid escape sequence: \\u/ },
    { pattern: 'a++', refused: /bad repetition operator/ },
    { pattern: 'a{1001}', refused: /invalid repetition size/ },
    { pattern: '[', refused: /missing \]/ },
  ];

  it.each(table)('$pattern', ({ pattern, refused }) => {
    const error = re2Error(pattern);
    if (refused) {
      expect(error).toMatch(refused);
      // JavaScript's RegExp is no judge here: it accepts some of what RE2 refuses.
    } else {
      expect(error).toBeUndefined();
    }
    expect(re2Error(pattern)).toBe(error);
  });

  it('accepts what JavaScript accepts and RE2 refuses only through RE2', () => {
    expect(() => new RegExp('a(?=b)')).not.toThrow();
    expect(re2Error('a(?=b)')).toBeDefined();
  });
});
