// From a translated object to an encoded Resource, after checking it against the
// constraints Envoy declares (PGV): a configuration Envoy would reject never leaves.
import type { ResourceObject, ResourceTypeUrl } from '../xds/resources.js';
import { Resource } from '../xds/resource.js';
import { validateResource } from '../xds/pgv.js';

export class EnvoyConstraintError extends Error {
  constructor(readonly problems: string[]) {
    super(`translation produced configuration Envoy would reject:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'EnvoyConstraintError';
  }
}

/** Names the resource and, inside it, the nearest named object (a route names its rule). */
function describeViolation(typeUrl: ResourceTypeUrl, object: ResourceObject, path: string): string {
  const label = object.name ?? object.cluster_name;
  const resourceLabel = typeof label === 'string' ? label : '?';
  let node: unknown = object;
  let named = '';
  for (const part of path.match(/[^.[\]"]+/g) ?? []) {
    node = (node as Record<string, unknown> | undefined)?.[part];
    const name = (node as { name?: unknown } | undefined)?.name;
    if (typeof name === 'string') named = name;
  }
  const kind = typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
  return `${kind} "${resourceLabel}"${named && named !== resourceLabel ? `, "${named}"` : ''}: ${path}`;
}

/** Encodes a resource after checking it against Envoy's declared constraints. */
export function checkedResource(typeUrl: ResourceTypeUrl, object: ResourceObject): Resource {
  const violations = validateResource(typeUrl, object);
  if (violations.length > 0) {
    throw new EnvoyConstraintError(violations.map((v) => `${describeViolation(typeUrl, object, v.path)}: ${v.message} (${v.rule})`));
  }
  return Resource.fromObject(typeUrl, object);
}
