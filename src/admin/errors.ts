// Errors the admin API returns: `{ "error": { "code", "message", "problems"? } }`.
// Codes are stable and documented in the README ("Admin API errors"); a code is never
// reused for another meaning.

export const AdminErrorCode = {
  Unauthorized: 'SP_ADMIN_UNAUTHORIZED',
  NoToken: 'SP_ADMIN_TOKEN_NOT_CONFIGURED',
  NotFound: 'SP_ADMIN_NOT_FOUND',
  BadRequest: 'SP_ADMIN_BAD_REQUEST',
  VersionRequired: 'SP_RULES_VERSION_REQUIRED',
  StaleVersion: 'SP_RULES_STALE_VERSION',
  Invalid: 'SP_RULES_INVALID',
  Unavailable: 'SP_RULES_UNAVAILABLE',
  Internal: 'SP_ADMIN_INTERNAL',
} as const;
export type AdminErrorCode = (typeof AdminErrorCode)[keyof typeof AdminErrorCode];

export class AdminError extends Error {
  constructor(
    readonly code: AdminErrorCode,
    readonly status: number,
    message: string,
    readonly problems?: readonly unknown[],
  ) {
    super(message);
    this.name = 'AdminError';
  }

  toJSON(): { error: { code: string; message: string; problems?: readonly unknown[] } } {
    return { error: { code: this.code, message: this.message, ...(this.problems ? { problems: this.problems } : {}) } };
  }
}
