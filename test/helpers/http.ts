// Small GET/PUT helpers over fetch for admin APIs (Envoy admin, Consul HTTP). Every
// call has its own timeout, so a hung server fails the one call, not the whole test.

const defaultTimeoutMs = 5_000;

async function request(method: string, url: string, body?: unknown, timeoutMs = defaultTimeoutMs): Promise<Response> {
  return fetch(url, {
    method,
    signal: AbortSignal.timeout(timeoutMs),
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
}

async function expectOk(response: Response, method: string, url: string): Promise<Response> {
  if (!response.ok) {
    const text = await response.text().catch(() => '');
    throw new Error(`${method} ${url} answered ${response.status}: ${text.trim()}`);
  }
  return response;
}

export async function getText(url: string, timeoutMs?: number): Promise<string> {
  const response = await expectOk(await request('GET', url, undefined, timeoutMs), 'GET', url);
  return response.text();
}

export async function getJson<T = unknown>(url: string, timeoutMs?: number): Promise<T> {
  const response = await expectOk(await request('GET', url, undefined, timeoutMs), 'GET', url);
  return (await response.json()) as T;
}

export async function putJson(url: string, body?: unknown, timeoutMs?: number): Promise<void> {
  const response = await expectOk(await request('PUT', url, body, timeoutMs), 'PUT', url);
  await response.body?.cancel();
}
