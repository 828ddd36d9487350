// What the admin API and the CLI do with rules: every change is validated together
// with the documents it joins, and written only if the whole set is valid. The
// store's version makes writes optimistic (a stale writer gets 409).
import type { Registry } from '../model/types.js';
import type { RuleSet } from '../model/rules.js';
import { EnvoyConstraintError, IncrementalTranslator } from '../translate/incremental.js';
import { groupKey, type ProxyKey } from '../translate/proxy.js';
import { refuseNameClashes } from '../translate/name-clashes.js';
import type { Resource } from '../xds/resource.js';
import { TYPE_SHORT_NAMES } from '../xds/resources.js';
import { readRuleText, validateRules, type RuleInput, type RuleProblem } from '../model/validate-rules.js';
import { checkDocumentName, type HistoryEntry, type RuleDocumentEntry, type RulesStore } from '../sources/rules-store.js';
import { AdminError, AdminErrorCode } from './errors.js';

export interface ValidationReport {
  valid: boolean;
  errors: readonly RuleProblem[];
  warnings: readonly RuleProblem[];
}

export interface RulesService {
  list(): Promise<{ name: string; version: string }[]>;
  get(name: string): Promise<RuleDocumentEntry | undefined>;
  /** Validates `text` as document `name` together with the stored documents; writes nothing. */
  validate(name: string, text: string): Promise<ValidationReport>;
  put(name: string, text: string, expectedVersion: string | undefined, actor: string): Promise<{ document: RuleDocumentEntry; warnings: readonly RuleProblem[] }>;
  delete(name: string, expectedVersion: string | undefined, actor: string): Promise<void>;
  history(limit: number): Promise<HistoryEntry[]>;
}

export interface RulesServiceOptions {
  store: RulesStore;
  /** The registry now, for cross-checks of services and subsets. */
  registry: () => Registry | undefined;
  now?: () => Date;
}

export function createRulesService({ store, registry, now = () => new Date() }: RulesServiceOptions): RulesService {
  /** The stored set with `name` replaced by `text` (or removed when text is undefined), validated. */
  async function check(name: string, text: string | undefined): Promise<ValidationReport> {
    checkName(name);
    const stored = await store.read();
    const inputs: RuleInput[] = [];
    const errors: RuleProblem[] = [];
    const documents = stored.filter((d) => d.name !== name).map((d) => ({ name: d.name, text: d.text }));
    if (text !== undefined) documents.push({ name, text });
    for (const doc of documents.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const read = readRuleText(store.sourceOf(doc.name), doc.text);
      errors.push(...read.errors);
      if (read.input) inputs.push(read.input);
    }
    // Rules already stored may hold dev routes that expired since: that is no reason to
    // refuse an unrelated change. The document being written must not carry one.
    const whole = validateRules(inputs, { registry: registry(), now: now(), expiredDevRoutes: 'warning' });
    const own = store.sourceOf(name);
    const expiredHere = whole.warnings.filter((w) => w.source === own && w.code === 'SP_RULE_DEV_ROUTE_EXPIRED');
    const allErrors = [...errors, ...whole.errors, ...expiredHere];
    const reg = registry();
    if (allErrors.length === 0 && whole.ruleSet && reg) allErrors.push(...dryRun(reg, whole.ruleSet, own));
    const warnings = whole.warnings.filter((w) => !expiredHere.includes(w));
    return { valid: allErrors.length === 0, errors: allErrors, warnings };
  }

  return {
    async list() {
      return (await store.read()).map((d) => ({ name: d.name, version: d.version }));
    },
    async get(name) {
      checkName(name);
      return store.get(name);
    },
    validate: (name, text) => check(name, text),
    async put(name, text, expectedVersion, actor) {
      const existing = await store.get(checkName(name));
      if (existing && expectedVersion === undefined) {
        throw new AdminError(
          AdminErrorCode.VersionRequired,
          428,
          `rule document "${name}" exists: send its version (If-Match: "${existing.version}") to replace it`,
        );
      }
      const report = await check(name, text);
      if (!report.valid) throw new AdminError(AdminErrorCode.Invalid, 422, `rule document "${name}" is invalid; nothing was changed`, report.errors);
      const document = await store.put(name, text, { expectedVersion: expectedVersion ?? '', actor });
      return { document, warnings: report.warnings };
    },
    async delete(name, expectedVersion, actor) {
      if (expectedVersion === undefined) {
        throw new AdminError(AdminErrorCode.VersionRequired, 428, `send the version of "${name}" (If-Match) to delete it`);
      }
      if (!(await store.get(checkName(name)))) throw new AdminError(AdminErrorCode.NotFound, 404, `no rule document "${name}"`);
      const report = await check(name, undefined);
      if (!report.valid) {
        throw new AdminError(AdminErrorCode.Invalid, 422, `deleting "${name}" would leave the other rules invalid; nothing was changed`, report.errors);
      }
      await store.delete(name, { expectedVersion, actor });
    },
    history: (limit) => store.history(limit),
  };
}

/** Proxy kinds a dry run translates for: one of each role, on default ports. */
const DRY_RUN_KEYS: ProxyKey[] = [
  { role: 'edge', address: '127.0.0.1', port: 10000 },
  { role: 'access', address: '127.0.0.1', port: 10001, auditLog: '/dev/stdout' },
  { role: 'sidecar', subset: 'shadow', address: '127.0.0.1', outboundPort: 15001, inboundPort: 15006, appPort: 8080 },
];

/**
 * Translates the candidate rules with the current registry, as serve would, and
 * reports configuration Envoy would refuse, so a rule that would produce an invalid
 * resource is refused before it is stored.
 */
function dryRun(registry: Registry, rules: RuleSet, source: string): RuleProblem[] {
  const translator = new IncrementalTranslator();
  // As serve translates: without registry subsets whose cluster names another owner has.
  const model = { registry: refuseNameClashes(registry, rules).registry, rules };
  try {
    const shared = translator.shared(model);
    // A name twice would fail the snapshot of every proxy (validation should have said which rules).
    const twice = new Set(DRY_RUN_KEYS.flatMap((key) => namesTwice([...shared, ...translator.forProxy(model, key, groupKey(key))])));
    return [...twice].map((message) => ({ source, path: '', code: 'SP_RULE_NAME_CLASH' as const, message, at: source }));
  } catch (err) {
    if (!(err instanceof EnvoyConstraintError)) throw err;
    return err.problems.map((message) => ({ source, path: '', code: 'SP_RULE_ENVOY_REJECTS' as const, message, at: source }));
  }
}

/** A message for each name that two resources of one type share. */
function namesTwice(resources: readonly Resource[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const r of resources) {
    const key = `${r.typeUrl} ${r.name}`;
    if (seen.has(key)) out.push(`two ${TYPE_SHORT_NAMES[r.typeUrl]} resources would be named "${r.name}"; Envoy takes each name once`);
    seen.add(key);
  }
  return out;
}

function checkName(name: string): string {
  try {
    checkDocumentName(name);
  } catch (err) {
    throw new AdminError(AdminErrorCode.BadRequest, 400, err instanceof Error ? err.message : String(err));
  }
  return name;
}
