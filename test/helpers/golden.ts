// Golden translation files (STYLE.md, "Tests"; modelled on Envoy Gateway's
// internal/xds/translator/testdata and utils/test/flags.go). Each case is a folder
// test/golden/<case>/ with
//   input.yaml   a registry, rule documents and the proxies whose snapshots to render;
//   output.yaml  what the translator makes of it: the shared clusters and endpoints,
//                and per proxy its listeners, routes (and a sidecar's own clusters).
// Outputs are the resources as they go over the wire (encoded, then decoded), so
// defaults and enums read the same however a builder wrote them. UPDATE_GOLDEN=1
// rewrites outputs (and removes stale ones); without it a difference fails with a diff,
// and so does an input without output or an output without input.
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTwoFilesPatch } from 'diff';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import type { Instance, Model, Registry, Service } from '../../src/model/types.js';
import { formatProblem, validateRules, type RuleInput } from '../../src/model/validate-rules.js';
import { serviceDefinitionSchema } from '../../src/sources/file-registry.js';
import { proxyKeyOf, type ProxyKey } from '../../src/translate/proxy.js';
import { translateForProxy, translateShared, type TypedObject } from '../../src/translate/translate.js';
import { Snapshot } from '../../src/xds/cache.js';
import { Resource } from '../../src/xds/resource.js';
import { TypeUrl, resourceName, unpackAny, type ResourceObject, type ResourceTypeUrl } from '../../src/xds/resources.js';
import { parseYaml, YamlSyntaxError } from '../../src/util/yaml.js';

