// The intermediate model: plain immutable data that sources produce and translate
// consumes. No I/O and no Envoy types here.
import type { RuleSet } from './rules.js';

/** One running instance of a service, as the registry reports it. */
export interface Instance {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
}

export interface Service {
  readonly name: string;
  readonly instances: readonly Instance[];
}

/** What the registry knows: every service by name. */
export interface Registry {
  readonly services: ReadonlyMap<string, Service>;
  /** Which tags make subsets (`dev-*` matches any `dev-` tag); the defaults when absent. */
  readonly routingTags?: readonly string[];
  /**
   * Set by a source that knows what changed: `services` equals `since` but for the
   * services named (changed, added or removed), so a consumer that has seen `since` can
   * look at those alone. Unchanged services keep their `instances` arrays either way.
   */
  readonly changes?: { readonly since: ReadonlyMap<string, Service>; readonly services: ReadonlySet<string> };
}

/** The subset that instances without a routing tag belong to. */
export const STABLE_SUBSET = 'stable';

export interface Subset {
  readonly service: string;
  /** `stable` or a routing tag such as `beta`, `shadow`, `dev-laptop-1`. */
  readonly name: string;
  readonly instances: readonly Instance[];
}

export interface Model {
  readonly registry: Registry;
  readonly rules: RuleSet;
}

export const emptyRegistry = (): Registry => ({ services: new Map() });
