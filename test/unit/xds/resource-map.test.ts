// ResourceMap and the snapshots built on it: derived maps behave exactly like maps
// built whole, in contents, versions, diffs and consistency checks.
import { describe, expect, it } from 'vitest';
import { ResourceMap } from '../../../src/xds/resource-map.js';
import { Snapshot } from '../../../src/xds/cache.js';
import type { Resource } from '../../../src/xds/resource.js';
import { TypeUrl, cluster, endpoints, listener, routes, service, snapshot } from '../../helpers/xds-fixtures.js';

const { Cluster: CDS, ClusterLoadAssignment: EDS, RouteConfiguration: RDS } = TypeUrl;

const clusters = (n: number, timeout = 1): Resource[] => Array.from({ length: n }, (_, i) => cluster(`c${i}`, { connectTimeoutSeconds: timeout }));
const contents = (m: ReadonlyMap<string, Resource>): [string, string][] =>
  [...m.entries()].map(([name, r]): [string, string] => [name, r.version]).sort(([a], [b]) => a.localeCompare(b));

describe('ResourceMap', () => {
  it('derives maps equal to maps built whole: contents, size and version', () => {
    const base = ResourceMap.of(clusters(10));
    const changed = cluster('c3', { connectTimeoutSeconds: 9 });
    const added = cluster('new');
    const derived = base.with([changed, added], ['c7']);
    const whole = ResourceMap.of([...clusters(10).filter((r) => r.name !== 'c3' && r.name !== 'c7'), changed, added]);
    expect(contents(derived)).toEqual(contents(whole));
    expect(derived.size).toBe(10);
    expect(derived.version).toBe(whole.version);
    expect(derived.get('c3')).toBe(changed);
    expect(derived.has('c7')).toBe(false);
    expect(base.get('c3')!.version).not.toBe(changed.version); // the base is untouched
    expect(base.size).toBe(10);
  });

  it('returns itself when nothing changes, and keeps the resource it has when an equal one arrives', () => {
    const base = ResourceMap.of(clusters(3));
    const same = cluster('c1');
    expect(base.with([same], ['absent'])).toBe(base);
    expect(base.with([]).get('c1')).toBe(base.get('c1'));
  });

  it('comes back to the same version when a change is undone', () => {
    const base = ResourceMap.of(clusters(5));
    const there = base.with([cluster('c2', { connectTimeoutSeconds: 4 })], ['c4']);
    const back = there.with([cluster('c2'), cluster('c4')]);
    expect(back.version).toBe(base.version);
    expect(back.diffFrom(base)).toEqual({ upserts: [], removed: [] });
  });

  it('says what changed from an older map, derived or not', () => {
    const base = ResourceMap.of(clusters(6));
    const a = base.with([cluster('c1', { connectTimeoutSeconds: 2 })], ['c2']);
    const b = a.with([cluster('x')], ['c3']);
    const diff = b.diffFrom(base);
    expect(diff.upserts.map((r) => r.name).sort()).toEqual(['c1', 'x']);
    expect([...diff.removed].sort()).toEqual(['c2', 'c3']);
    // Against an unrelated map built whole, the same answer.
    expect(b.diffFrom(ResourceMap.of(clusters(6))).upserts.map((r) => r.name).sort()).toEqual(['c1', 'x']);
    expect(b.diffFrom(b)).toEqual({ upserts: [], removed: [] });
    expect(b.diffFrom(base)).toBe(diff); // computed once per pair
  });

  it('flattens after many changes and stays equal to the whole map', () => {
    let m = ResourceMap.of(clusters(300));
    const expected = new Map(clusters(300).map((r) => [r.name, r]));
    for (let i = 0; i < 600; i++) {
      const r = cluster(`c${i % 300}`, { connectTimeoutSeconds: 2 + (i % 5) });
      m = m.with([r], i % 7 === 0 ? [`c${(i * 13) % 300}`] : []);
      if (i % 7 === 0) expected.delete(`c${(i * 13) % 300}`); // removals first, then upserts
      expected.set(r.name, r);
    }
    expect(contents(m)).toEqual(contents(expected));
    expect(m.version).toBe(ResourceMap.of(expected.values()).version);
  });

  it('refuses two resources of one name', () => {
    expect(() => ResourceMap.of([cluster('a'), cluster('a')])).toThrow(/duplicate resource "a"/);
  });
});

