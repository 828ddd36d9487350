// The whole control plane, built apart from listening so tests drive it in-process:
// sources → model → translate → cache → xDS server.
import os from 'node:os';
import type { Config } from './config/schema.js';
import type { Logger } from './log.js';
import type { Model } from './model/types.js';
import { FileRegistrySource } from './sources/file-registry.js';
import type { Source } from './sources/source.js';
import type { Registry } from './model/types.js';
import { SnapshotCache, Snapshot } from './xds/cache.js';
import { Resource } from './xds/resource.js';
import { XdsServer } from './xds/server.js';
import { loggingCallbacks } from './xds/logging-callbacks.js';
import { groupKey, proxyKeyOf, type ProxyKey } from './translate/proxy.js';
import { translateForProxy, translateShared } from './translate/translate.js';
import type { Node } from './xds/wire.js';
import { VERSION } from './version.js';

export interface Shadowplane {
  start(): Promise<{ xdsPort: number }>;
  stop(): Promise<void>;
  readonly cache: SnapshotCache;
}

export function createShadowplane(config: Config, logger: Logger): Shadowplane {
  const cache = new SnapshotCache();
  const groups = new Map<string, ProxyKey>();
  const log = logger.child({ component: 'translate' });
  let model: Model | undefined;
  let shared: Resource[] = [];

  const toResources = (objects: ReturnType<typeof translateShared>): Resource[] =>
    objects.map((o) => Resource.fromObject(o.typeUrl, o.object));

  /** Builds and publishes one group's snapshot; a failure keeps the last good one live. */
  function publish(group: string, key: ProxyKey): void {
    if (!model) return;
    try {
      cache.set(group, Snapshot.create([...shared, ...toResources(translateForProxy(model, key))]));
    } catch (err) {
      log.error({ group, err }, 'snapshot not published; the previous one stays live');
    }
  }

  function setModel(next: Model): void {
    model = next;
    shared = toResources(translateShared(next));
    for (const [group, key] of groups) publish(group, key);
  }

  function groupOf(node: Node): string {
    const key = proxyKeyOf(node.metadata);
    const group = groupKey(key);
    if (!groups.has(group)) {
      groups.set(group, key);
      publish(group, key);
    }
    return group;
  }

  const server = new XdsServer({
    address: config.xds.address,
    watcher: cache,
    callbacks: loggingCallbacks(logger.child({ component: 'xds' })),
    logger: logger.child({ component: 'xds' }),
    groupOf,
    controlPlaneId: `shadowplane/${VERSION}@${os.hostname()}`,
    maxMessageBytes: config.xds.max_message_bytes,
    keepaliveTimeMs: config.xds.keepalive_time_ms,
    keepaliveTimeoutMs: config.xds.keepalive_timeout_ms,
    tls: config.xds.tls,
  });

  const registrySource: Source<Registry> = new FileRegistrySource({
    dir: config.registry.path,
    logger: logger.child({ component: 'file-registry' }),
  });

  return {
    cache,
    async start() {
      // The registry comes first: serving xDS before there is a model would answer
      // proxies with nothing, and an empty SotW listener set deletes their listeners.
      await registrySource.start((registry) => setModel({ registry }));
      return { xdsPort: await server.start() };
    },
    async stop() {
      await registrySource.stop();
      await server.stop();
    },
  };
}
