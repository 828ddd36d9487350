// xDS lifecycle events as structured logs. NACKs are warnings: each one is a
// configuration a proxy refused, with Envoy's own message.
import type { Logger } from '../log.js';
import type { XdsCallbacks } from './callbacks.js';

export function loggingCallbacks(logger: Logger): Partial<XdsCallbacks> & XdsCallbacks {
  return {
    onStreamOpen: (info) => logger.debug(info, 'stream opened'),
    onStreamClose: (info) => logger.debug(info, 'stream closed'),
    // The fields one by one: pino logs an object's own properties, and a request's names
    // are a getter that decodes them, worth calling only when the line is written.
    onRequest: (event) => {
      if (!logger.isLevelEnabled('trace')) return;
      const { stream_id, node_id, type_url, resource_names, response_nonce } = event;
      logger.trace({ stream_id, node_id, type_url, resource_names, response_nonce }, 'request');
    },
    onResponse: (event) => logger.debug(event, 'response sent'),
    onAck: (event) => logger.trace(event, 'ack'),
    onNack: (event) => logger.warn(event, 'proxy rejected configuration (NACK)'),
  };
}
