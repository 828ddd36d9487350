// `shadowplane rules …`, `mirror set` and `route dev`: the platform engineer's
// everyday moves. `rules validate` works offline on files; the rest talk to a running
// control plane through its admin API.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { createTwoFilesPatch } from 'diff';
import { parse } from 'yaml';
import { formatProblem, readRuleText, validateRules, type RuleInput, type RuleProblem } from '../model/validate-rules.js';
import { loadRegistryDir } from '../sources/file-registry.js';
import { AdminClient, type Problem } from './admin-client.js';
import { documentWithService, parseDuration, setDevRoute, setMirror } from './rules-edit.js';

/** Output goes through here so tests and users see the same thing. */
const out = (line = ''): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`${line}\n`);

class CliExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}
export const isCliExit = (e: unknown): e is CliExit => e instanceof CliExit;

function serverOptions(command: Command): Command {
  return command
    .addOption(new Option('--server <url>', 'admin API of a running shadowplane').env('SHADOWPLANE_ADMIN_URL').default('http://127.0.0.1:18080'))
    .addOption(new Option('--token <token>', 'admin bearer token (for changes)').env('SHADOWPLANE_ADMIN_TOKEN'))
    .addOption(new Option('--actor <name>', 'who is making the change, for the history').default(os.userInfo().username || 'cli'));
}

function clientOf(opts: { server: string; token?: string; actor: string }): AdminClient {
  return new AdminClient({ server: opts.server, token: opts.token, actor: opts.actor });
}

const printProblems = (label: string, problems: readonly Pick<Problem, 'at' | 'path' | 'message' | 'code'>[]): void => {
  for (const p of problems) err(`${label}: ${p.at}: ${p.path || '(top level)'}: ${p.message} [${p.code}]`);
};

/** `rules validate <path>`: a file, or a folder of documents validated together. */
function validateLocal(target: string, registryDir: string | undefined): number {
  let files: string[];
  try {
    files = statSync(target).isDirectory()
      ? readdirSync(target).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort().map((f) => path.join(target, f))
      : [target];
  } catch (e) {
    err(`${target}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    return 2;
  }
  const inputs: RuleInput[] = [];
  const problems: RuleProblem[] = [];
  for (const file of files) {
    const read = readRuleText(file, readFileSync(file, 'utf8'));
    problems.push(...read.errors);
    if (read.input) inputs.push(read.input);
  }
  const registry = registryDir ? loadRegistryDir(registryDir) : undefined;
  const result = validateRules(inputs, { registry });
  for (const p of [...problems, ...result.errors]) err(`error: ${formatProblem(p)}`);
  for (const p of result.warnings) err(`warning: ${formatProblem(p)}`);
  const errors = problems.length + result.errors.length;
  out(`${files.length} document(s): ${errors} error(s), ${result.warnings.length} warning(s)`);
  return errors > 0 ? 1 : 0;
}

const documentName = (file: string): string => path.basename(file).replace(/\.ya?ml$/, '');

export function rulesCommand(): Command {
  const rules = new Command('rules').description('validate, apply, compare and inspect routing rules');

  rules
    .command('validate <path>')
    .description('validate a rule file, or a folder of rule files together, without a server')
    .option('--registry <dir>', 'also check services and subsets against this file registry')
    .action((target: string, opts: { registry?: string }) => {
      const code = validateLocal(target, opts.registry);
      if (code !== 0) throw new CliExit(code);
    });

  serverOptions(
    rules
      .command('apply')
      .description('write a rule document to the store (validated with the others first)')
      .requiredOption('-f, --file <file>', 'the rule document (its name is the file name without .yaml)')
      .option('--name <name>', 'store it under this name instead'),
  ).action(async (opts: { file: string; name?: string; server: string; token?: string; actor: string }) => {
    const client = clientOf(opts);
    const name = opts.name ?? documentName(opts.file);
    const text = readFileSync(opts.file, 'utf8');
    const current = await client.get(name);
    if (current?.text === text) {
      out(`${name}: unchanged (version ${current.version})`);
      return;
    }
    const result = await client.put(name, text, current?.version);
    printProblems('warning', result.warnings);
    out(`${name}: ${current ? 'updated' : 'created'} (version ${result.document.version})`);
  });

  serverOptions(
    rules
      .command('diff')
      .description('show how a rule file differs from what the store holds')
      .requiredOption('-f, --file <file>', 'the rule document')
      .option('--name <name>', 'compare with this stored name instead'),
  ).action(async (opts: { file: string; name?: string; server: string; token?: string; actor: string }) => {
    const name = opts.name ?? documentName(opts.file);
    const current = await clientOf(opts).get(name);
    const text = readFileSync(opts.file, 'utf8');
    if (current?.text === text) {
      out(`${name}: no differences`);
      return;
    }
    out(createTwoFilesPatch(`stored/${name}`, opts.file, current?.text ?? '', text, current ? `version ${current.version}` : 'absent', 'local'));
    throw new CliExit(1); // like diff(1): 1 when they differ
  });

  serverOptions(
    rules.command('get [service]').description('list rule documents, or show the rules of one service'),
  ).action(async (service: string | undefined, opts: { server: string; token?: string; actor: string }) => {
    const client = clientOf(opts);
    const list = await client.list();
    if (!service) {
      for (const d of list) out(`${d.name}\t${d.version}`);
      return;
    }
    for (const d of list) {
      const doc = await client.get(d.name);
      const services = (parse(doc?.text ?? '') as { services?: Record<string, unknown> } | null)?.services ?? {};
      if (doc && service in services) {
        out(`# ${d.name} (version ${d.version})`);
        out(doc.text.trimEnd());
        return;
      }
    }
    err(`no rules for service "${service}"`);
    throw new CliExit(1);
  });

  serverOptions(
    rules.command('history').description('who changed which rule document, and when').option('--limit <n>', 'how many entries', '20'),
  ).action(async (opts: { limit: string; server: string; token?: string; actor: string }) => {
    for (const h of await clientOf(opts).history(Number(opts.limit))) out(`${h.at}\t${h.actor}\t${h.action}\t${h.name}`);
  });
  return rules;
}

