import { describe, expect, it } from 'vitest';
import { subsetsOf } from '../../../src/model/subsets.js';
import type { Instance, Service } from '../../../src/model/types.js';

const instance = (id: string, tags: string[] = []): Instance => ({ id, address: '127.0.0.1', port: 8080, tags, meta: {} });
const service = (instances: Instance[]): Service => ({ name: 'api', instances });
const shape = (s: Service, patterns?: readonly string[]) => subsetsOf(s, patterns).map((x) => [x.name, x.instances.map((i) => i.id)]);

describe('subsetsOf', () => {
  it('puts untagged instances in stable, tagged ones in their tag’s subset, subsets in name order', () => {
    const s = service([instance('c', ['shadow']), instance('a'), instance('b', ['beta', 'zone-1']), instance('d', ['canary'])]);
    expect(shape(s)).toEqual([
      ['beta', ['b']],
      ['canary', ['d']],
      ['shadow', ['c']],
      ['stable', ['a']],
    ]);
  });

  it('keeps an empty stable subset, and sorts each subset’s instances by id', () => {
    const s = service([instance('z', ['beta']), instance('m', ['beta']), instance('a', ['beta'])]);
    expect(shape(s)).toEqual([
      ['beta', ['a', 'm', 'z']],
      ['stable', []],
    ]);
  });

  it('puts an instance with several routing tags in each of their subsets, and matches prefixes', () => {
    const s = service([instance('x', ['dev-laptop-1', 'beta']), instance('y', ['dev-']), instance('w', ['zeta'])]);
    expect(shape(s, ['beta', 'dev-*'])).toEqual([
      ['beta', ['x']],
      ['dev-laptop-1', ['x']],
      ['stable', ['w', 'y']],
    ]);
  });

  it('gives a tag `stable` (a prefix pattern may match it) no second stable subset', () => {
    const s = service([instance('b', ['stable']), instance('a'), instance('c', ['stale'])]);
    expect(shape(s, ['st*'])).toEqual([
      ['stable', ['a', 'b']],
      ['stale', ['c']],
    ]);
  });
});
