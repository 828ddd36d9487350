// The rules as a pipeline input: the store's documents, validated as one set. A set
// with any error is refused whole and the last good one stays in force; so it does
// when the store cannot be read, or holds no document at all (a deleted folder, a
// wiped prefix). Removing every rule takes an explicit empty document (`{}`).
import type { Logger } from '../log.js';
import { emptyRuleSet, type RuleSet } from '../model/rules.js';
import { formatProblem, readRuleText, validateRules, type RuleInput, type RuleProblem } from '../model/validate-rules.js';
import type { RulesStore } from './rules-store.js';
import type { Source, SourceStatus } from './source.js';

export interface RulesSourceOptions {
  store: RulesStore;
  logger: Logger;
  now?: () => Date;
}

export class RulesSource implements Source<RuleSet> {
  private stopWatch?: () => void;
  private fingerprint?: string;
  private state: { healthy: boolean; lastSuccessMs?: number; lastError?: string; updates: number } = { healthy: false, updates: 0 };
  private reading: Promise<void> = Promise.resolve();
  private expiryTimer?: NodeJS.Timeout;
  private warnings: readonly RuleProblem[] = [];

  constructor(private readonly options: RulesSourceOptions) {}

  async start(onUpdate: (rules: RuleSet) => void): Promise<void> {
    await this.reload(onUpdate);
    if (this.fingerprint === undefined) {
      // Nothing good to keep yet: run without rules (routing by the registry alone)
      // and keep saying why, until the store has a valid set.
      this.fingerprint = 'none';
      onUpdate(emptyRuleSet());
    }
    this.stopWatch = this.options.store.watch(() => this.queueReload(onUpdate));
    this.onUpdate = onUpdate;
  }

  private onUpdate?: (rules: RuleSet) => void;
  private stopped = false;

  private queueReload(onUpdate: (rules: RuleSet) => void): void {
    if (this.stopped) return;
    this.reading = this.reading.then(() => this.reload(onUpdate));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopWatch?.();
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    await this.reading;
  }

  /**
   * Dev routes end by themselves: at the earliest expiry the set is read again, and
   * validation (which drops expired dev routes) yields the set without it.
   */
  private scheduleExpiry(rules: RuleSet): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    const now = this.options.now?.().getTime() ?? Date.now();
    const next = Math.min(
      ...Object.values(rules.services).flatMap((s) => s.dev_routes.map((d) => Date.parse(d.expires))).filter((t) => t > now),
    );
    if (!Number.isFinite(next)) return;
    // setTimeout holds at most ~24.8 days; a later expiry is re-checked then.
    const delay = Math.min(next - now + 1, 2 ** 31 - 1);
    this.expiryTimer = setTimeout(() => {
      if (this.onUpdate) this.queueReload(this.onUpdate);
    }, delay);
    this.expiryTimer.unref();
  }

  status(): SourceStatus {
    return { source: 'rules', ...this.state };
  }

  /** Warnings of the rule set in force (e.g. a subset no instance carries yet). */
  currentWarnings(): readonly RuleProblem[] {
    return this.warnings;
  }

  private fail(message: string, problems: readonly RuleProblem[] = []): void {
    this.state = { ...this.state, healthy: false, lastError: message };
    this.options.logger.error(
      { store: this.options.store.description, problems: problems.map(formatProblem) },
      `${message}; the last good rules stay in force`,
    );
  }

  private async reload(onUpdate: (rules: RuleSet) => void): Promise<void> {
    const { store } = this.options;
    let documents;
    try {
      documents = await store.read();
    } catch (err) {
      this.fail(err instanceof Error ? err.message : String(err));
      return;
    }
    if (documents.length === 0) {
      this.fail(`${store.description} holds no rule document (to remove every rule, store an empty document: {})`);
      return;
    }
    const inputs: RuleInput[] = [];
    const syntax: RuleProblem[] = [];
    for (const doc of documents) {
      const read = readRuleText(store.sourceOf(doc.name), doc.text);
      syntax.push(...read.errors);
      if (read.input) inputs.push(read.input);
    }
    // No registry cross-checks here: a service leaving the catalog must not turn
    // stored rules invalid. Expired dev routes are dropped with a warning.
    const result = validateRules(inputs, { now: this.options.now?.() ?? new Date(), expiredDevRoutes: 'warning' });
    const errors = [...syntax, ...result.errors];
    if (errors.length > 0 || !result.ruleSet) {
      this.fail(`rules refused: ${errors.length} problem(s)`, errors);
      return;
    }
    this.state = { ...this.state, healthy: true, lastSuccessMs: Date.now(), lastError: undefined };
    this.warnings = result.warnings;
    const fingerprint = JSON.stringify(result.ruleSet);
    if (fingerprint === this.fingerprint) return;
    this.fingerprint = fingerprint;
    this.state.updates += 1;
    this.scheduleExpiry(result.ruleSet);
    for (const w of result.warnings) this.options.logger.warn({ store: store.description }, formatProblem(w));
    this.options.logger.info({ store: store.description, documents: documents.length, services: Object.keys(result.ruleSet.services).length }, 'rules loaded');
    onUpdate(result.ruleSet);
  }
}
