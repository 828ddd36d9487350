// Rule documents as files in a folder: `<name>.yaml`. Writes go to a temporary file
// that is renamed over the old one, so a reader never sees half a document; the
// history is a JSON-lines file beside them (`.history.jsonl`, not a rules file).
// Concurrency is checked within this process; across replicas use Consul KV.
import { createHash } from 'node:crypto';
import { appendFile, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { watchDirectory } from './dir-watch.js';
import {
  RulesUnavailableError,
  StaleVersionError,
  checkDocumentName,
  type HistoryEntry,
  type RuleDocumentEntry,
  type RulesStore,
  type WriteOptions,
} from './rules-store.js';

const HISTORY = '.history.jsonl';
const versionOf = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

export class DirectoryRulesStore implements RulesStore {
  /** Writes run one at a time, so check-then-write cannot interleave. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly dir: string,
    private readonly watchOptions: { debounceMs?: number; pollMs?: number } = {},
  ) {}

  get description(): string {
    return `directory ${this.dir}`;
  }

  sourceOf(name: string): string {
    return path.join(this.dir, `${name}.yaml`);
  }

  async read(): Promise<RuleDocumentEntry[]> {
    let files: string[];
    try {
      files = (await readdir(this.dir)).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
    } catch (err) {
      throw new RulesUnavailableError(`${this.dir}: cannot read the rules folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
    }
    const entries: RuleDocumentEntry[] = [];
    for (const file of files) {
      const full = path.join(this.dir, file);
      let text: string;
      try {
        text = await readFile(full, 'utf8');
      } catch (err) {
        throw new RulesUnavailableError(`${full}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
      }
      entries.push({ name: file.replace(/\.ya?ml$/, ''), text, version: versionOf(text) });
    }
    return entries;
  }

  async get(name: string): Promise<RuleDocumentEntry | undefined> {
    checkDocumentName(name);
    return (await this.read()).find((e) => e.name === name);
  }

  async put(name: string, text: string, options: WriteOptions): Promise<RuleDocumentEntry> {
    checkDocumentName(name);
    return this.serial(async () => {
      const current = await this.get(name);
      this.checkVersion(name, current, options);
      const target = this.fileOf(name, current);
      const temp = path.join(this.dir, `.${name}.${process.pid}.tmp`);
      await writeFile(temp, text);
      await rename(temp, target);
      const entry = { name, text, version: versionOf(text) };
      await this.record({ at: new Date().toISOString(), actor: options.actor, action: 'put', name, previousVersion: current?.version ?? '', text });
      return entry;
    });
  }

  async delete(name: string, options: WriteOptions): Promise<void> {
    checkDocumentName(name);
    return this.serial(async () => {
      const current = await this.get(name);
      if (!current) throw new StaleVersionError(name, options.expectedVersion ?? '', undefined);
      this.checkVersion(name, current, options);
      await rm(this.fileOf(name, current));
      await this.record({ at: new Date().toISOString(), actor: options.actor, action: 'delete', name, previousVersion: current.version, text: '' });
    });
  }

  async history(limit = 100): Promise<HistoryEntry[]> {
    let text: string;
    try {
      text = await readFile(path.join(this.dir, HISTORY), 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as HistoryEntry)
      .reverse()
      .slice(0, limit);
  }

  watch(onChange: () => void): () => void {
    return watchDirectory(this.dir, onChange, this.watchOptions);
  }

  private fileOf(name: string, current: RuleDocumentEntry | undefined): string {
    // Keep an existing `.yml` file's name; new documents are `.yaml`.
    const yml = path.join(this.dir, `${name}.yml`);
    const yaml = path.join(this.dir, `${name}.yaml`);
    return current && !existsSync(yaml) && existsSync(yml) ? yml : yaml;
  }

  private checkVersion(name: string, current: RuleDocumentEntry | undefined, options: WriteOptions): void {
    const expected = options.expectedVersion;
    if (expected === undefined) return;
    if (expected === '' ? current !== undefined : current?.version !== expected) {
      throw new StaleVersionError(name, expected, current?.version);
    }
  }

  private async record(entry: HistoryEntry): Promise<void> {
    await appendFile(path.join(this.dir, HISTORY), `${JSON.stringify(entry)}\n`);
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
