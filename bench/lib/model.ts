// Synthetic inputs, built by size rather than copied: `benchModel({ services: 10_000 })`
// is N services with 3 instances each (two without a routing tag, one tagged `beta`:
// the stable and beta subsets), and rules on every tenth service (a header route to
// beta and a 5 % mirror to it), validated the way the rules source validates them.
import type { Instance, Model, Registry, Service } from '../../src/model/types.js';
import { validateRules, formatProblem } from '../../src/model/validate-rules.js';

export interface ModelShape {
  services: number;
  /** Every `rulesEvery`-th service has rules (10 → 10 %). */
  rulesEvery?: number;
}

export const serviceName = (i: number): string => `svc-${String(i).padStart(5, '0')}`;

function instance(service: number, n: number, port = 8080): Instance {
  return {
    id: `${serviceName(service)}-${n}`,
    address: `10.${(service >> 8) & 255}.${service & 255}.${n}`,
    port,
    tags: n === 3 ? ['beta'] : [],
    meta: { version: n === 3 ? '2.0.0' : '1.0.0' },
  };
}

export function benchRegistry(count: number): Registry {
  const services = new Map<string, Service>();
  for (let i = 0; i < count; i++) {
    const name = serviceName(i);
    services.set(name, { name, instances: [instance(i, 1), instance(i, 2), instance(i, 3)] });
  }
  return { services };
}

export function benchRuleDocument(count: number, every: number): Record<string, unknown> {
  const services: Record<string, unknown> = {};
  for (let i = 0; i < count; i += every) {
    services[serviceName(i)] = {
      routes: [{ name: 'beta-users', match: { headers: [{ name: 'x-beta', exact: 'true' }] }, to: 'beta' }],
      mirrors: [{ name: 'beta-5', to: 'beta', percent: 5 }],
    };
  }
  return { services };
}

export function benchModel(shape: ModelShape): Model {
  const registry = benchRegistry(shape.services);
  const validation = validateRules([{ source: 'bench-rules.yaml', value: benchRuleDocument(shape.services, shape.rulesEvery ?? 10) }], { registry });
  if (!validation.ruleSet) throw new Error(`bench rules are invalid:\n${validation.errors.map(formatProblem).join('\n')}`);
  return { registry, rules: validation.ruleSet };
}

/**
 * The registry after one instance changed: service `index`'s first instance moves to
 * another port. Every other service object is shared, and the registry names the one
 * that changed, as the Consul catalog source hands it over.
 */
export function withInstanceMoved(registry: Registry, index: number, port: number): Registry {
  const name = serviceName(index);
  const service = registry.services.get(name);
  if (!service) throw new Error(`no service ${name}`);
  const services = new Map(registry.services);
  services.set(name, { name, instances: service.instances.map((inst, n) => (n === 0 ? instance(index, 1, port) : inst)) });
  return { services, changes: { since: registry.services, services: new Set([name]) } };
}
