// Names Envoy sees: in stats, config dumps and access logs. One scheme, derived from
// the model, documented in the README ("Names Envoy sees").
import { STABLE_SUBSET } from '../model/types.js';

/** `api` for the stable subset, `api.beta` for a tagged one. */
export function clusterName(service: string, subset: string): string {
  return subset === STABLE_SUBSET ? service : `${service}.${subset}`;
}

/** Listener and its route configuration share a name: `ingress_10000`. */
export const ingressName = (port: number): string => `ingress_${port}`;
