// One root pino logger per process; each component takes a child with its own
// bindings (`component: 'xds'`), and log fields are snake_case (`node_id`, `type_url`).
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from './config/schema.js';

export type { Logger };

export function createLogger(config: Config['log'], destination: NodeJS.WritableStream = process.stderr): Logger {
  const options = { level: config.level, base: { service: 'shadowplane' } };
  if (config.format === 'pretty') {
    // Synchronous, in-process pretty printing: no worker thread to flush at exit.
    return pino(options, pretty({ destination, sync: true, colorize: false, translateTime: 'HH:MM:ss.l' }));
  }
  const fd = (destination as { fd?: unknown }).fd;
  return typeof fd === 'number' ? pino(options, pino.destination({ dest: fd, sync: true })) : pino(options, destination);
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger = (): Logger => pino({ level: 'silent' });
