// The CLI's side of the admin API: a few typed calls, and errors that read like the
// API's own (`SP_RULES_STALE_VERSION: ...`) with every problem listed.
export interface AdminClientOptions {
  /** e.g. http://127.0.0.1:18080 */
  server: string;
  token?: string;
  actor: string;
}

export interface RuleDocument {
  name: string;
  text: string;
  version: string;
}

export interface Problem {
  at: string;
  path: string;
  code: string;
  message: string;
}

export class AdminApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly problems: Problem[] = [],
  ) {
    super(`${code}: ${message}${problems.map((p) => `\n  ${p.at}: ${p.path || '(top level)'}: ${p.message} [${p.code}]`).join('')}`);
    this.name = 'AdminApiError';
  }
}

export class AdminClient {
  constructor(private readonly options: AdminClientOptions) {}

  private async call<T>(method: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: T }> {
    const url = new URL(path, this.options.server).toString();
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
          'x-shadowplane-actor': this.options.actor,
          ...init.headers,
        },
        body: init.body,
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      throw new Error(`cannot reach the admin API at ${this.options.server} (${err instanceof Error ? err.message : String(err)}); is \`shadowplane serve\` running? (--server, SHADOWPLANE_ADMIN_URL)`, { cause: err });
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text === '' ? {} : JSON.parse(text);
    } catch {
      body = { error: { code: 'SP_CLI_BAD_RESPONSE', message: `not JSON: ${text.slice(0, 200)}` } };
    }
    if (!response.ok) {
      const error = (body as { error?: { code?: string; message?: string; problems?: Problem[] } }).error ?? {};
      throw new AdminApiError(response.status, error.code ?? `HTTP_${response.status}`, error.message ?? response.statusText, error.problems ?? []);
    }
    return { status: response.status, body: body as T };
  }

  async list(): Promise<{ name: string; version: string }[]> {
    return (await this.call<{ documents: { name: string; version: string }[] }>('GET', '/v1/rules')).body.documents;
  }

  async get(name: string): Promise<RuleDocument | undefined> {
    try {
      return (await this.call<RuleDocument>('GET', `/v1/rules/${encodeURIComponent(name)}`)).body;
    } catch (err) {
      if (err instanceof AdminApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Writes `text` as `name`: replacing `version`, or creating it when version is undefined. */
  async put(name: string, text: string, version: string | undefined): Promise<{ document: RuleDocument; warnings: Problem[] }> {
    const precondition: Record<string, string> = version === undefined ? { 'if-none-match': '*' } : { 'if-match': `"${version}"` };
    return (
      await this.call<{ document: RuleDocument; warnings: Problem[] }>('PUT', `/v1/rules/${encodeURIComponent(name)}`, {
        body: text,
        headers: { 'content-type': 'application/yaml', ...precondition },
      })
    ).body;
  }

  async validate(name: string, text: string): Promise<{ valid: boolean; errors: Problem[]; warnings: Problem[] }> {
    return (
      await this.call<{ valid: boolean; errors: Problem[]; warnings: Problem[] }>('POST', `/v1/rules/validate?name=${encodeURIComponent(name)}`, {
        body: text,
        headers: { 'content-type': 'application/yaml' },
      })
    ).body;
  }

  async history(limit: number): Promise<{ at: string; actor: string; action: string; name: string }[]> {
    return (await this.call<{ history: { at: string; actor: string; action: string; name: string }[] }>('GET', `/v1/rules/history?limit=${limit}`)).body.history;
  }
}
