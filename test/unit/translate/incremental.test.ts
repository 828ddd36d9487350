// The incremental translator gives exactly what a full translation gives, after any
// sequence of changes, and reuses what did not change.
import { describe, expect, it } from 'vitest';
import { emptyRuleSet, type RuleSet } from '../../../src/model/rules.js';
import type { Instance, Model, Service } from '../../../src/model/types.js';
import { readRuleText, validateRules } from '../../../src/model/validate-rules.js';
import { EnvoyConstraintError, IncrementalTranslator } from '../../../src/translate/incremental.js';
import { groupKey, type ProxyKey } from '../../../src/translate/proxy.js';
import { translateForProxy, translateShared } from '../../../src/translate/translate.js';
import { buildVirtualHost, plainVirtualHost } from '../../../src/translate/routes.js';
import { Resource } from '../../../src/xds/resource.js';
import { Snapshot } from '../../../src/xds/cache.js';
import { PUSH_ORDER, TypeUrl } from '../../../src/xds/resources.js';

const edge: ProxyKey = { role: 'edge', address: '127.0.0.1', port: 10000 };
const sidecar: ProxyKey = { role: 'sidecar', subset: 'shadow', address: '127.0.0.1', outboundPort: 15001, inboundPort: 15006, appPort: 8080 };

const instance = (id: string, port: number, tags: string[] = []): Instance => ({ id, address: '127.0.0.1', port, tags, meta: {} });
function registry(services: Record<string, Instance[]>): Model['registry'] {
  return { services: new Map(Object.entries(services).map(([name, instances]): [string, Service] => [name, { name, instances }])) };
}
function rules(text: string): RuleSet {
  const { input } = readRuleText('r.yaml', text);
  const result = validateRules([input!]);
  if (!result.ruleSet) throw new Error(result.errors.map((e) => e.message).join('; '));
  return result.ruleSet;
}

/** name → version of everything a full translation gives. */
function full(model: Model, key: ProxyKey): Map<string, string> {
  const objects = [...translateShared(model), ...translateForProxy(model, key)];
  return new Map(objects.map((o) => Resource.fromObject(o.typeUrl, o.object)).map((r) => [`${r.typeUrl} ${r.name}`, r.version]));
}
function incremental(t: IncrementalTranslator, model: Model, key: ProxyKey): Map<string, string> {
  return new Map([...t.shared(model), ...t.forProxy(model, key, groupKey(key))].map((r) => [`${r.typeUrl} ${r.name}`, r.version]));
}
/** The same, through the derived shared snapshot and the group's composition on it. */
function derived(t: IncrementalTranslator, model: Model, key: ProxyKey): Map<string, string> {
  const snapshot = Snapshot.compose(t.sharedSnapshot(model), t.forProxy(model, key, groupKey(key)));
  expect(snapshot.inconsistencies()).toEqual([]);
  return new Map(PUSH_ORDER.flatMap((typeUrl) => [...snapshot.resources(typeUrl).values()]).map((r) => [`${r.typeUrl} ${r.name}`, r.version]));
}

const RULES = 'services:\n  api:\n    routes:\n      - name: beta\n        match: { headers: [{ name: x-beta, exact: "true" }] }\n        to: beta\n    mirrors:\n      - { name: copy, to: shadow, percent: 10 }\n';

