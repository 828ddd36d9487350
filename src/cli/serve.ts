// `shadowplane serve`: load the configuration, start the control plane, and stop it
// cleanly on SIGINT/SIGTERM (streams closed, ports freed, then exit 0).
import { Command, Option } from 'commander';
import { loadConfig, describeKeys } from '../config/load.js';
import { createLogger } from '../log.js';
import { createShadowplane } from '../app.js';

/** Flags that set one configuration key each; `--set key=value` reaches every key. */
const KEY_FLAGS: { flag: string; key: string; description: string }[] = [
  { flag: '--xds-address <host:port>', key: 'xds.address', description: 'ADS server address' },
  { flag: '--admin-address <host:port>', key: 'admin.address', description: 'admin HTTP API address' },
  { flag: '--registry <source>', key: 'registry.source', description: 'service registry: file or consul' },
  { flag: '--registry-path <dir>', key: 'registry.path', description: 'folder of service definitions (file registry)' },
  { flag: '--consul-address <host:port>', key: 'consul.address', description: 'Consul agent HTTP address' },
  { flag: '--rules-store <store>', key: 'rules.store', description: 'rules store: directory or consul' },
  { flag: '--rules-path <dir>', key: 'rules.path', description: 'folder of rule documents' },
  { flag: '--log-level <level>', key: 'log.level', description: 'trace, debug, info, warn, error, fatal or silent' },
  { flag: '--log-format <format>', key: 'log.format', description: 'json (default) or pretty' },
];

const attributeOf = (flag: string): string =>
  flag
    .split(' ')[0]!
    .replace(/^--/, '')
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export function serveCommand(): Command {
  const command = new Command('serve')
    .description('run the control plane: watch the registry and rules, serve xDS to Envoy')
    .option('-c, --config <file>', 'YAML configuration file')
    .addOption(
      new Option('--set <key=value>', 'set any configuration key (repeatable), e.g. --set xds.max_message_bytes=1048576')
        .argParser((value: string, previous: string[] = []) => [...previous, value]),
    )
    .addHelpText(
      'after',
      `\nPrecedence: --config file < SHADOWPLANE_* environment < flags.\nKeys and their variables:\n${describeKeys()
        .map((k) => `  ${k.key.padEnd(28)} ${k.env}`)
        .join('\n')}`,
    )
    .action(async (opts: Record<string, unknown>) => {
      const flags: { key: string; value: string; flag: string }[] = [];
      for (const { flag, key } of KEY_FLAGS) {
        const value = opts[attributeOf(flag)];
        if (typeof value === 'string') flags.push({ key, value, flag: flag.split(' ')[0]! });
      }
      for (const pair of (opts.set as string[] | undefined) ?? []) {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new Error(`--set ${pair}: expected key=value`);
        flags.push({ key: pair.slice(0, eq), value: pair.slice(eq + 1), flag: `--set ${pair.slice(0, eq)}` });
      }
      const config = loadConfig({ file: opts.config as string | undefined, env: process.env, flags });
      const logger = createLogger(config.log);
      const app = createShadowplane(config, logger);
      // Listen for signals before anything starts: a SIGTERM that arrives while the
      // ports are being opened must still end in a clean stop, not a killed process.
      const signalled = waitForSignal();
      await app.start();
      await signalled;
      logger.info('shutting down');
      await app.stop();
      logger.info('stopped');
    });
  for (const { flag, description } of KEY_FLAGS) command.option(flag, description);
  return command;
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