/** Reads the document holding `service` (or a new one named after it), edits it, writes it back with its version. */
async function editService(client: AdminClient, service: string, edit: (text: string) => string): Promise<string> {
  const list = await client.list();
  const documents = await Promise.all(list.map(async (d) => (await client.get(d.name))!));
  const name = documentWithService(documents, service) ?? service;
  const current = documents.find((d) => d.name === name);
  const result = await client.put(name, edit(current?.text ?? ''), current?.version);
  printProblems('warning', result.warnings);
  return `${name} (version ${result.document.version})`;
}

export function mirrorCommand(): Command {
  const mirror = new Command('mirror').description('traffic mirroring shorthands');
  serverOptions(
    mirror
      .command('set <service>')
      .description('mirror a share of a service\'s requests to a subset (replaces a mirror of the same name)')
      .requiredOption('--to <subset>', 'the subset that receives the copies, e.g. shadow')
      .requiredOption('--percent <n>', 'share of requests, 0 < n <= 100; decimals allowed')
      .option('--name <name>', 'the mirror\'s name (default: <subset>-mirror)')
      .option('--methods <list>', 'comma-separated methods (default: GET,HEAD,OPTIONS)'),
  ).action(async (service: string, opts: { to: string; percent: string; name?: string; methods?: string; server: string; token?: string; actor: string }) => {
    const percent = Number(opts.percent);
    if (!Number.isFinite(percent)) throw new Error(`--percent ${opts.percent}: not a number`);
    const written = await editService(clientOf(opts), service, (text) =>
      setMirror(text, service, {
        name: opts.name ?? `${opts.to}-mirror`,
        to: opts.to,
        percent,
        methods: opts.methods?.split(',').map((m) => m.trim().toUpperCase()),
      }),
    );
    out(`mirror of ${service} to ${opts.to} at ${percent}%: ${written}`);
  });
  return mirror;
}

export function routeCommand(): Command {
  const route = new Command('route').description('routing shorthands');
  serverOptions(
    route
      .command('dev <service>')
      .description('send requests carrying a dev routing key to a dev-* subset, until it expires')
      .requiredOption('--key <value>', 'the routing key (value of the dev route header)')
      .requiredOption('--to <subset>', 'a dev-* subset, e.g. dev-laptop-1')
      .requiredOption('--for <duration>', 'how long, e.g. 2h or 90m')
      .option('--owner <who>', 'whose route it is (default: --actor)'),
  ).action(async (service: string, opts: { key: string; to: string; for: string; owner?: string; server: string; token?: string; actor: string }) => {
    const expires = new Date(Date.now() + parseDuration(opts.for));
    const written = await editService(clientOf(opts), service, (text) =>
      setDevRoute(text, service, { key: opts.key, to: opts.to, owner: opts.owner ?? opts.actor, expires }),
    );
    out(`dev route ${opts.key} of ${service} to ${opts.to} until ${expires.toISOString()}: ${written}`);
  });
  return route;
}
