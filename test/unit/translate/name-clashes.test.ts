// A registry whose names would give two clusters one name (Consul service names and
// tags may hold dots; names join their parts with dots) loses what would take a name
// another owner has, and everything else still translates into a snapshot.
import { describe, expect, it } from 'vitest';
import { emptyRuleSet, type RuleSet } from '../../../src/model/rules.js';
import type { Instance, Registry, Service } from '../../../src/model/types.js';
import { readRuleText, validateRules } from '../../../src/model/validate-rules.js';
import { IncrementalTranslator } from '../../../src/translate/incremental.js';
import { describeRefusal, refuseNameClashes } from '../../../src/translate/name-clashes.js';
import { groupKey, type ProxyKey } from '../../../src/translate/proxy.js';
import { Snapshot } from '../../../src/xds/cache.js';
import { TypeUrl } from '../../../src/xds/resources.js';

const edge: ProxyKey = { role: 'edge', address: '127.0.0.1', port: 10000 };
const sidecar: ProxyKey = { role: 'sidecar', subset: 'stable', address: '127.0.0.1', outboundPort: 15001, inboundPort: 15006, appPort: 8080 };

let port = 9000;
/** `{ api: ['', 'beta'] }`: service api with one untagged and one beta instance (ids `api/0`, `api/1`). */
function registryOf(services: Record<string, string[]>): Registry {
  const entries = Object.entries(services).map(([name, tagLists]): [string, Service] => [
    name,
    { name, instances: tagLists.map((tags, i): Instance => ({ id: `${name}/${i}`, address: '127.0.0.1', port: port++, tags: tags ? tags.split(',') : [], meta: {} })) },
  ]);
  return { services: new Map(entries.sort(([a], [b]) => (a < b ? -1 : 1))) };
}

function rules(text: string): RuleSet {
  const result = validateRules([readRuleText('r.yaml', text).input!]);
  if (!result.ruleSet) throw new Error(result.errors.map((e) => e.message).join('; '));
  return result.ruleSet;
}

/** Every proxy kind's snapshot, as serve composes it; throws on a name twice. */
function snapshots(registry: Registry, ruleSet: RuleSet): Snapshot[] {
  const t = new IncrementalTranslator();
  const model = { registry, rules: ruleSet };
  const shared = t.sharedSnapshot(model);
  return [edge, sidecar].map((key) => Snapshot.compose(shared, t.forProxy(model, key, groupKey(key))));
}

const clusters = (snapshot: Snapshot): string[] => [...snapshot.resources(TypeUrl.Cluster).keys()].sort();

