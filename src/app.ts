// The whole control plane, built apart from listening so tests drive it in-process:
// sources → model → translate → cache → xDS server, with the admin API beside them.
import os from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config/schema.js';
import type { Logger } from './log.js';
import type { Model, Registry } from './model/types.js';
import type { RuleSet } from './model/rules.js';
import { FileRegistrySource } from './sources/file-registry.js';
import { ConsulCatalogSource } from './sources/consul-catalog.js';
import { DirectoryRulesStore } from './sources/rules-directory.js';
import { ConsulKvRulesStore } from './sources/rules-consul-kv.js';
import { RulesSource } from './sources/rules-source.js';
import type { RulesStore } from './sources/rules-store.js';
import type { Source } from './sources/source.js';
import { SnapshotCache, Snapshot } from './xds/cache.js';
import { combineCallbacks } from './xds/callbacks.js';
import { TYPE_SHORT_NAMES } from './xds/resources.js';
import { XdsServer } from './xds/server.js';
import { loggingCallbacks } from './xds/logging-callbacks.js';
import { groupKey, proxyKeyOf, type ProxyKey } from './translate/proxy.js';
import { IncrementalTranslator } from './translate/incremental.js';
import { describeRefusal, refuseNameClashes, type RefusedSubset } from './translate/name-clashes.js';
import type { Node } from './xds/wire.js';
import { buildAdminServer, type ProxyStatus } from './admin/server.js';
import { createMetrics } from './admin/metrics.js';
import { createRulesService } from './admin/rules-service.js';
import { VERSION } from './version.js';

export interface Shadowplane {
  start(): Promise<{ xdsPort: number; adminPort: number }>;
  stop(): Promise<void>;
  readonly cache: SnapshotCache;
}

function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
}

