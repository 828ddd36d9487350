// Configuration comes from three layers, each overriding the one before:
// a YAML file (--config), SHADOWPLANE_* environment variables, then flags.
// Every value remembers where it came from, so an error names the file and line,
// the variable, or the flag that set it.
import { readFileSync } from 'node:fs';
import { parseYaml, YamlSyntaxError } from '../util/yaml.js';
import { z } from 'zod';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Leaf = 'string' | 'number' | 'boolean' | 'list';
interface KeyInfo {
  path: string[];
  leaf: Leaf;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  return s;
}

/** Every settable key of the schema, with the kind of value it takes. */
function leafKeys(schema: z.ZodType, prefix: string[] = []): KeyInfo[] {
  const s = unwrap(schema);
  if (s instanceof z.ZodObject) {
    return Object.entries(s.shape as Record<string, z.ZodType>).flatMap(([k, v]) => leafKeys(v, [...prefix, k]));
  }
  const leaf: Leaf = s instanceof z.ZodNumber ? 'number' : s instanceof z.ZodBoolean ? 'boolean' : s instanceof z.ZodArray ? 'list' : 'string';
  return [{ path: prefix, leaf }];
}

const KEYS = leafKeys(configSchema);
export const envName = (path: readonly string[]): string => `SHADOWPLANE_${path.join('_').toUpperCase()}`;

export interface LoadOptions {
  /** Path of the YAML file, if any. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** `dotted.key` → raw string, from the command line, with the flag that set it. */
  flags?: { key: string; value: string; flag: string }[];
}

type Tree = Record<string, unknown>;

function setIn(tree: Tree, path: readonly string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Tree;
  }
  node[path[path.length - 1]!] = value;
}

/** The typed value of a string from the environment or a flag; undefined (and a problem) if it has none. */
function coerce(raw: string, leaf: Leaf, origin: string, problems: string[]): unknown {
  if (leaf === 'number') {
    const n = Number(raw);
    if (raw.trim() !== '' && !Number.isNaN(n)) return n;
    problems.push(`${origin}: expected a number, got "${raw}"`);
    return undefined;
  }
  if (leaf === 'list') return raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
  if (leaf === 'boolean') {
    if (raw === 'true' || raw === 'false') return raw === 'true';
    problems.push(`${origin}: expected true or false, got "${raw}"`);
    return undefined;
  }
  return raw;
}

function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      typeof v === 'object' && v !== null && !Array.isArray(v) && typeof b === 'object' && b !== null && !Array.isArray(b)
        ? deepMerge(b as Tree, v as Tree)
        : v;
  }
  return out;
}

function readFileLayer(file: string, problems: string[]): { tree: Tree; locate?: (path: readonly PropertyKey[]) => string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${file}: cannot read the configuration file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    return { tree: {} };
  }
  let parsed;
  try {
    parsed = parseYaml(file, text);
  } catch (err) {
    if (err instanceof YamlSyntaxError) problems.push(...err.problems);
    else throw err;
    return { tree: {} };
  }
  const value = parsed.value;
  if (value === null || value === undefined) return { tree: {} };
  if (typeof value !== 'object' || Array.isArray(value)) {
    problems.push(`${file}: expected a mapping of configuration keys at the top level`);
    return { tree: {} };
  }
  return { tree: value as Tree, locate: (path) => parsed.locate(path) };
}

/**
 * Where the value at `path` came from: the flag or variable that set it (or one of its
 * parents), else its place in the file.
 */
function originOf(path: readonly PropertyKey[], origins: Map<string, string>, locate?: (p: readonly PropertyKey[]) => string): string {
  for (let n = path.length; n > 0; n--) {
    const hit = origins.get(path.slice(0, n).map(String).join('.'));
    if (hit) return hit;
  }
  return locate ? locate(path) : 'configuration';
}

export function loadConfig(options: LoadOptions = {}): Config {
  const problems: string[] = [];
  const origins = new Map<string, string>();
  const { tree: fileLayer, locate } = options.file ? readFileLayer(options.file, problems) : { tree: {}, locate: undefined };

  const envLayer: Tree = {};
  const env = options.env ?? {};
  const known = new Map(KEYS.map((k) => [envName(k.path), k]));
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('SHADOWPLANE_') || raw === undefined) continue;
    const key = known.get(name);
    if (!key) {
      problems.push(`${name}: unknown environment variable (known: ${[...known.keys()].sort().join(', ')})`);
      continue;
    }
    const value = coerce(raw, key.leaf, name, problems);
    if (value === undefined) continue;
    setIn(envLayer, key.path, value);
    origins.set(key.path.join('.'), name);
  }

  const flagLayer: Tree = {};
  const byDotted = new Map(KEYS.map((k) => [k.path.join('.'), k]));
  for (const { key, value, flag } of options.flags ?? []) {
    const info = byDotted.get(key);
    if (!info) {
      problems.push(`${flag}: unknown configuration key "${key}" (known: ${[...byDotted.keys()].sort().join(', ')})`);
      continue;
    }
    const typed = coerce(value, info.leaf, flag, problems);
    if (typed === undefined) continue;
    setIn(flagLayer, info.path, typed);
    origins.set(key, flag);
  }

  const merged = deepMerge(deepMerge(fileLayer, envLayer), flagLayer);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    problems.push(
      ...result.error.issues.map((issue) => {
        if (issue.code === 'unrecognized_keys') {
          return issue.keys
            .map((k) => `${originOf([...issue.path, k], origins, locate)}: unknown key "${[...issue.path, k].join('.')}"`)
            .join('\n  - ');
        }
        const at = originOf(issue.path, origins, locate);
        return `${at}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`;
      }),
    );
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return result.data;
}

/** Every key with its environment variable, for `--help` and the README. */
export function describeKeys(): { key: string; env: string }[] {
  return KEYS.map((k) => ({ key: k.path.join('.'), env: envName(k.path) }));
}
