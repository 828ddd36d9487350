// A static Envoy bootstrap equivalent to what one proxy gets over ADS, so a golden
// output can be checked by the real Envoy with `envoy --mode validate` (no control
// plane, no ports). What changes, and only that:
//  - each HTTP connection manager's `rds` becomes `route_config`: the RouteConfiguration
//    of that name, inlined (Envoy then also checks that every route's cluster exists);
//  - each EDS cluster becomes STATIC with `load_assignment`: the ClusterLoadAssignment
//    named by `eds_cluster_config.service_name`, or else by the cluster's name.
// The bootstrap is encoded as a Bootstrap message (so it is one protobuf, as Envoy would
// hold it) and written as YAML in the proto3 JSON mapping Envoy parses: durations as
// "1s", wrapper types as bare values, Any as `@type` plus fields.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { stringify } from 'yaml';
import { lookupMessage } from '../../src/xds/protos.js';
import { decodeMessage, encodeMessage, messageNameOf, type ResourceObject } from '../../src/xds/resources.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';

/** What one proxy gets: the shared clusters and endpoints, and its own resources. */
export interface ProxyResources {
  node: { id: string; cluster: string; metadata: Record<string, unknown> };
  clusters: readonly ResourceObject[];
  endpoints: readonly ResourceObject[];
  listeners: readonly ResourceObject[];
  routes: readonly ResourceObject[];
}

const isObject = (v: unknown): v is ResourceObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function inlineRoutes(listener: ResourceObject, routes: ReadonlyMap<string, ResourceObject>): ResourceObject {
  const inline = (chain: ResourceObject): ResourceObject => ({
    ...chain,
    filters: ((chain.filters as ResourceObject[] | undefined) ?? []).map((filter) => {
      const config = filter.typed_config;
      if (!isObject(config) || config['@type'] !== HCM || !isObject(config.rds)) return filter;
      const name = String(config.rds.route_config_name);
      const routeConfig = routes.get(name);
      if (!routeConfig) throw new Error(`listener "${String(listener.name)}" names route configuration "${name}", which the proxy does not get`);
      const { rds: _rds, ...rest } = config;
      return { ...filter, typed_config: { ...rest, route_config: routeConfig } };
    }),
  });
  return {
    ...listener,
    ...(listener.filter_chains ? { filter_chains: (listener.filter_chains as ResourceObject[]).map(inline) } : {}),
    ...(isObject(listener.default_filter_chain) ? { default_filter_chain: inline(listener.default_filter_chain) } : {}),
  };
}

function staticCluster(cluster: ResourceObject, endpoints: ReadonlyMap<string, ResourceObject>): ResourceObject {
  if (cluster.type !== 'EDS') return cluster;
  const { eds_cluster_config: eds, ...rest } = cluster;
  const name = String(cluster.name);
  const serviceName = isObject(eds) && typeof eds.service_name === 'string' && eds.service_name !== '' ? eds.service_name : name;
  const assignment = endpoints.get(serviceName);
  if (!assignment) throw new Error(`EDS cluster "${name}" needs the endpoints "${serviceName}", which the proxy does not get`);
  return { ...rest, type: 'STATIC', load_assignment: { ...assignment, cluster_name: name } };
}

/** The Bootstrap (in Envoy's field names) of a proxy that got `resources` over ADS. */
export function staticBootstrap(resources: ProxyResources): ResourceObject {
  const routes = new Map(resources.routes.map((r) => [String(r.name), r]));
  const endpoints = new Map(resources.endpoints.map((e) => [String(e.cluster_name), e]));
  return {
    node: resources.node,
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: resources.listeners.map((l) => inlineRoutes(l, routes)),
      clusters: resources.clusters.map((c) => staticCluster(c, endpoints)),
    },
  };
}

// ---------------------------------------------------------------------------------
// proto3 JSON, as Envoy's YAML loader reads it.

const WRAPPER_DEFAULTS: Record<string, unknown> = {
  '.google.protobuf.DoubleValue': 0,
  '.google.protobuf.FloatValue': 0,
  '.google.protobuf.Int64Value': '0',
  '.google.protobuf.UInt64Value': '0',
  '.google.protobuf.Int32Value': 0,
  '.google.protobuf.UInt32Value': 0,
  '.google.protobuf.BoolValue': false,
  '.google.protobuf.StringValue': '',
  '.google.protobuf.BytesValue': '',
};

