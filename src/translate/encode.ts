// From a translated object to an encoded Resource, after checking it against the
// constraints Envoy declares (PGV): a configuration Envoy would reject never leaves.
//
// The shapes the builders produce in bulk (clusters, endpoints, virtual hosts) take a
// fast path that checks and writes in one pass (fast-encode.ts); anything it does not
// know, or would refuse, takes the generic path: validateResource, then protobufjs.
// A refusal is therefore always reported by the generic path, with the same words.
import protobuf from 'protobufjs';
import { TypeUrl, encodeMessage, resourceName, type ResourceObject, type ResourceTypeUrl } from '../xds/resources.js';
import { Resource } from '../xds/resource.js';
import { referencesOf, type Reference } from '../xds/references.js';
import { validateResource } from '../xds/pgv.js';
import { fastMessage, subsetClusterMessage, subsetEndpointsMessage, writeVirtualHostEntry } from './fast-encode.js';
import { ProtoWriter } from '../xds/proto-writer.js';
import { buildCluster, buildClusterLoadAssignment } from './clusters.js';
import { clusterName } from './names.js';
import type { Subset } from '../model/types.js';

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
  const fast = typeUrl === TypeUrl.RouteConfiguration ? assembledRouteConfiguration(object) : fastResource(typeUrl, object);
  return fast ?? genericResource(typeUrl, object);
}

function genericResource(typeUrl: ResourceTypeUrl, object: ResourceObject): Resource {
  const violations = validateResource(typeUrl, object);
  if (violations.length > 0) {
    throw new EnvoyConstraintError(violations.map((v) => `${describeViolation(typeUrl, object, v.path)}: ${v.message} (${v.rule})`));
  }
  return Resource.fromObject(typeUrl, object);
}

/** What an endpoint set refers to: nothing (see references.ts), shared by all of them. */
const NO_REFERENCES: readonly Reference[] = Object.freeze([]);

function fastResource(typeUrl: ResourceTypeUrl, object: ResourceObject): Resource | undefined {
  const message = fastMessage(typeUrl, object);
  if (!message) return undefined;
  const references = typeUrl === TypeUrl.ClusterLoadAssignment ? NO_REFERENCES : referencesOf(typeUrl, object);
  return Resource.fromMessage(typeUrl, resourceName(typeUrl, object), message, references);
}

// ---------------------------------------------------------------------------------
// Route configurations: one per listener, holding every service's virtual host

const VIRTUAL_HOST = 'type.googleapis.com/envoy.config.route.v3.VirtualHost';

/** A virtual host, checked and encoded: its entry, and the clusters its routes name. */
interface VirtualHostEntry {
  readonly bytes: Uint8Array;
  readonly clusters: readonly string[];
}

/**
 * Checked entries of virtual hosts with more than one route, or null when one fails a
 * check. Translated objects are never changed once built, and the incremental
 * translator hands the same virtual host object to every rebuild that leaves its
 * service's routing alone: its identity stands for its content. A host with one route
 * (nine in ten, a service no rule names) is written again each time: that is cheaper
 * than remembering it.
 */
const virtualHostEntries = new WeakMap<object, VirtualHostEntry | null>();

/** The generic path for one virtual host: the same checks and encoding, one host at a time. */
function checkedVirtualHostEntry(vhost: ResourceObject): VirtualHostEntry | null {
  if (validateResource(VIRTUAL_HOST, vhost).length > 0) return null;
  try {
    const bytes = protobuf.Writer.create().uint32((2 << 3) | 2).bytes(encodeMessage(VIRTUAL_HOST, vhost)).finish();
    const clusters = referencesOf(TypeUrl.RouteConfiguration, { virtual_hosts: [vhost] }).map((r) => r.name);
    return { bytes, clusters };
  } catch {
    return null;
  }
}

/** Route configurations are written here whole: one copy of 10,000 virtual hosts, not one per host. */
const routeWriter = new ProtoWriter();

/**
 * Appends one virtual host's entry to `w` and its clusters to `clusters`; false when it
 * fails a check. Remembers the entries of hosts with several routes.
 */
function writeVirtualHost(w: ProtoWriter, vhost: unknown, clusters: string[]): boolean {
  if (typeof vhost !== 'object' || vhost === null || Array.isArray(vhost)) return false;
  let entry = virtualHostEntries.get(vhost);
  if (entry === null) return false;
  if (entry === undefined) {
    const start = w.pos;
    const from = clusters.length;
    const object = vhost as ResourceObject;
    if (writeVirtualHostEntry(w, object, clusters)) {
      const routes = object.routes;
      if (Array.isArray(routes) && routes.length > 1) virtualHostEntries.set(vhost, { bytes: w.copyFrom(start), clusters: clusters.slice(from) });
      return true;
    }
    clusters.length = from;
    entry = checkedVirtualHostEntry(object);
    virtualHostEntries.set(vhost, entry);
    if (!entry) return false;
  }
  w.raw(entry.bytes);
  for (const c of entry.clusters) clusters.push(c);
  return true;
}

/**
 * `{name, virtual_hosts}` (the rules PGV has for a route configuration sit on fields it
 * does not set) from its name and its virtual hosts' entries, in field order as
 * protobufjs writes it. Undefined when anything fails: the generic path then checks the
 * whole configuration, so the error names each problem by its full path
 * (`virtual_hosts[3].routes[0]…`).
 */
function assembledRouteConfiguration(object: ResourceObject): Resource | undefined {
  const { name, virtual_hosts: vhosts } = object;
  let keys = 0;
  for (const _ in object) keys++;
  if (typeof name !== 'string' || name === '' || !Array.isArray(vhosts) || keys !== 2) return undefined;
  const w = routeWriter;
  w.reset();
  w.string(1, name);
  if (!w.ok) return undefined;
  const clusters: string[] = [];
  for (const vhost of vhosts) if (!writeVirtualHost(w, vhost, clusters)) return undefined;
  // As referencesOf lists them: each cluster once, in the order routes first name them.
  const references = [...new Set(clusters)].map((c) => ({ typeUrl: TypeUrl.Cluster, name: c }));
  return Resource.fromMessage(TypeUrl.RouteConfiguration, name, w.view(), references);
}

/**
 * A subset's cluster and endpoints, as checkedResource(buildCluster(subset)) and
 * checkedResource(buildClusterLoadAssignment(subset)) would make them, written
 * straight from the subset; the builders' path when a value fails a check.
 */
export function subsetResources(subset: Subset): [Resource, Resource] {
  const name = clusterName(subset.service, subset.name);
  const clusterMessage = subsetClusterMessage(name);
  const cluster = clusterMessage
    ? Resource.fromMessage(TypeUrl.Cluster, name, clusterMessage, [{ typeUrl: TypeUrl.ClusterLoadAssignment, name }])
    : checkedResource(TypeUrl.Cluster, buildCluster(subset));
  const endpointsMessage = subsetEndpointsMessage(name, subset.instances);
  const endpoints = endpointsMessage
    ? Resource.fromMessage(TypeUrl.ClusterLoadAssignment, name, endpointsMessage, NO_REFERENCES)
    : checkedResource(TypeUrl.ClusterLoadAssignment, buildClusterLoadAssignment(subset));
  return [cluster, endpoints];
}
