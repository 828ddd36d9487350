// Envoy matchers from rule conditions: header matchers, path matches, methods.
import type { HeaderCondition, PathMatch, RouteMatch, ValueMatch } from '../model/rules.js';
import type { ResourceObject } from '../xds/resources.js';
import { claimHeaderName } from './names.js';

export function buildHeaderMatcher(name: string, match: ValueMatch, invert: boolean): ResourceObject {
  switch (match.kind) {
    case 'exact':
      return { name, string_match: { exact: match.value }, invert_match: invert };
    case 'prefix':
      return { name, string_match: { prefix: match.value }, invert_match: invert };
    case 'regex':
      return { name, string_match: { safe_regex: { regex: match.value } }, invert_match: invert };
    case 'present':
      return { name, present_match: true };
    case 'absent':
      return { name, present_match: false };
  }
}

const headerCondition = (c: HeaderCondition): ResourceObject => buildHeaderMatcher(c.name, c.match, c.invert);

/** Method lists come from validated rules, never changed: each list's pattern is made once. */
const methodPatterns = new WeakMap<readonly string[], string>();

/** `:method` is one of `methods` (Envoy matches pseudo-headers like any header). */
export function buildMethodMatcher(methods: readonly string[], invert = false): ResourceObject {
  let pattern = methodPatterns.get(methods);
  if (pattern === undefined) methodPatterns.set(methods, (pattern = `^(${[...methods].sort().join('|')})$`));
  return { name: ':method', string_match: { safe_regex: { regex: pattern } }, invert_match: invert };
}

/** A RouteMatch's header matchers, the claim condition as its header included. */
export function routeMatchHeaders(match: RouteMatch | undefined): ResourceObject[] {
  if (!match) return [];
  const headers = match.headers.map(headerCondition);
  if (match.claim) headers.push(buildHeaderMatcher(claimHeaderName(match.claim.issuer, match.claim.claim), match.claim.match, match.claim.invert));
  return headers;
}

/** The longer of two path prefixes when one contains the other; undefined when none can match both. */
export function combinePrefixes(a: string | undefined, b: string | undefined): string | null {
  if (a === undefined) return b ?? '/';
  if (b === undefined) return a;
  if (a.startsWith(b)) return a;
  if (b.startsWith(a)) return b;
  return null;
}

/** An RBAC permission for a request path. */
export function buildPathPermission(path: PathMatch): ResourceObject {
  const matcher =
    path.kind === 'exact' ? { exact: path.value } : path.kind === 'prefix' ? { prefix: path.value } : { safe_regex: { regex: path.value } };
  return { url_path: { path: matcher } };
}
