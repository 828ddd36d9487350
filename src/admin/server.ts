// The admin HTTP API (JSON; loopback by default): health, readiness, metrics, proxy
// status, and rules. Built apart from listening, so tests drive it with inject().
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../log.js';
import type { Registry as MetricsRegistry } from 'prom-client';
import { AdminError, AdminErrorCode } from './errors.js';
import type { RulesService } from './rules-service.js';
import { StaleVersionError, RulesUnavailableError } from '../sources/rules-store.js';

export interface ProxyStatus {
  node_id: string;
  cluster: string;
  stream: 'sotw' | 'delta';
  types: { type: string; sent_version?: string; acked_version?: string; nacked_version?: string; error?: string; resources: number }[];
}

export interface AdminDeps {
  logger: Logger;
  /** Bearer token for mutations; undefined refuses every mutation. */
  token?: string;
  metrics: MetricsRegistry;
  rules: RulesService;
  proxies(): ProxyStatus[];
  /** Empty when ready; otherwise what is missing. */
  notReady(): string[];
  status(): Record<string, unknown>;
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The version a request says it last saw: If-Match for updates, If-None-Match: * for creates. */
function expectedVersion(request: FastifyRequest): string | undefined {
  const ifMatch = request.headers['if-match'];
  if (typeof ifMatch === 'string' && ifMatch !== '') return ifMatch.replace(/^W\//, '').replace(/^"|"$/g, '');
  if (request.headers['if-none-match'] === '*') return '';
  return undefined;
}

export function buildAdminServer(deps: AdminDeps): FastifyInstance {
  // Fastify's own request logging stays off: errors are logged by the handler below.
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

  // Rule documents arrive as YAML text (or JSON `{ "text": ... }`).
  for (const type of ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain']) {
    app.addContentTypeParser(type, { parseAs: 'string' }, (_req, body, done) => done(null, body));
  }

  app.setErrorHandler((error: unknown, _request, reply) => {
    const mapped = toAdminError(error);
    if (mapped.status >= 500) deps.logger.error({ err: error }, 'admin request failed');
    void reply.status(mapped.status).send(mapped.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send(new AdminError(AdminErrorCode.NotFound, 404, `no route ${request.method} ${request.url}`).toJSON());
  });

  const requireToken = (request: FastifyRequest): void => {
    if (!deps.token) {
      throw new AdminError(AdminErrorCode.NoToken, 401, 'changes need a bearer token, and none is configured: set admin.token (SHADOWPLANE_ADMIN_TOKEN)');
    }
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!sameToken(given, deps.token)) {
      throw new AdminError(AdminErrorCode.Unauthorized, 401, 'missing or wrong bearer token (Authorization: Bearer <admin.token>)');
    }
  };
  const actorOf = (request: FastifyRequest): string => {
    const actor = request.headers['x-shadowplane-actor'];
    return typeof actor === 'string' && actor !== '' ? actor.slice(0, 128) : 'admin-api';
  };
  const textOf = (request: FastifyRequest): string => {
    const body = request.body;
    if (typeof body === 'string') return body;
    if (body && typeof body === 'object' && typeof (body as { text?: unknown }).text === 'string') return (body as { text: string }).text;
    throw new AdminError(AdminErrorCode.BadRequest, 400, 'send the rule document as YAML (Content-Type: application/yaml) or JSON {"text": "..."}');
  };
  const withVersion = (reply: FastifyReply, version: string): FastifyReply => reply.header('etag', `"${version}"`);

  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const missing = deps.notReady();
    return reply.status(missing.length === 0 ? 200 : 503).send({ ready: missing.length === 0, missing });
  });
  app.get('/metrics', async (_request, reply) => reply.type(deps.metrics.contentType).send(await deps.metrics.metrics()));
  app.get('/v1/status', () => deps.status());
  app.get('/v1/proxies', () => ({ proxies: deps.proxies() }));

  app.get('/v1/rules', async () => ({ documents: await deps.rules.list() }));
  app.get('/v1/rules/history', async (request) => {
    const limit = Number((request.query as { limit?: string }).limit ?? 100);
    return { history: await deps.rules.history(Number.isInteger(limit) && limit > 0 ? Math.min(limit, 1000) : 100) };
  });
  app.post('/v1/rules/validate', async (request) => {
    const name = (request.query as { name?: string }).name ?? 'candidate';
    return deps.rules.validate(name, textOf(request));
  });
  app.get('/v1/rules/:name', async (request, reply) => {
    const { name } = request.params as { name: string };
    const doc = await deps.rules.get(name);
    if (!doc) throw new AdminError(AdminErrorCode.NotFound, 404, `no rule document "${name}"`);
    return withVersion(reply, doc.version).send(doc);
  });
  app.put('/v1/rules/:name', async (request, reply) => {
    requireToken(request);
    const { name } = request.params as { name: string };
    const result = await deps.rules.put(name, textOf(request), expectedVersion(request), actorOf(request));
    return withVersion(reply, result.document.version).send(result);
  });
  app.delete('/v1/rules/:name', async (request) => {
    requireToken(request);
    const { name } = request.params as { name: string };
    await deps.rules.delete(name, expectedVersion(request), actorOf(request));
    return { deleted: name };
  });
  return app;
}

function toAdminError(error: unknown): AdminError {
  if (error instanceof AdminError) return error;
  if (error instanceof StaleVersionError) return new AdminError(AdminErrorCode.StaleVersion, 409, error.message);
  if (error instanceof RulesUnavailableError) return new AdminError(AdminErrorCode.Unavailable, 503, error.message);
  const status = (error as { statusCode?: number }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new AdminError(AdminErrorCode.BadRequest, status, error instanceof Error ? error.message : String(error));
  }
  return new AdminError(AdminErrorCode.Internal, 500, 'internal error; see the server log');
}