describe('refuseNameClashes', () => {
  it('leaves a registry without clashes as it is: the same object', () => {
    const registry = registryOf({ api: ['', 'beta', 'shadow', 'traefik.enable=true'], 'payments.v2': ['', 'dev-a.b'], web: [''] });
    const ruleSet = rules('services:\n  web:\n    mirrors:\n      - { name: copy, to: { service: api, subset: shadow }, percent: 5 }\n');
    expect(refuseNameClashes(registry, ruleSet)).toEqual({ registry, refused: [] });
    expect(refuseNameClashes(registry, ruleSet).registry).toBe(registry);
  });

  it('looks at the services a source says changed, and finds a clash one of them brings', () => {
    const before = registryOf({ a: ['', 'dev-x'], b: [''] });
    expect(refuseNameClashes(before, emptyRuleSet()).refused).toEqual([]);
    // The source names what changed: `a.dev-x` arrives, and its name is a's subset's.
    const added = registryOf({ 'a.dev-x': [''] }).services.get('a.dev-x')!;
    const after: Registry = {
      services: new Map([...before.services, ['a.dev-x', added]]),
      changes: { since: before.services, services: new Set(['a.dev-x']) },
    };
    expect(refuseNameClashes(after, emptyRuleSet()).refused.map((r) => r.service)).toEqual(['a.dev-x']);
    // And leaves: the clash goes with it.
    const gone: Registry = { services: new Map(before.services), changes: { since: after.services, services: new Set(['a.dev-x']) } };
    expect(refuseNameClashes(gone, emptyRuleSet())).toEqual({ registry: gone, refused: [] });
  });

  it('finds a subset whose tag would give it the name of a mirror to a stable subset', () => {
    const ruleSet = rules('services:\n  web:\n    mirrors:\n      - { name: copy, to: { service: api, subset: stable }, percent: 5 }\n');
    const registry = { ...registryOf({ api: ['', 'mirror-copy'], web: [''] }), routingTags: ['mirror-*'] };
    expect(refuseNameClashes(registry, ruleSet).refused.map((r) => [r.service, r.subset, r.cluster])).toEqual([['api', 'mirror-copy', 'api.mirror-copy']]);
  });

  it('gives a dotted service up for the subset whose name it takes, and every proxy still gets a snapshot', () => {
    // Service `a.dev-x` and service a's subset dev-x are both cluster `a.dev-x`.
    const registry = registryOf({ a: ['', 'dev-x'], 'a.dev-x': [''], b: [''] });
    expect(() => snapshots(registry, emptyRuleSet())).toThrow(/duplicate cds resource "a\.dev-x"/);
    const { registry: served, refused } = refuseNameClashes(registry, emptyRuleSet());
    expect(refused).toEqual([
      {
        service: 'a.dev-x',
        subset: 'stable',
        cluster: 'a.dev-x',
        kind: 'cluster',
        instances: ['a.dev-x/0'],
        reason: 'subset "dev-x" of service "a" would have the cluster name "a.dev-x" too',
      },
    ]);
    expect(describeRefusal(refused[0]!)).toBe(
      'service "a.dev-x" is not served: subset "dev-x" of service "a" would have the cluster name "a.dev-x" too, and Envoy takes each cluster name once',
    );
    expect([...served.services.keys()]).toEqual(['a', 'b']);
    for (const snapshot of snapshots(served, emptyRuleSet())) {
      expect(snapshot.inconsistencies()).toEqual([]);
      expect(clusters(snapshot)).toEqual(expect.arrayContaining(['a', 'a.dev-x', 'b']));
    }
  });

  it('gives up both subsets when both names hold dots, keeping their services and other subsets', () => {
    // Service a.dev-b's subset dev-c and service a's subset dev-b.dev-c are both `a.dev-b.dev-c`.
    const registry = registryOf({ a: ['', 'dev-b.dev-c', 'beta,dev-b.dev-c', 'beta'], 'a.dev-b': ['', 'dev-c'] });
    const { registry: served, refused } = refuseNameClashes(registry, emptyRuleSet());
    expect(refused.map((r) => [r.service, r.subset, r.cluster, r.instances])).toEqual([
      ['a', 'dev-b.dev-c', 'a.dev-b.dev-c', ['a/1', 'a/2']],
      ['a.dev-b', 'dev-c', 'a.dev-b.dev-c', ['a.dev-b/1']],
    ]);
    // An instance in a refused subset is left out, not moved to stable: it carries a routing tag.
    expect(served.services.get('a')!.instances.map((i) => i.id)).toEqual(['a/0', 'a/3']);
    expect(served.services.get('a.dev-b')!.instances.map((i) => i.id)).toEqual(['a.dev-b/0']);
    const [edgeSnapshot] = snapshots(served, emptyRuleSet());
    expect(clusters(edgeSnapshot!)).toEqual(['a', 'a.beta', 'a.dev-b']);
    // The same services again, the same objects: the incremental translator keys on them.
    expect(refuseNameClashes(registry, emptyRuleSet()).registry.services.get('a')).toBe(served.services.get('a'));
  });

  it("keeps a mirror's cluster name over a registry subset that would take it", () => {
    const ruleSet = rules('services:\n  web:\n    mirrors:\n      - { name: m, to: { service: api, subset: dev-x }, percent: 5 }\n');
    const registry = registryOf({ api: ['', 'dev-x', 'dev-x.mirror-m'], web: [''] });
    expect(() => snapshots(registry, ruleSet)).toThrow(/duplicate cds resource "api\.dev-x\.mirror-m"/);
    const { registry: served, refused } = refuseNameClashes(registry, ruleSet);
    expect(refused).toEqual([
      expect.objectContaining({ service: 'api', subset: 'dev-x.mirror-m', reason: 'mirror "m" of "web" has the cluster name "api.dev-x.mirror-m"' }),
    ]);
    const [edgeSnapshot] = snapshots(served, ruleSet);
    expect(clusters(edgeSnapshot!)).toEqual(['api', 'api.dev-x', 'api.dev-x.mirror-m', 'web']);
  });

  it('serves one of the services whose names differ only in case: the one in lower case, or none', () => {
    // Both are domains of the edge's route configuration, and Envoy compares domains
    // with ASCII letters lowered: `Web` and `web` would make Envoy refuse it whole.
    const registry = registryOf({ Web: [''], api: [''], web: [''] });
    const { registry: served, refused } = refuseNameClashes(registry, emptyRuleSet());
    expect(refused).toEqual([
      {
        service: 'Web',
        subset: 'stable',
        cluster: 'Web',
        kind: 'domain',
        instances: ['Web/0'],
        reason: 'service "web" would have the domain "web" too (Envoy compares domains without case)',
      },
    ]);
    // The log names the domain as what is taken, not a cluster name.
    expect(describeRefusal(refused[0]!)).toBe(
      'service "Web" is not served: service "web" would have the domain "web" too (Envoy compares domains without case), and Envoy takes each domain once in a route configuration',
    );
    // What Envoy makes of both is shown on the real one: test/integration/registry-domains-envoy.test.ts.
    const [edgeSnapshot] = snapshots(served, emptyRuleSet());
    expect(clusters(edgeSnapshot!)).toEqual(['api', 'web']);
    // Neither is in lower case: neither keeps the domain.
    const both = refuseNameClashes(registryOf({ WEB: [''], Web: [''], api: [''] }), emptyRuleSet());
    expect(both.refused.map((r) => [r.service, r.reason])).toEqual([
      ['WEB', 'service "Web" would have the domain "web" too (Envoy compares domains without case)'],
      ['Web', 'service "WEB" would have the domain "web" too (Envoy compares domains without case)'],
    ]);
    expect([...both.registry.services.keys()]).toEqual(['api']);
    // Envoy lowers ASCII letters only: these are two domains, and a capital alone is no clash.
    const apart = registryOf({ Api: [''], 'ünï': [''], 'Ünï': [''] });
    expect(refuseNameClashes(apart, emptyRuleSet())).toEqual({ registry: apart, refused: [] });
  });

  it('never serves a service whose name Envoy would read as a wildcard domain, and serves one with a * inside', () => {
    // `x:*` would repeat service x's port domain; `*` would take every unmatched host; `*.b` every subdomain of b.
    const registry = registryOf({ '*': [''], '*.b': [''], 'a*b': [''], b: [''], x: [''], 'x:*': [''] });
    const { registry: served, refused } = refuseNameClashes(registry, emptyRuleSet());
    expect(refused.map((r) => [r.service, r.kind])).toEqual([
      ['*', 'wildcard'],
      ['*.b', 'wildcard'],
      ['x:*', 'wildcard'],
    ]);
    expect(describeRefusal(refused[2]!)).toBe('service "x:*" is not served: its name starts or ends with "*", which makes its domain an Envoy wildcard that takes requests for other hosts');
    expect([...served.services.keys()]).toEqual(['a*b', 'b', 'x']);
    const [edgeSnapshot] = snapshots(served, emptyRuleSet());
    expect(clusters(edgeSnapshot!)).toEqual(['a*b', 'b', 'x']);
  });

  it('finds a service in lower case that arrives after its capitalised namesake, and serves that one again once it leaves', () => {
    const before = registryOf({ Web: [''], api: [''] });
    expect(refuseNameClashes(before, emptyRuleSet()).refused).toEqual([]);
    const web = registryOf({ web: [''] }).services.get('web')!;
    const after: Registry = { services: new Map([...before.services, ['web', web]]), changes: { since: before.services, services: new Set(['web']) } };
    expect(refuseNameClashes(after, emptyRuleSet()).refused.map((r) => r.service)).toEqual(['Web']);
    const gone: Registry = { services: new Map(before.services), changes: { since: after.services, services: new Set(['web']) } };
    expect(refuseNameClashes(gone, emptyRuleSet())).toEqual({ registry: gone, refused: [] });
  });

  it("never serves a service named like a sidecar's local application", () => {
    const registry = registryOf({ local_app_8080: [''], web: [''] });
    expect(() => snapshots(registry, emptyRuleSet())).toThrow(/duplicate cds resource "local_app_8080"/);
    const { registry: served, refused } = refuseNameClashes(registry, emptyRuleSet());
    expect(refused.map((r) => r.service)).toEqual(['local_app_8080']);
    expect(snapshots(served, emptyRuleSet()).map((s) => s.inconsistencies())).toEqual([[], []]);
  });
});