export const GOLDEN_DIR = fileURLToPath(new URL('../golden/', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A path as outputs and messages show it: from the repository root, whatever the cwd. */
const display = (path: string): string => {
  const rel = relative(REPO_ROOT, path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel;
};
export const INPUT_FILE = 'input.yaml';
export const OUTPUT_FILE = 'output.yaml';

/** `UPDATE_GOLDEN=1`: rewrite outputs instead of comparing them. */
export const updateGolden = (): boolean => process.env.UPDATE_GOLDEN === '1';

export const UPDATE_HINT = 'UPDATE_GOLDEN=1 npx vitest run test/unit/translate/golden.test.ts';

/**
 * The clock rules are validated against (dev route expiry), so outputs never depend on
 * the day the test runs. An input may set its own `now`.
 */
export const GOLDEN_NOW = '2026-06-01T12:00:00Z';

// ---------------------------------------------------------------------------------
// Input.

const proxySchema = z
  .object({
    cluster: z.string().default(''),
    metadata: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

const inputSchema = z
  .object({
    now: z.iso.datetime({ offset: true }).default(GOLDEN_NOW),
    registry: z.object({ services: z.array(serviceDefinitionSchema).default([]) }).strict(),
    rules: z.unknown().optional(),
    proxies: z.array(proxySchema).min(1, 'list at least one proxy to render'),
  })
  .strict();

export interface GoldenProxy {
  readonly cluster: string;
  readonly metadata: Record<string, unknown>;
  readonly key: ProxyKey;
}

export interface GoldenCase {
  readonly model: Model;
  readonly proxies: readonly GoldenProxy[];
  /** Rule warnings (an empty subset, an expired dev route left out), formatted. */
  readonly warnings: readonly string[];
}

export class GoldenInputError extends Error {
  constructor(
    file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file} is not a usable golden input:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'GoldenInputError';
  }
}

function registryOf(file: string, services: z.infer<typeof serviceDefinitionSchema>[], problems: string[]): Registry {
  const byService = new Map<string, Instance[]>();
  const ids = new Set<string>();
  services.forEach((def, i) => {
    const id = def.id ?? `${def.name}-${def.address}-${def.port}`;
    if (ids.has(id)) problems.push(`${file}: registry.services[${i}].id: instance id "${id}" is used twice`);
    ids.add(id);
    byService.set(def.name, [...(byService.get(def.name) ?? []), { id, address: def.address, port: def.port, tags: def.tags, meta: def.meta }]);
  });
  return { services: new Map<string, Service>([...byService].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, instances]) => [name, { name, instances }])) };
}

/**
 * Reads one input: the registry, the rules through the real validator (with the
 * registry, as an edit is checked; an expired dev route left out with a warning, as
 * stored rules are reloaded), and each proxy's key as the server reads it from the
 * node. Every problem is collected, each with `file:line:col` where known. `file` is
 * how problems and warnings name the input: relative, so outputs hold no absolute path.
 */
export function parseGoldenInput(file: string, text: string): GoldenCase {
  let parsed;
  try {
    parsed = parseYaml(file, text);
  } catch (err) {
    if (err instanceof YamlSyntaxError) throw new GoldenInputError(file, err.problems);
    throw err;
  }
  const shape = inputSchema.safeParse(parsed.value ?? {});
  if (!shape.success) {
    throw new GoldenInputError(
      file,
      shape.error.issues.map((i) => `${parsed.locate(i.path)}: ${i.path.join('.') || '(top level)'}: ${i.message}`),
    );
  }
  const input = shape.data;
  const problems: string[] = [];
  const registry = registryOf(file, input.registry.services, problems);

  const documents = input.rules === undefined ? [] : Array.isArray(input.rules) ? input.rules : [input.rules];
  const inputs = documents.map(
    (value, i): RuleInput => {
      const at: PropertyKey[] = Array.isArray(input.rules) ? ['rules', i] : ['rules'];
      return { source: Array.isArray(input.rules) ? `${file}#rules[${i}]` : file, value, locate: (path) => parsed.locate([...at, ...path]) };
    },
  );
  const validation = validateRules(inputs, { registry, now: new Date(input.now), expiredDevRoutes: 'warning' });
  problems.push(...validation.errors.map(formatProblem));

  const proxies: GoldenProxy[] = [];
  input.proxies.forEach((p, i) => {
    try {
      proxies.push({ cluster: p.cluster, metadata: p.metadata, key: proxyKeyOf(p.cluster, p.metadata) });
    } catch (err) {
      problems.push(`${parsed.locate(['proxies', i])}: proxies[${i}]: ${err instanceof Error ? err.message : String(err)}`);
    }
  });

  if (problems.length > 0 || !validation.ruleSet) throw new GoldenInputError(file, problems);
  return { model: { registry, rules: validation.ruleSet }, proxies, warnings: validation.warnings.map(formatProblem) };
}

// ---------------------------------------------------------------------------------
// Output.

export interface RenderedProxy {
  cluster: string;
  metadata: Record<string, unknown>;
  listeners: ResourceObject[];
  routes: ResourceObject[];
  /** Clusters only this proxy gets (a sidecar's local application). */
  clusters?: ResourceObject[];
}

export interface GoldenOutput {
  rule_warnings?: string[];
  clusters: ResourceObject[];
  endpoints: ResourceObject[];
  proxies: RenderedProxy[];
}

const byName = (typeUrl: ResourceTypeUrl) => (a: ResourceObject, b: ResourceObject): number => {
  const x = resourceName(typeUrl, a);
  const y = resourceName(typeUrl, b);
  return x < y ? -1 : x > y ? 1 : 0;
};

/**
 * Keys in the order a reader looks for them: `@type` and `name` first, the rest in
 * field-number order as decoding gives them. Changes nothing but the order.
 */
function readable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(readable);
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value).map(([k, v]): [string, unknown] => [k, readable(v)]);
  const rank = (k: string): number => (k === '@type' ? 0 : k === 'name' ? 1 : 2);
  return Object.fromEntries(entries.sort(([a], [b]) => rank(a) - rank(b)));
}

/** The resource as a proxy receives it: encoded as the server encodes it, decoded back. */
function wire(typed: TypedObject): { resource: Resource; object: ResourceObject } {
  const resource = Resource.fromObject(typed.typeUrl, typed.object);
  return { resource, object: readable(unpackAny(resource.any).object) as ResourceObject };
}

function ofType(items: readonly { resource: Resource; object: ResourceObject }[], typeUrl: ResourceTypeUrl): ResourceObject[] {
  return items.filter((i) => i.resource.typeUrl === typeUrl).map((i) => i.object).sort(byName(typeUrl));
}

/**
 * Translates a case. Each proxy's snapshot is checked as the cache checks it before
 * publishing (no duplicate names, every reference resolves), so an output is never
 * something the server would refuse to serve.
 */
export function renderGolden(golden: GoldenCase, file = 'input.yaml'): GoldenOutput {
  const shared = translateShared(golden.model).map(wire);
  const proxies = golden.proxies.map((p, i): RenderedProxy => {
    const own = translateForProxy(golden.model, p.key).map(wire);
    const snapshot = Snapshot.create([...shared, ...own].map((r) => r.resource));
    const problems = snapshot.inconsistencies();
    if (problems.length > 0) throw new Error(`${file}: proxies[${i}]: the snapshot is inconsistent:\n${problems.map((x) => `  - ${x}`).join('\n')}`);
    const clusters = ofType(own, TypeUrl.Cluster);
    return {
      cluster: p.cluster,
      metadata: p.metadata,
      listeners: ofType(own, TypeUrl.Listener),
      routes: ofType(own, TypeUrl.RouteConfiguration),
      ...(clusters.length > 0 ? { clusters } : {}),
    };
  });
  return {
    ...(golden.warnings.length > 0 ? { rule_warnings: [...golden.warnings] } : {}),
    clusters: ofType(shared, TypeUrl.Cluster),
    endpoints: ofType(shared, TypeUrl.ClusterLoadAssignment),
    proxies,
  };
}