describe('Snapshot.create', () => {
  const inconsistencies = (...resources: Resource[]): string[] => Snapshot.create(resources).inconsistencies();

  it('finds every reference, whether its target comes before the resource, right after it, or much later', () => {
    const api = endpoints('api', [['127.0.0.1', 9001]]);
    const web = endpoints('web', [['127.0.0.1', 9002]]);
    expect(inconsistencies(api, cluster('api'))).toEqual([]);
    expect(inconsistencies(cluster('api'), api)).toEqual([]);
    expect(inconsistencies(cluster('api'), cluster('web'), routes('ingress', { api: 'api' }), api, web)).toEqual([]);
    expect(inconsistencies(listener('ingress', 10000, 'ingress'), cluster('api'), api, routes('ingress', { api: 'api' }))).toEqual([]);
  });

  it('reports what is missing, type by type in push order, whatever the order of the resources', () => {
    const problems = ['cds "web" refers to missing eds "web"', 'lds "ingress" refers to missing rds "ingress"'];
    expect(inconsistencies(listener('ingress', 10000, 'ingress'), cluster('web'))).toEqual(problems);
    expect(inconsistencies(cluster('web'), listener('ingress', 10000, 'ingress'))).toEqual(problems);
    expect(inconsistencies(cluster('web'), cluster('api'), endpoints('api', []))).toEqual(['cds "web" refers to missing eds "web"']);
    expect(inconsistencies(cluster('api'), endpoints('api', []), cluster('web'))).toEqual(['cds "web" refers to missing eds "web"']);
  });
});

describe('Snapshot.update', () => {
  const base = (): Snapshot => snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api' }), service('api', 9001), service('web', 9002));

  it('shares the maps it does not change and versions the ones it does as a whole build would', () => {
    const s = base();
    const moved = endpoints('web', [['127.0.0.1', 9003]]);
    const next = s.update([moved]);
    expect(next.resources(CDS)).toBe(s.resources(CDS));
    expect(next.resources(RDS)).toBe(s.resources(RDS));
    const whole = snapshot(listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api' }), service('api', 9001), cluster('web'), moved);
    expect(next.version(EDS)).toBe(whole.version(EDS));
    expect(next.inconsistencies()).toEqual([]);
  });

  it('finds what a removal leaves dangling, and what an update resolves', () => {
    const s = base();
    const broken = s.update([], [{ typeUrl: CDS, name: 'api' }]);
    expect(broken.inconsistencies()).toEqual(['rds "ingress" refers to missing cds "api"']);
    const fixed = broken.update([cluster('api')]);
    expect(fixed.inconsistencies()).toEqual([]);
    const routeToNowhere = s.update([routes('ingress', { api: 'api', gone: 'nowhere' })]);
    expect(routeToNowhere.inconsistencies()).toEqual(['rds "ingress" refers to missing cds "nowhere"']);
  });

  it('composes a group on top without copying the shared maps', () => {
    const shared = snapshot(service('api', 9001));
    const own = [listener('ingress', 10000, 'ingress'), routes('ingress', { api: 'api' })];
    const a = Snapshot.compose(shared, own);
    const b = Snapshot.compose(shared, own);
    expect(a.resources(CDS)).toBe(shared.resources(CDS));
    expect(b.resources(RDS)).toBe(a.resources(RDS)); // the same list of own resources gives the same maps
    expect(a.inconsistencies()).toEqual([]);
    expect(() => Snapshot.compose(shared, [cluster('api', { connectTimeoutSeconds: 3 })])).toThrow(/duplicate cds resource "api"/);
  });
});
