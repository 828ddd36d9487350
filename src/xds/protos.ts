// Loads Envoy's API protos from the pinned npm dependency `@grpc/grpc-js-xds`, whose
// `deps/` folder carries a copy of envoyproxy/data-plane-api, cncf/xds, googleapis and
// protoc-gen-validate. Nothing external is copied into this repository: see protos/README.md.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { registerJsonWrappers } from './json-wrappers.js';

const require = createRequire(import.meta.url);

/** Folders that Envoy's `import` statements are relative to. */
export function envoyProtoIncludeDirs(): string[] {
  const pkgDir = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const deps = path.join(pkgDir, 'deps');
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d));
}

/**
 * The Envoy API files Shadowplane encodes or serves. Everything they import is loaded
 * with them. Adding a filter or extension we generate means adding its file here.
 */
export const ENVOY_PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/status/v3/csds.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/http/header_mutation/v3/header_mutation.proto',
  'envoy/extensions/filters/http/upstream_codec/v3/upstream_codec.proto',
  'envoy/extensions/http/early_header_mutation/header_mutation/v3/header_mutation.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
] as const;

let cached: protobuf.Root | undefined;

/** protobufjs bundles google/protobuf/descriptor.proto as JSON but does not register it. */
function registerDescriptorProto(): void {
  const descriptor = require('protobufjs/google/protobuf/descriptor.json') as {
    nested: { google: { nested: { protobuf: { nested: protobuf.INamespace['nested'] } } } };
  };
  protobuf.common('descriptor', descriptor.nested.google.nested.protobuf.nested as Record<string, protobuf.AnyNestedObject>);
}

/**
 * One protobufjs Root for the whole process. Field names keep Envoy's snake_case
 * (`keepCase`), so objects read like Envoy's own YAML and config dumps.
 */
export function envoyRoot(): protobuf.Root {
  if (cached) return cached;
  registerDescriptorProto();
  registerJsonWrappers();
  const includeDirs = envoyProtoIncludeDirs();
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const candidate = path.join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    // google/protobuf/*.proto are built into protobufjs; let it resolve them.
    return protobuf.util.path.resolve(origin, target);
  };
  root.loadSync([...ENVOY_PROTO_FILES], { keepCase: true, alternateCommentMode: false });
  root.resolveAll();
  cached = root;
  return root;
}

export function lookupMessage(fullName: string): protobuf.Type {
  return envoyRoot().lookupType(fullName);
}
