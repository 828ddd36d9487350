// Prometheus metrics. One registry per process (not prom-client's global one), so tests
// can run several control planes side by side.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { XdsCallbacks } from '../xds/callbacks.js';
import { TYPE_SHORT_NAMES, isResourceTypeUrl } from '../xds/resources.js';
import type { SourceStatus } from '../sources/source.js';

const shortType = (typeUrl: string): string => (isResourceTypeUrl(typeUrl) ? TYPE_SHORT_NAMES[typeUrl] : 'other');

export interface Metrics {
  registry: Registry;
  xdsCallbacks: Partial<XdsCallbacks>;
  snapshotPublished(result: 'ok' | 'refused'): void;
  /** How many registry subsets are not served now because their cluster name is taken. */
  subsetsRefused(count: number): void;
  /** Reads sources' status at scrape time. */
  watchSources(statuses: () => SourceStatus[]): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'shadowplane_process_' });
  const streams = new Gauge({ name: 'shadowplane_xds_streams', help: 'Open xDS streams', labelNames: ['kind'], registers: [registry] });
  const responses = new Counter({ name: 'shadowplane_xds_responses_total', help: 'xDS responses sent', labelNames: ['type'], registers: [registry] });
  const acks = new Counter({ name: 'shadowplane_xds_acks_total', help: 'xDS responses a proxy accepted', labelNames: ['type'], registers: [registry] });
  const nacks = new Counter({
    name: 'shadowplane_xds_nacks_total',
    help: 'xDS responses a proxy rejected (NACK); each is configuration Envoy refused',
    labelNames: ['type'],
    registers: [registry],
  });
  const published = new Counter({
    name: 'shadowplane_snapshots_total',
    help: 'Snapshot builds, by result (refused ones leave the last good snapshot live)',
    labelNames: ['result'],
    registers: [registry],
  });
  const refused = new Gauge({
    name: 'shadowplane_registry_subsets_refused',
    help: 'Registry subsets (a whole service for its stable subset) left out because another owner has their cluster name; /v1/status lists them',
    registers: [registry],
  });
  let sources: () => SourceStatus[] = () => [];
  new Gauge({
    name: 'shadowplane_source_healthy',
    help: '1 when the source\'s latest attempt succeeded; 0 while it serves its last good state',
    labelNames: ['source'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of sources()) this.set({ source: s.source }, s.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: 'shadowplane_source_last_success_timestamp_seconds',
    help: 'When the source last produced or confirmed a good state; alert on its age',
    labelNames: ['source'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of sources()) if (s.lastSuccessMs) this.set({ source: s.source }, s.lastSuccessMs / 1000);
    },
  });
  return {
    registry,
    xdsCallbacks: {
      onStreamOpen: (info) => streams.inc({ kind: info.kind }),
      onStreamClose: (info) => streams.dec({ kind: info.kind }),
      onResponse: (event) => responses.inc({ type: shortType(event.type_url) }),
      onAck: (event) => acks.inc({ type: shortType(event.type_url) }),
      onNack: (event) => nacks.inc({ type: shortType(event.type_url) }),
    },
    snapshotPublished: (result) => published.inc({ result }),
    subsetsRefused: (count) => refused.set(count),
    watchSources: (statuses) => {
      sources = statuses;
    },
  };
}
