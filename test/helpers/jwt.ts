// A test JWT issuer: an RSA key made per run, its public JWKS, and RS256 tokens.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

export interface TestIssuer {
  issuer: string;
  /** The public key set, as rules take it inline. */
  jwks: string;
  token(claims: Record<string, unknown>, options?: { expiresInS?: number }): string;
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

export function makeTestIssuer(issuer: string): TestIssuer {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = 'test-key-1';
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid, alg: 'RS256', use: 'sig' };
  return {
    issuer,
    jwks: JSON.stringify({ keys: [jwk] }),
    token: (claims, options = {}) => signToken(privateKey, kid, { iss: issuer, exp: Math.floor(Date.now() / 1000) + (options.expiresInS ?? 600), ...claims }),
  };
}

function signToken(key: KeyObject, kid: string, payload: Record<string, unknown>): string {
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
  const body = b64url(JSON.stringify(payload));
  const signature = sign('sha256', Buffer.from(`${head}.${body}`), key);
  return `${head}.${body}.${b64url(signature)}`;
}
