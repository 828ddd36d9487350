// The virtual host of a service with mirrors: a route variant per combination of mirror
// conditions, every mirror present, and a bound on how many combinations there can be.
import { describe, expect, it } from 'vitest';
import { MAX_MIRROR_CONDITIONS, type RuleSet } from '../../../src/model/rules.js';
import { readRuleText, validateRules } from '../../../src/model/validate-rules.js';
import { buildVirtualHost, type SubsetIndex } from '../../../src/translate/routes.js';
import type { ResourceObject } from '../../../src/xds/resources.js';

const everyone: SubsetIndex = { hasInstances: () => true };

/**
 * api with one header route and `n` mirrors to its shadow, each on its own header: n
 * conditions. Made from a validated set with one mirror, since validation refuses more
 * than MAX_MIRROR_CONDITIONS and the translator is to be seen without it.
 */
function mirrorsOnHeaders(n: number): RuleSet {
  const text = `services:
  api:
    routes:
      - { name: beta, match: { headers: [{ name: x-beta, exact: "true" }] }, to: beta }
    mirrors:
      - { name: m0, to: shadow, percent: 1 }
`;
  const rules = validateRules([readRuleText('r.yaml', text).input!]).ruleSet!;
  const api = rules.services.api!;
  const one = api.mirrors[0]!;
  const mirrors = Array.from({ length: n }, (_, i) => ({ ...one, name: `m${i}`, match: { headers: [{ name: `x-m${i}`, match: { kind: 'present' as const }, invert: false }] } }));
  return { ...rules, services: { api: { ...api, mirrors } } };
}

const routesOf = (vhost: ResourceObject): ResourceObject[] => vhost.routes as ResourceObject[];
const mirrorClusters = (route: ResourceObject): string[] =>
  (((route.route as ResourceObject).request_mirror_policies as ResourceObject[] | undefined) ?? []).map((p) => p.cluster as string);

describe('mirror routes', () => {
  it(`gives every route a variant per combination of up to ${MAX_MIRROR_CONDITIONS} conditions, each mirror in them`, () => {
    const n = MAX_MIRROR_CONDITIONS;
    const routes = routesOf(buildVirtualHost('api', mirrorsOnHeaders(n), everyone));
    // Two base routes (beta, stable), each with 2^n - 1 mirroring variants and itself.
    expect(routes).toHaveLength(2 * 2 ** n);
    const first = routes[0]!;
    expect(first.name).toBe(`api/beta+mirror:${Array.from({ length: n }, (_, i) => `m${i}`).join('+')}`);
    expect(mirrorClusters(first)).toEqual(Array.from({ length: n }, (_, i) => `api.shadow.mirror-m${i}`));
    for (let i = 0; i < n; i++) {
      expect(routes.filter((r) => mirrorClusters(r).includes(`api.shadow.mirror-m${i}`))).toHaveLength(2 * 2 ** (n - 1));
    }
  });

  it('refuses more conditions than that instead of dropping mirrors (1 << 31 is negative)', () => {
    expect(() => buildVirtualHost('api', mirrorsOnHeaders(31), everyone)).toThrow(/"api" has 31 distinct mirror conditions; at most 6/);
    expect(() => buildVirtualHost('api', mirrorsOnHeaders(MAX_MIRROR_CONDITIONS + 1), everyone)).toThrow(/at most 6/);
  });
});
