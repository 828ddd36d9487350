// Lifecycle hooks of the xDS server: a small object with no-op defaults, used for
// logs, metrics and client status. A hook must not throw or block.

export type StreamKind = 'sotw' | 'delta';

export interface StreamInfo {
  stream_id: number;
  kind: StreamKind;
  peer: string;
}

export interface TypeEvent {
  stream_id: number;
  node_id: string;
  type_url: string;
}

export interface XdsCallbacks {
  onStreamOpen(info: StreamInfo): void;
  onStreamClose(info: StreamInfo & { node_id?: string; reason?: string }): void;
  onRequest(event: TypeEvent & { resource_names: readonly string[]; response_nonce: string }): void;
  onResponse(event: TypeEvent & { version: string; nonce: string; resources: number; removed: number }): void;
  onAck(event: TypeEvent & { version: string; nonce: string }): void;
  onNack(event: TypeEvent & { version: string; nonce: string; error_code: number; error_message: string }): void;
}

export const noopCallbacks: XdsCallbacks = {
  onStreamOpen: () => {},
  onStreamClose: () => {},
  onRequest: () => {},
  onResponse: () => {},
  onAck: () => {},
  onNack: () => {},
};

/** Several hook sets called in order, for logging plus metrics plus status. */
export function combineCallbacks(...sets: Partial<XdsCallbacks>[]): XdsCallbacks {
  const out = { ...noopCallbacks };
  for (const key of Object.keys(noopCallbacks) as (keyof XdsCallbacks)[]) {
    const hooks = sets.map((s) => s[key]).filter((h): h is NonNullable<typeof h> => h !== undefined);
    (out as Record<string, unknown>)[key] = (arg: never) => {
      for (const h of hooks) (h as (a: never) => void)(arg);
    };
  }
  return out;
}
