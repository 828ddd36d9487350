// What every input source offers the pipeline. A source emits complete, validated
// inputs only; when it fails it keeps its last good state, says so in its status, and
// emits nothing — never an empty world because a watch failed.

export interface SourceStatus {
  /** e.g. `consul-catalog`, `file-registry`, `rules-directory`. */
  readonly source: string;
  /** False while the latest attempt failed (the last good state is still in force). */
  readonly healthy: boolean;
  /** When the source last produced (or confirmed) a good state, ms since epoch. */
  readonly lastSuccessMs?: number;
  readonly lastError?: string;
  /** How many good states it has emitted. */
  readonly updates: number;
}

export interface Source<T> {
  /** Starts watching; resolves once the first good state has been emitted, rejects if there is none. */
  start(onUpdate: (value: T) => void): Promise<void>;
  stop(): Promise<void>;
  status(): SourceStatus;
}
