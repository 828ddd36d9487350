// xDS lifecycle events as structured logs. NACKs are warnings: each one is a
// configuration a proxy refused, with Envoy's own message.
import type { Logger } from '../log.js';
import type { XdsCallbacks } from './callbacks.js';

export function loggingCallbacks(logger: Logger): Partial<XdsCallbacks> & XdsCallbacks {
  return {
    onStreamOpen: (info) => logger.debug(info, 'stream opened'),
    onStreamClose: (info) => logger.debug(info, 'stream closed'),
    onRequest: (event) => logger.trace(event, 'request'),
    onResponse: (event) => logger.debug(event, 'response sent'),
    onAck: (event) => logger.trace(event, 'ack'),
    onNack: (event) => logger.warn(event, 'proxy rejected configuration (NACK)'),
  };
}
