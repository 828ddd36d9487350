import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rulesJsonSchema } from '../../../src/model/rules-json-schema.js';

// docs/rules.schema.json is generated from the zod schema, like a golden file: this
// test fails when it is stale; UPDATE_SCHEMA=1 rewrites it.
const FILE = 'docs/rules.schema.json';

type Json = Record<string, unknown>;
const at = (schema: Json, ...keys: string[]): Json => keys.reduce<Json>((node, key) => node[key] as Json, schema);

describe('the rules JSON Schema', () => {
  const schema = rulesJsonSchema();
  const text = `${JSON.stringify(schema, null, 2)}\n`;

  it(`is what ${FILE} holds`, () => {
    if (process.env.UPDATE_SCHEMA === '1') writeFileSync(FILE, text);
    let published = '';
    try {
      published = readFileSync(FILE, 'utf8');
    } catch {
      // Reported below as a difference.
    }
    expect(published, `${FILE} is stale: rewrite it with UPDATE_SCHEMA=1 npx vitest run test/unit/model/rules-json-schema.test.ts`).toBe(text);
  });

  it('is draft-07 and refuses unknown keys, as the validator does', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.additionalProperties).toBe(false);
    const service = at(schema, 'properties', 'services', 'additionalProperties');
    expect(service.additionalProperties).toBe(false);
    expect(at(schema, 'properties', 'services', 'propertyNames').pattern).toBe('^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$');
  });

  it('tells editors "exactly one of" with oneOf, and leaves no private annotation behind', () => {
    const route = at(schema, 'properties', 'services', 'additionalProperties', 'properties', 'routes', 'items');
    expect(route.oneOf).toEqual([{ required: ['to'] }, { required: ['split'] }]);
    const header = at(route, 'properties', 'match', 'properties', 'headers', 'items');
    expect(header.oneOf).toEqual(['exact', 'prefix', 'regex', 'present', 'absent'].map((k) => ({ required: [k] })));
    expect(text).not.toContain('exactlyOneOf');
  });

  it('shows defaults without requiring the keys that have them', () => {
    const mirror = at(schema, 'properties', 'services', 'additionalProperties', 'properties', 'mirrors', 'items');
    expect(mirror.required).toEqual(['name', 'to', 'percent']);
    expect(at(mirror, 'properties', 'methods').default).toEqual(['GET', 'HEAD', 'OPTIONS']);
    expect(at(schema, 'properties', 'settings', 'properties', 'dev_route_header').default).toBe('x-dev-route');
  });
});
