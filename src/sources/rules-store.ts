// Where rule documents live. A store holds named YAML documents and knows nothing of
// their meaning: validation happens above it, on the whole set, before a write.
// Two stores: a directory of files (the default) and Consul KV under a prefix (for
// several replicas), both with optimistic concurrency and a history of changes.

export interface RuleDocumentEntry {
  /** `api`, `beta-users`: the file name without `.yaml`, or the key below the prefix. */
  readonly name: string;
  readonly text: string;
  /** Opaque; changes whenever the document does. Send it back to update or delete. */
  readonly version: string;
}

export interface HistoryEntry {
  /** ISO-8601 time of the change. */
  readonly at: string;
  /** Who made it: the admin API's caller, or `cli`. */
  readonly actor: string;
  readonly action: 'put' | 'delete';
  readonly name: string;
  /** The version the change replaced; empty when it created the document. */
  readonly previousVersion: string;
  /** The document's text after a put (empty for a delete). */
  readonly text: string;
}

export interface WriteOptions {
  /**
   * The version the writer last saw. Undefined: write whatever is there. Empty string:
   * create only (fails if the document exists).
   */
  readonly expectedVersion?: string;
  readonly actor: string;
}

export class StaleVersionError extends Error {
  readonly code = 'SP_RULES_STALE_VERSION';
  constructor(
    readonly document: string,
    readonly expected: string,
    readonly actual: string | undefined,
  ) {
    super(
      actual === undefined
        ? `rule document "${document}" does not exist (expected version ${expected}); read it again`
        : expected === ''
          ? `rule document "${document}" already exists (version ${actual}); read it and send its version to replace it`
          : `rule document "${document}" changed since version ${expected} (now ${actual}); read it again and reapply your change`,
    );
    this.name = 'StaleVersionError';
  }
}

export class RulesUnavailableError extends Error {
  readonly code = 'SP_RULES_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RulesUnavailableError';
  }
}

export const DOCUMENT_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

export function checkDocumentName(name: string): void {
  if (!DOCUMENT_NAME.test(name) || name.endsWith('.yaml') || name.endsWith('.yml')) {
    throw new Error(`"${name}" is not a rule document name: use lower-case letters, digits, '.', '_' and '-', at most 63, without .yaml`);
  }
}

export interface RulesStore {
  /** Every document. Throws RulesUnavailableError when the store cannot be read. */
  read(): Promise<RuleDocumentEntry[]>;
  get(name: string): Promise<RuleDocumentEntry | undefined>;
  put(name: string, text: string, options: WriteOptions): Promise<RuleDocumentEntry>;
  delete(name: string, options: WriteOptions): Promise<void>;
  /** Newest first. */
  history(limit?: number): Promise<HistoryEntry[]>;
  /** Calls `onChange` when documents may have changed; returns stop. */
  watch(onChange: () => void): () => void;
  readonly description: string;
  /** How problems name a document: its file, or its key. */
  sourceOf(name: string): string;
}
