#!/usr/bin/env -S node --max-semi-space-size=64 --initial-old-space-size=256
// The `shadowplane` command. Each subcommand lives in its own file; this one only
// wires them together and turns errors into exit codes.
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { serveCommand } from './serve.js';
import { isCliExit, mirrorCommand, routeCommand, rulesCommand } from './rules.js';

export function buildProgram(): Command {
  const program = new Command('shadowplane')
    .description('Envoy control plane for testing in production: shadow traffic, beta and dev routing.')
    .version(VERSION, '-V, --version', 'print the version and exit')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.addCommand(serveCommand());
  program.addCommand(rulesCommand());
  program.addCommand(mirrorCommand());
  program.addCommand(routeCommand());
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (isCliExit(err)) return err.exitCode;
    if (err instanceof CommanderError) {
      // commander already printed help, the version or the usage error.
      return err.exitCode;
    }
    process.stderr.write(`shadowplane: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

const exitCode = await main(process.argv.slice(2));
if (exitCode !== 0) process.exitCode = exitCode;