const HEADER = `# Generated from ${INPUT_FILE} by test/unit/translate/golden.test.ts. Do not edit:\n# rewrite with ${UPDATE_HINT}\n`;

/** Stable text: no line folding, no anchors (equal objects are written out each time). */
export function goldenYaml(output: GoldenOutput): string {
  return HEADER + stringify(output, { lineWidth: 0, aliasDuplicateObjects: false });
}

// ---------------------------------------------------------------------------------
// The folder.

export interface GoldenListing {
  /** Case folders that hold an input, sorted. */
  readonly cases: string[];
  /** Stale outputs, stray files, folders without input: each fails the run. */
  readonly problems: string[];
}

/** Lists the cases of `dir`; with `update`, removes stale outputs instead of reporting them. */
export function listGoldenCases(dir = GOLDEN_DIR, update = updateGolden()): GoldenListing {
  const cases: string[] = [];
  const problems: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const folder = join(dir, name);
    if (!statSync(folder).isDirectory()) {
      if (name !== 'README.md') problems.push(`${display(folder)}: a stray file; a case is a folder with ${INPUT_FILE}`);
      continue;
    }
    const files = readdirSync(folder);
    for (const f of files) {
      if (f !== INPUT_FILE && f !== OUTPUT_FILE) problems.push(`${display(join(folder, f))}: a stray file; a case holds only ${INPUT_FILE} and ${OUTPUT_FILE}`);
    }
    if (files.includes(INPUT_FILE)) {
      cases.push(name);
    } else if (files.includes(OUTPUT_FILE)) {
      if (update) {
        rmSync(join(folder, OUTPUT_FILE));
        if (readdirSync(folder).length === 0) rmdirSync(folder);
      } else {
        problems.push(`${display(join(folder, OUTPUT_FILE))}: stale: there is no ${INPUT_FILE} beside it; remove it, or run ${UPDATE_HINT}`);
      }
    } else if (files.length === 0) {
      problems.push(`${display(folder)}: an empty case folder; add ${INPUT_FILE} or remove it`);
    }
  }
  return { cases, problems };
}

export const casePaths = (name: string, dir = GOLDEN_DIR): { input: string; output: string } => ({
  input: join(dir, name, INPUT_FILE),
  output: join(dir, name, OUTPUT_FILE),
});

/**
 * Compares `actual` with the file (or, with `update`, writes it). Returns what is
 * wrong, with a unified diff from expected to actual, or undefined when they agree.
 */
export function checkGoldenFile(file: string, actual: string, update = updateGolden()): string | undefined {
  const expected = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  if (update) {
    if (expected !== actual) writeFileSync(file, actual);
    return undefined;
  }
  const shown = display(file);
  if (expected === undefined) return `${shown} is missing: create it with ${UPDATE_HINT}`;
  if (expected === actual) return undefined;
  const patch = createTwoFilesPatch(`${shown} (expected)`, `${shown} (translated)`, expected, actual, undefined, undefined, { context: 3 });
  return `${shown} differs from what the translator makes of ${INPUT_FILE}. If the change is intended, rewrite it with ${UPDATE_HINT} and review the diff.\n${patch}`;
}

/** One case, end to end: read the input, translate, compare with (or write) the output. */
export function runGoldenCase(name: string, dir = GOLDEN_DIR, update = updateGolden()): string | undefined {
  const paths = casePaths(name, dir);
  const shown = display(paths.input);
  const golden = parseGoldenInput(shown, readFileSync(paths.input, 'utf8'));
  return checkGoldenFile(paths.output, goldenYaml(renderGolden(golden, shown)), update);
}

/** A committed output, as written (undefined when there is none yet). */
export function readGoldenOutput(name: string, dir = GOLDEN_DIR): GoldenOutput | undefined {
  const { output } = casePaths(name, dir);
  return existsSync(output) ? (parse(readFileSync(output, 'utf8')) as GoldenOutput) : undefined;
}
