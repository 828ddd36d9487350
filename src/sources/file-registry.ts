// The file registry, the embedded default: a folder of YAML files holding service
// instances in the shape of Consul's service definitions (name, id, address, port,
// tags, meta). Errors name the file, line and field; nothing Envoy-specific here.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Instance, Registry, Service } from '../model/types.js';
import { parseYaml, YamlSyntaxError } from '../util/yaml.js';
import type { Logger } from '../log.js';
import { watchDirectory } from './dir-watch.js';
import type { Source, SourceStatus } from './source.js';

const serviceName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'lower-case letters, digits and dashes, at most 63');

export const serviceDefinitionSchema = z
  .object({
    name: serviceName,
    id: z.string().min(1).optional().describe('unique per instance; defaults to name-address-port'),
    address: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    tags: z.array(z.string().min(1)).default([]),
    meta: z.record(z.string(), z.string()).default({}),
  })
  .strict();

export const registryFileSchema = z
  .object({
    services: z.array(serviceDefinitionSchema),
  })
  .strict();

export class RegistryError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid registry:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'RegistryError';
  }
}

/** Parses one registry file; every problem is reported with its position. */
export function parseRegistryFile(file: string, text: string): z.infer<typeof registryFileSchema>['services'] {
  let parsed;
  try {
    parsed = parseYaml(file, text);
  } catch (err) {
    if (err instanceof YamlSyntaxError) throw new RegistryError(err.problems);
    throw err;
  }
  const result = registryFileSchema.safeParse(parsed.value ?? { services: [] });
  if (!result.success) {
    throw new RegistryError(
      result.error.issues.map((i) => {
        const p = i.code === 'unrecognized_keys' ? [...i.path, i.keys[0]!] : i.path;
        return `${parsed.locate(p)}: ${p.join('.') || '(top level)'}: ${i.message}`;
      }),
    );
  }
  return result.data.services;
}

const isYaml = (f: string): boolean => f.endsWith('.yaml') || f.endsWith('.yml');

/** Reads every YAML file of `dir` (sorted) into one registry. Throws with all problems. */
export function loadRegistryDir(dir: string): Registry {
  let files: string[];
  try {
    files = readdirSync(dir).filter(isYaml).sort();
  } catch (err) {
    throw new RegistryError([`${dir}: cannot read the registry folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  const problems: string[] = [];
  const byService = new Map<string, Instance[]>();
  const ids = new Map<string, string>();
  for (const name of files) {
    const file = path.join(dir, name);
    try {
      const defs = parseRegistryFile(file, readFileSync(file, 'utf8'));
      defs.forEach((def, i) => {
        const id = def.id ?? `${def.name}-${def.address}-${def.port}`;
        const seen = ids.get(id);
        if (seen) {
          problems.push(`${file}: services.${i}.id: instance id "${id}" is already used in ${seen}`);
          return;
        }
        ids.set(id, file);
        const list = byService.get(def.name) ?? [];
        list.push({ id, address: def.address, port: def.port, tags: def.tags, meta: def.meta });
        byService.set(def.name, list);
      });
    } catch (err) {
      if (err instanceof RegistryError) problems.push(...err.problems);
      else problems.push(`${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (problems.length > 0) throw new RegistryError(problems);
  const services = new Map<string, Service>(
    [...byService.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, instances]) => [name, { name, instances }]),
  );
  return { services };
}

export interface FileRegistryOptions {
  dir: string;
  logger: Logger;
  debounceMs?: number;
  pollMs?: number;
}

/**
 * The file registry as a live source: reloads the folder when it changes. A bad edit
 * (a half-written file included) is refused with file, line and reason, and the
 * previous registry stays in force; so does a deleted folder, which also marks the
 * source unhealthy until it is back.
 */
export class FileRegistrySource implements Source<Registry> {
  private stopWatch?: () => void;
  private current?: Registry;
  private fingerprint = '';
  private state: { healthy: boolean; lastSuccessMs?: number; lastError?: string; updates: number } = { healthy: false, updates: 0 };

  constructor(private readonly options: FileRegistryOptions) {}

  start(onUpdate: (registry: Registry) => void): Promise<void> {
    this.reload(onUpdate);
    if (!this.current) return Promise.reject(new RegistryError([this.state.lastError ?? 'no registry']));
    this.stopWatch = watchDirectory(this.options.dir, () => this.reload(onUpdate), this.options);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.stopWatch?.();
    return Promise.resolve();
  }

  status(): SourceStatus {
    return { source: 'file-registry', ...this.state };
  }

  private reload(onUpdate: (registry: Registry) => void): void {
    const log = this.options.logger;
    let next: Registry;
    try {
      next = loadRegistryDir(this.options.dir);
    } catch (err) {
      const problems = err instanceof RegistryError ? err.problems : [String(err)];
      this.state = { ...this.state, healthy: false, lastError: problems.join('; ') };
      log.error({ dir: this.options.dir, problems }, 'registry refused; the previous one stays in force');
      return;
    }
    this.state = { ...this.state, healthy: true, lastSuccessMs: Date.now(), lastError: undefined };
    const fingerprint = registryFingerprint(next);
    if (fingerprint === this.fingerprint) return;
    this.fingerprint = fingerprint;
    this.current = next;
    this.state.updates += 1;
    log.info({ dir: this.options.dir, services: next.services.size }, 'registry loaded');
    onUpdate(next);
  }
}

/** Equal registries give equal fingerprints (services and instances are sorted). */
export function registryFingerprint(registry: Registry): string {
  return JSON.stringify([...registry.services.values()].map((s) => [s.name, [...s.instances].sort((a, b) => (a.id < b.id ? -1 : 1))]));
}
