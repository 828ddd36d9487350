// Rule documents in Consul KV, for several replicas sharing one store:
//   <prefix>/docs/<name>      the document's YAML text
//   <prefix>/history/<time>   one JSON entry per change
// A write is one Consul transaction: the document with check-and-set on its
// ModifyIndex (the document's version) plus its history entry, so either both land or
// neither does, and a writer holding a stale version gets 409 instead of a lost update.
import { randomBytes } from 'node:crypto';
import {
  RulesUnavailableError,
  StaleVersionError,
  checkDocumentName,
  type HistoryEntry,
  type RuleDocumentEntry,
  type RulesStore,
  type WriteOptions,
} from './rules-store.js';

interface KvPair {
  Key: string;
  Value: string | null;
  ModifyIndex: number;
}

export interface ConsulKvStoreOptions {
  /** host:port of a Consul agent's HTTP API. */
  address: string;
  prefix: string;
  token?: string;
  /** Blocking query wait of the watch, e.g. `30s`. */
  wait?: string;
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (value: string | null): string => (value === null ? '' : Buffer.from(value, 'base64').toString('utf8'));

export class ConsulKvRulesStore implements RulesStore {
  private readonly base: string;
  private readonly prefix: string;

  constructor(private readonly options: ConsulKvStoreOptions) {
    this.base = `http://${options.address}`;
    this.prefix = options.prefix.replace(/^\/+|\/+$/g, '');
  }

  get description(): string {
    return `consul kv ${this.options.address}/${this.prefix}`;
  }

  sourceOf(name: string): string {
    return `${this.prefix}/docs/${name}`;
  }

  private headers(): Record<string, string> {
    return this.options.token ? { 'x-consul-token': this.options.token } : {};
  }

  private async list(folder: 'docs' | 'history', query = '', signal?: AbortSignal): Promise<{ pairs: KvPair[]; index: number }> {
    let response: Response;
    try {
      response = await fetch(`${this.base}/v1/kv/${this.prefix}/${folder}/?recurse=true${query}`, {
        headers: this.headers(),
        signal: signal ?? AbortSignal.timeout(10_000),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new RulesUnavailableError(`${this.description}: Consul did not answer (${err instanceof Error ? err.message : String(err)})`, { cause: err });
    }
    const index = Number(response.headers.get('x-consul-index') ?? '0');
    if (response.status === 404) return { pairs: [], index };
    if (!response.ok) throw new RulesUnavailableError(`${this.description}: Consul answered ${response.status} ${await response.text()}`);
    return { pairs: (await response.json()) as KvPair[], index };
  }

  async read(): Promise<RuleDocumentEntry[]> {
    const { pairs } = await this.list('docs');
    const start = `${this.prefix}/docs/`.length;
    return pairs
      .filter((p) => p.Key.length > start)
      .map((p) => ({ name: p.Key.slice(start), text: unb64(p.Value), version: String(p.ModifyIndex) }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async get(name: string): Promise<RuleDocumentEntry | undefined> {
    checkDocumentName(name);
    return (await this.read()).find((d) => d.name === name);
  }

  async put(name: string, text: string, options: WriteOptions): Promise<RuleDocumentEntry> {
    checkDocumentName(name);
    const key = `${this.prefix}/docs/${name}`;
    const expected = options.expectedVersion;
    const op =
      expected === undefined
        ? { Verb: 'set', Key: key, Value: b64(text) }
        : { Verb: 'cas', Key: key, Value: b64(text), Index: expected === '' ? 0 : Number(expected) };
    if (expected !== undefined && expected !== '' && !/^\d+$/.test(expected)) {
      throw new StaleVersionError(name, expected, (await this.get(name))?.version);
    }
    const previous = expected === undefined ? (await this.get(name))?.version ?? '' : expected;
    const entry = { at: new Date().toISOString(), actor: options.actor, action: 'put' as const, name, previousVersion: previous, text };
    await this.transact(name, expected, [op, this.historyOp(entry)]);
    const written = await this.get(name);
    if (!written) throw new RulesUnavailableError(`${this.description}: "${name}" was written but cannot be read back`);
    return written;
  }

  async delete(name: string, options: WriteOptions): Promise<void> {
    checkDocumentName(name);
    const current = await this.get(name);
    if (!current) throw new StaleVersionError(name, options.expectedVersion ?? '', undefined);
    const key = `${this.prefix}/docs/${name}`;
    const expected = options.expectedVersion ?? current.version;
    const entry = { at: new Date().toISOString(), actor: options.actor, action: 'delete' as const, name, previousVersion: current.version, text: '' };
    await this.transact(name, expected, [{ Verb: 'delete-cas', Key: key, Index: Number(expected) }, this.historyOp(entry)]);
  }

  async history(limit = 100): Promise<HistoryEntry[]> {
    const { pairs } = await this.list('history');
    return pairs
      .sort((a, b) => (a.Key < b.Key ? 1 : -1))
      .slice(0, limit)
      .map((p) => JSON.parse(unb64(p.Value)) as HistoryEntry);
  }

  watch(onChange: () => void): () => void {
    const controller = new AbortController();
    void (async () => {
      let index = 0;
      let failures = 0;
      while (!controller.signal.aborted) {
        try {
          const result = await this.list('docs', `&index=${index}&wait=${this.options.wait ?? '30s'}`, controller.signal);
          failures = 0;
          // Consul's rules for blocking queries: an index that goes backwards resets;
          // 0 is never a valid index to block on.
          const next = result.index < index ? 0 : Math.max(result.index, 1);
          if (next !== index) {
            index = next;
            onChange();
          }
        } catch {
          if (controller.signal.aborted) return;
          failures++;
          onChange(); // let the reader notice the failure and report it
          const delay = Math.min(30_000, 100 * 2 ** Math.min(failures, 9)) * (0.5 + Math.random() / 2);
          await new Promise((resolve) => setTimeout(resolve, delay).unref());
        }
      }
    })();
    return () => controller.abort();
  }

  private sequence = 0;

  private historyOp(entry: HistoryEntry): object {
    // Keys sort by time, then by this process's sequence (two writes in one millisecond
    // keep their order); the random part keeps replicas from colliding.
    this.sequence = (this.sequence + 1) % 1_000_000;
    const key = `${this.prefix}/history/${Date.now().toString().padStart(15, '0')}-${this.sequence.toString().padStart(6, '0')}-${randomBytes(4).toString('hex')}`;
    return { Verb: 'set', Key: key, Value: b64(JSON.stringify(entry)) };
  }

  private async transact(name: string, expected: string | undefined, ops: object[]): Promise<void> {
    let response: Response;
    try {
      response = await fetch(`${this.base}/v1/txn`, {
        method: 'PUT',
        headers: { ...this.headers(), 'content-type': 'application/json' },
        body: JSON.stringify(ops.map((KV) => ({ KV }))),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new RulesUnavailableError(`${this.description}: Consul did not answer (${err instanceof Error ? err.message : String(err)})`, { cause: err });
    }
    if (response.status === 409) {
      throw new StaleVersionError(name, expected ?? '', (await this.get(name))?.version);
    }
    if (!response.ok) throw new RulesUnavailableError(`${this.description}: Consul answered ${response.status} ${await response.text()}`);
  }
}
