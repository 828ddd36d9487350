// A resource encoded once: the `Any` bytes, a content-hash version, and (built on first
// use, then shared by every stream) the exact bytes it takes inside a SotW or delta
// response. Nothing about a resource is ever encoded per stream.
import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';
import { encodeAny, encodeMessage, resourceName, type ResourceObject, type ResourceTypeUrl } from './resources.js';
import { referencesOf, type Reference } from './references.js';

/** 16 hex characters of SHA-256: collisions are not a practical concern at our scale. */
export function contentHash(...parts: (string | Uint8Array)[]): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return hash.digest('hex').slice(0, 16);
}

export class Resource {
  private sotw?: Uint8Array;
  private delta?: Uint8Array;
  private tokenValue?: bigint;

  private constructor(
    readonly typeUrl: ResourceTypeUrl,
    readonly name: string,
    /** The encoded `google.protobuf.Any`. */
    readonly any: Uint8Array,
    /** Hash of the encoded message: equal in every process for equal content. */
    readonly version: string,
    readonly references: readonly Reference[],
  ) {}

  static fromObject(typeUrl: ResourceTypeUrl, object: ResourceObject): Resource {
    const name = resourceName(typeUrl, object);
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(typeUrl, object);
    } catch (err) {
      throw new Error(`resource "${name}": ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return new Resource(typeUrl, name, encodeAny(typeUrl, bytes), contentHash(bytes), referencesOf(typeUrl, object));
  }

  /**
   * This resource's share of a type version: 64 bits of a hash of its name and version.
   * Type versions add these up (see cache.ts versionOf), so they need no sorting.
   */
  token(): bigint {
    this.tokenValue ??= BigInt(`0x${contentHash(this.name, '\u0000', this.version)}`);
    return this.tokenValue;
  }

  /** `DiscoveryResponse.resources` entry: field 2, length-delimited Any. */
  sotwEntry(): Uint8Array {
    this.sotw ??= protobuf.Writer.create().uint32((2 << 3) | 2).bytes(this.any).finish();
    return this.sotw;
  }

  /** `DeltaDiscoveryResponse.resources` entry: field 2, a `Resource{name, version, resource}`. */
  deltaEntry(): Uint8Array {
    if (!this.delta) {
      const inner = protobuf.Writer.create()
        .uint32((1 << 3) | 2).string(this.version)
        .uint32((2 << 3) | 2).bytes(this.any)
        .uint32((3 << 3) | 2).string(this.name)
        .finish();
      this.delta = protobuf.Writer.create().uint32((2 << 3) | 2).bytes(inner).finish();
    }
    return this.delta;
  }
}