export function createShadowplane(config: Config, logger: Logger): Shadowplane {
  const cache = new SnapshotCache();
  const metrics = createMetrics();
  const groups = new Map<string, ProxyKey>();
  const log = logger.child({ component: 'translate' });
  let registry: Registry | undefined;
  let rules: RuleSet | undefined;
  let shared: Snapshot | undefined;
  const translator = new IncrementalTranslator();

  let served: { registry: Registry; rules: RuleSet; model: Model; refused: readonly RefusedSubset[] } | undefined;

  /**
   * What is translated: the rules, and the registry without the subsets whose cluster
   * names another owner has (translate/name-clashes.ts), so one odd Consul name cannot
   * stop every proxy's updates. Each refusal is logged once, when it starts.
   */
  const model = (): Model | undefined => {
    if (!registry || !rules) return undefined;
    if (served?.registry === registry && served.rules === rules) return served.model;
    const result = refuseNameClashes(registry, rules);
    const before = new Set(served?.refused.map(refusalKey));
    for (const r of result.refused) {
      if (before.has(refusalKey(r))) continue;
      log.error({ service: r.service, subset: r.subset, cluster: r.cluster, instance_ids: r.instances }, describeRefusal(r));
    }
    metrics.subsetsRefused(result.refused.length);
    served = { registry, rules, model: { registry: result.registry, rules }, refused: result.refused };
    return served.model;
  };

  /** Builds and publishes one group's snapshot; a failure keeps the last good one live. */
  function publish(group: string, key: ProxyKey): void {
    const m = model();
    if (!m) return;
    try {
      if (!shared) return;
      cache.set(group, Snapshot.compose(shared, translator.forProxy(m, key, group)));
      metrics.snapshotPublished('ok');
    } catch (err) {
      metrics.snapshotPublished('refused');
      log.error({ group, err }, 'snapshot not published; the previous one stays live');
    }
  }

  function rebuild(): void {
    const m = model();
    if (!m) return;
    try {
      shared = translator.sharedSnapshot(m);
    } catch (err) {
      metrics.snapshotPublished('refused');
      log.error({ err }, 'translation failed; every group keeps its last good snapshot');
      return;
    }
    for (const [group, key] of groups) publish(group, key);
  }

  function groupOf(node: Node): string {
    const key = proxyKeyOf(node.cluster, node.metadata);
    const group = groupKey(key);
    if (!groups.has(group)) {
      groups.set(group, key);
      publish(group, key);
    }
    return group;
  }

  const xdsLogger = logger.child({ component: 'xds' });
  const server = new XdsServer({
    address: config.xds.address,
    watcher: cache,
    callbacks: combineCallbacks(loggingCallbacks(xdsLogger), metrics.xdsCallbacks),
    logger: xdsLogger,
    groupOf,
    controlPlaneId: `shadowplane/${VERSION}@${os.hostname()}`,
    maxMessageBytes: config.xds.max_message_bytes,
    keepaliveTimeMs: config.xds.keepalive_time_ms,
    keepaliveTimeoutMs: config.xds.keepalive_timeout_ms,
    tls: config.xds.tls,
  });

  const registrySource: Source<Registry> =
    config.registry.source === 'consul'
      ? new ConsulCatalogSource({ ...config.consul, logger: logger.child({ component: 'consul-catalog' }) })
      : new FileRegistrySource({ dir: config.registry.path, logger: logger.child({ component: 'file-registry' }) });
  const store: RulesStore =
    config.rules.store === 'consul'
      ? new ConsulKvRulesStore({ address: config.consul.address, prefix: config.rules.prefix, token: config.consul.token })
      : new DirectoryRulesStore(config.rules.path);
  const rulesSource = new RulesSource({ store, logger: logger.child({ component: 'rules' }) });
  const sources = [registrySource, rulesSource] as const;
  metrics.watchSources(() => sources.map((s) => s.status()));

  let xdsListening = false;
  const admin: FastifyInstance = buildAdminServer({
    logger: logger.child({ component: 'admin' }),
    token: config.admin.token,
    metrics: metrics.registry,
    rules: createRulesService({ store, registry: () => registry }),
    proxies: () => proxyStatuses(server),
    notReady: () => [
      ...(registry ? [] : ['registry']),
      ...(rules ? [] : ['rules']),
      ...(xdsListening ? [] : ['xds server']),
    ],
    status: () => ({
      version: VERSION,
      sources: sources.map((s) => s.status()),
      rule_warnings: rulesSource.currentWarnings(),
      refused_subsets: served?.refused ?? [],
      groups: cache.groups(),
    }),
  });

  return {
    cache,
    async start() {
      // Inputs first: serving xDS before there is a model would answer proxies with
      // nothing, and an empty SotW listener set deletes their listeners.
      await rulesSource.start((next) => {
        rules = next;
        rebuild();
      });
      await registrySource.start((next) => {
        registry = { ...next, routingTags: config.registry.routing_tags };
        rebuild();
      });
      const xdsPort = await server.start();
      xdsListening = true;
      const { host, port } = splitHostPort(config.admin.address);
      await admin.listen({ host, port });
      const address = admin.server.address();
      const adminPort = typeof address === 'object' && address ? address.port : port;
      logger.info({ address: config.admin.address, port: adminPort }, 'admin API listening');
      return { xdsPort, adminPort };
    },
    async stop() {
      await admin.close();
      await Promise.all(sources.map((s) => s.stop()));
      await server.stop();
    },
  };
}

const refusalKey = (r: RefusedSubset): string => `${r.service}\u0000${r.subset}\u0000${r.reason}`;

function proxyStatuses(server: XdsServer): ProxyStatus[] {
  return server.streams().flatMap((s) => {
    const node = s.nodeInfo;
    if (!node) return [];
    return [
      {
        node_id: node.id,
        cluster: node.cluster,
        stream: s.kind,
        types: s.status().map((t) => ({
          type: TYPE_SHORT_NAMES[t.typeUrl],
          sent_version: t.sentVersion,
          acked_version: t.ackedVersion,
          nacked_version: t.nackedVersion,
          error: t.lastError,
          resources: t.sent.size,
        })),
      },
    ];
  });
}