function duration(value: ResourceObject): string {
  const raw = value.seconds ?? 0;
  if (typeof raw !== 'string' && typeof raw !== 'number') throw new Error(`a duration's seconds: ${JSON.stringify(raw)}`);
  const seconds = BigInt(raw);
  const nanos = Number(value.nanos ?? 0);
  if (seconds < 0n || nanos < 0) throw new Error('negative durations are not written by the translator');
  return nanos === 0 ? `${seconds}s` : `${seconds}.${String(nanos).padStart(9, '0').replace(/0+$/, '')}s`;
}

/**
 * A decoded message (protobufjs `toObject` with Shadowplane's options) in the proto3
 * JSON mapping. Throws on a field the type does not have, so nothing is dropped quietly.
 */
export function toProto3Json(type: protobuf.Type, value: unknown): unknown {
  if (!isObject(value)) throw new Error(`${type.fullName}: expected an object, got ${JSON.stringify(value)}`);
  switch (type.fullName) {
    case '.google.protobuf.Duration':
      return duration(value);
    case '.google.protobuf.Struct':
    case '.google.protobuf.Value':
    case '.google.protobuf.ListValue':
      return value; // already plain JSON (src/xds/json-wrappers.ts)
    case '.google.protobuf.Any': {
      const { '@type': typeUrl, ...fields } = value;
      if (typeof typeUrl !== 'string') throw new Error(`an Any without @type: ${JSON.stringify(value)}`);
      const body = toProto3Json(lookupMessage(messageNameOf(typeUrl)), fields);
      return isObject(body) ? { '@type': typeUrl, ...body } : { '@type': typeUrl, value: body };
    }
  }
  if (type.fullName in WRAPPER_DEFAULTS) return value.value ?? WRAPPER_DEFAULTS[type.fullName];
  const out: ResourceObject = {};
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key];
    if (!field) throw new Error(`${type.fullName} has no field "${key}"`);
    field.resolve();
    const sub = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    const convert = (x: unknown): unknown => (sub ? toProto3Json(sub, x) : x);
    if (field.map) out[key] = Object.fromEntries(Object.entries(v as ResourceObject).map(([k, x]) => [k, convert(x)]));
    else if (field.repeated) out[key] = (v as unknown[]).map(convert);
    else out[key] = convert(v);
  }
  return out;
}

/**
 * The bootstrap as YAML for `envoy -c`: encoded as a Bootstrap (an object that is not
 * one throws here, naming the field), decoded, and written in proto3 JSON.
 */
export function bootstrapYaml(bootstrap: ResourceObject): string {
  const canonical = decodeMessage(BOOTSTRAP, encodeMessage(BOOTSTRAP, bootstrap));
  return stringify(toProto3Json(lookupMessage(BOOTSTRAP), canonical), { lineWidth: 0, aliasDuplicateObjects: false });
}

// ---------------------------------------------------------------------------------
// Envoy.

export interface ValidateResult {
  /** Envoy's exit code; 0 when it accepts the configuration. */
  code: number;
  /** Everything Envoy wrote (stdout then stderr). */
  output: string;
  /** Lines where Envoy warns about a deprecated field (accepted today, refused one day). */
  deprecated: string[];
}

/**
 * `envoy --mode validate -c <file>`: parses, checks and instantiates the config without
 * serving it. Envoy's stdout and stderr go to a file beside the config (`<file>.log`):
 * a file access log on /dev/stdout is opened at validation, which a pipe or socket
 * refuses (ENXIO).
 */
export async function envoyValidate(envoy: string, file: string, timeoutMs = 30_000): Promise<ValidateResult> {
  const logFile = `${file}.log`;
  const fd = openSync(logFile, 'w');
  try {
    const child = spawn(envoy, ['--mode', 'validate', '-c', file, '--log-level', 'warn'], { stdio: ['ignore', fd, fd] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 128 : 1)));
    }).finally(() => clearTimeout(timer));
    const output = readFileSync(logFile, 'utf8');
    return { code, output, deprecated: output.split('\n').filter((line) => /deprecated/i.test(line)) };
  } finally {
    closeSync(fd);
  }
}