describe('IncrementalTranslator', () => {
  it('matches a full translation through a sequence of changes', () => {
    const t = new IncrementalTranslator();
    let api = [instance('a1', 1), instance('a2', 2, ['beta'])];
    const web = [instance('w1', 3)];
    let model: Model = { registry: registry({ api, web }), rules: rules(RULES) };
    const d = new IncrementalTranslator();
    const check = (): void => {
      for (const key of [edge, sidecar]) expect(incremental(t, model, key)).toEqual(full(model, key));
      for (const key of [edge, sidecar]) expect(derived(d, model, key)).toEqual(full(model, key));
    };
    check();
    // An instance moves.
    api = [instance('a1', 11), api[1]!];
    model = { ...model, registry: registry({ api, web }) };
    check();
    // The shadow subset appears: the mirror becomes live.
    api = [...api, instance('a3', 4, ['shadow'])];
    model = { ...model, registry: registry({ api, web }) };
    check();
    // The beta instance leaves: the beta route falls away.
    api = api.filter((i) => i.id !== 'a2');
    model = { ...model, registry: registry({ api, web }) };
    check();
    // A service arrives, and one leaves.
    model = { ...model, registry: registry({ api, shop: [instance('s1', 5)] }) };
    check();
    // The shadow goes: the mirror's cluster leaves with it.
    api = api.filter((i) => i.id !== 'a3');
    model = { ...model, registry: registry({ api, shop: [instance('s1', 5)] }) };
    check();
    // The rules change, and a service leaves.
    model = { registry: registry({ api }), rules: emptyRuleSet() };
    check();
  });

  it('makes a subset of a tag that rules send to for that service alone: the others keep the default routing tags', () => {
    const tenantRules = rules('services:\n  api:\n    routes:\n      - { name: acme, match: { headers: [{ name: x-org, exact: acme }] }, to: tenant-acme }\n');
    const model: Model = {
      registry: registry({ api: [instance('a1', 1), instance('a2', 2, ['tenant-acme'])], web: [instance('w1', 3), instance('w2', 4, ['tenant-acme'])] }),
      rules: tenantRules,
    };
    const t = new IncrementalTranslator();
    const clusters = t.shared(model).filter((r) => r.typeUrl === TypeUrl.Cluster).map((r) => r.name);
    expect(clusters).toEqual(['api', 'api.tenant-acme', 'web']);
    expect(incremental(t, model, edge)).toEqual(full(model, edge));
  });

  it('translates services named after members of Object.prototype as any other', () => {
    // A registry may hold any name; a plain index into the rules' services would find these on the prototype.
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty'];
    const model: Model = { registry: registry(Object.fromEntries(names.map((n, i) => [n, [instance(`${n}-1`, 100 + i)]]))), rules: rules(RULES) };
    expect(model.registry.services.size).toBe(names.length);
    for (const key of [edge, sidecar]) {
      expect(incremental(new IncrementalTranslator(), model, key)).toEqual(full(model, key));
      expect(derived(new IncrementalTranslator(), model, key)).toEqual(full(model, key));
    }
  });

  it('reuses a service whose instances did not change, and the routes when only an instance moved', () => {
    const t = new IncrementalTranslator();
    const web = [instance('w1', 3)];
    const base: Model = { registry: registry({ api: [instance('a1', 1)], web }), rules: rules(RULES) };
    const first = t.shared(base);
    const routesFirst = t.forProxy(base, edge, 'g');
    const moved: Model = { ...base, registry: registry({ api: [instance('a1', 2)], web }) };
    const second = t.shared(moved);
    const webCluster = (rs: Resource[]) => rs.find((r) => r.name === 'web');
    expect(webCluster(second)).toBe(webCluster(first));
    expect(second.find((r) => r.name === 'api' && r.typeUrl.endsWith('ClusterLoadAssignment'))).not.toBe(first.find((r) => r.name === 'api' && r.typeUrl.endsWith('ClusterLoadAssignment')));
    expect(t.forProxy(moved, edge, 'g')).toBe(routesFirst);
  });

  it('derives the shared snapshot of one moved instance from the last one, changing one resource', () => {
    const t = new IncrementalTranslator();
    const web = [instance('w1', 3)];
    const base: Model = { registry: registry({ api: [instance('a1', 1)], web }), rules: rules(RULES) };
    const first = t.sharedSnapshot(base);
    const routesFirst = t.forProxy(base, edge, 'g');
    const moved: Model = { ...base, registry: registry({ api: [instance('a1', 2)], web }) };
    const second = t.sharedSnapshot(moved);
    expect(second.resources(TypeUrl.Cluster)).toBe(first.resources(TypeUrl.Cluster));
    const diff = second.resources(TypeUrl.ClusterLoadAssignment).diffFrom(first.resources(TypeUrl.ClusterLoadAssignment));
    expect(diff.upserts.map((r) => r.name)).toEqual(['api']);
    expect(diff.removed).toEqual([]);
    expect(t.forProxy(moved, edge, 'g')).toBe(routesFirst);
  });

  it('looks only at the services a registry says changed, and walks them all when it says nothing', () => {
    const web = [instance('w1', 3)];
    const base: Model = { registry: registry({ api: [instance('a1', 1)], web }), rules: rules(RULES) };
    const movedServices = registry({ api: [instance('a1', 2)], web }).services;
    const told = new IncrementalTranslator();
    told.sharedSnapshot(base);
    // A source that names only `web` (wrongly) is believed: `api`'s move goes unseen.
    const misled = told.sharedSnapshot({ ...base, registry: { services: movedServices, changes: { since: base.registry.services, services: new Set(['web']) } } });
    expect(misled.resources(TypeUrl.ClusterLoadAssignment).get('api')).toBe(told.sharedSnapshot(base).resources(TypeUrl.ClusterLoadAssignment).get('api'));
    const walked = new IncrementalTranslator();
    walked.sharedSnapshot(base);
    const seen = walked.sharedSnapshot({ ...base, registry: { services: movedServices, changes: { since: new Map(), services: new Set(['web']) } } });
    expect(seen.resources(TypeUrl.ClusterLoadAssignment).get('api')!.version).not.toBe(misled.resources(TypeUrl.ClusterLoadAssignment).get('api')!.version);
  });

  it('refuses a change that would give two clusters one name, and keeps deriving from the last good snapshot', () => {
    const t = new IncrementalTranslator();
    const model: Model = { registry: registry({ api: [instance('a1', 1, ['beta'])] }), rules: emptyRuleSet() };
    const first = t.sharedSnapshot(model);
    // A service named like another's subset cluster.
    const clash: Model = { ...model, registry: registry({ api: [instance('a1', 1, ['beta'])], 'api.beta': [instance('b1', 2)] }) };
    expect(() => t.sharedSnapshot(clash)).toThrow(/duplicate Cluster resource "api.beta"/);
    const next: Model = { ...model, registry: registry({ api: [instance('a1', 7, ['beta'])] }) };
    const second = t.sharedSnapshot(next);
    expect(second.inconsistencies()).toEqual([]);
    expect(second.resources(TypeUrl.Cluster)).toBe(first.resources(TypeUrl.Cluster));
  });

  it('makes subsets of the configured routing tags only', () => {
    const t = new IncrementalTranslator();
    const reg = { ...registry({ api: [instance('a1', 1, ['pr-42']), instance('a2', 2, ['beta'])] }), routingTags: ['pr-*'] };
    const model: Model = { registry: reg, rules: emptyRuleSet() };
    const clusters = t.shared(model).filter((r) => r.typeUrl.endsWith('Cluster')).map((r) => r.name);
    expect(clusters.sort()).toEqual(['api', 'api.pr-42']);
    expect(incremental(new IncrementalTranslator(), model, edge)).toEqual(full(model, edge));
  });

  it('refuses output that breaks a constraint of Envoy\'s protos, naming the route', () => {
    const t = new IncrementalTranslator();
    // A port of 0 in the registry is caught by its source; here it stands for any bad value.
    const model: Model = { registry: registry({ api: [instance('a1', 1)] }), rules: emptyRuleSet() };
    const bad = { ...model, registry: registry({ api: [{ ...instance('a1', 1), address: '' }] }) };
    expect(() => t.shared(bad)).toThrow(EnvoyConstraintError);
    expect(() => t.shared(bad)).toThrow(/ClusterLoadAssignment "api".*address/);
  });

  it("builds a service without rules the virtual host buildVirtualHost would, whatever the rule set's settings", () => {
    const ruleSet = rules(`settings:\n  dev_route_header: x-dev\n  tenant_header: x-org\n${RULES}`);
    const none = { hasInstances: () => true };
    for (const service of ['web', 'a.b-c', 'ünï']) expect(plainVirtualHost(service)).toEqual(buildVirtualHost(service, ruleSet, none));
  });
});
