// A resource encoded once: the `Any` bytes, a content-hash version, and (built on first
// use, then shared by every stream) the exact bytes it takes inside a SotW or delta
// response. Nothing about a resource is ever encoded per stream.
import { Buffer } from 'node:buffer';
import { createHash, hash } from 'node:crypto';
import protobuf from 'protobufjs';
import { encodeMessage, resourceName, type ResourceObject, type ResourceTypeUrl } from './resources.js';
import { referencesOf, type Reference } from './references.js';
import { putVarint, varintSize } from './proto-writer.js';
import { murmur3x86Words } from './content-hash.js';

/**
 * 16 hex characters of SHA-256: collisions are not a practical concern at our scale.
 * For keys made rarely (a subscription's, sotw-stream.ts); a resource's version is
 * its message's content hash (content-hash.ts), made tens of thousands of times a build.
 */
export function contentHash(...parts: (string | Uint8Array)[]): string {
  if (parts.length === 1) return hash('sha256', parts[0]!, 'hex').slice(0, 16);
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
}

/** Per type URL, an Any's first field: `type_url` (field 1), tag and length included. */
const typeUrlFields = new Map<string, Buffer>();
function typeUrlField(typeUrl: string): Buffer {
  let field = typeUrlFields.get(typeUrl);
  if (!field) {
    const url = Buffer.from(typeUrl, 'utf8');
    field = Buffer.alloc(1 + varintSize(url.length) + url.length);
    field[0] = (1 << 3) | 2;
    url.copy(field, putVarint(field, 1, url.length));
    typeUrlFields.set(typeUrl, field);
  }
  return field;
}

/** Where fromMessage has each message's hash written: one array for every resource. */
const words = new Int32Array(2);

/** A 32-bit integer (signed or not) as 8 hex digits. */
export const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');

export class Resource {
  private delta?: Uint8Array;
  private anyView?: Uint8Array;
  private versionText?: string;

  private constructor(
    readonly typeUrl: ResourceTypeUrl,
    readonly name: string,
    /** `DiscoveryResponse.resources` entry: field 2, length-delimited Any. */
    private readonly sotw: Uint8Array,
    /** Where the Any starts in `sotw`. */
    private readonly anyStart: number,
    /** The encoded message's 64-bit content hash (content-hash.ts), high and low halves as int32. */
    private readonly high: number,
    private readonly low: number,
    readonly references: readonly Reference[],
  ) {}

  /**
   * Hash of the encoded message (16 hex characters of its 64-bit content hash, see
   * content-hash.ts): equal in every process for equal content. Made on first use: a
   * full build makes tens of thousands of resources, and only streams read their versions.
   */
  get version(): string {
    this.versionText ??= hex8(this.high) + hex8(this.low);
    return this.versionText;
  }

  /** Whether `other` has the same content: the same version, compared without text. */
  sameContent(other: Resource): boolean {
    return this.high === other.high && this.low === other.low;
  }

  /** The encoded `google.protobuf.Any`: a view of the SotW entry, made on first use. */
  get any(): Uint8Array {
    this.anyView ??= this.sotw.subarray(this.anyStart);
    return this.anyView;
  }

  static fromObject(typeUrl: ResourceTypeUrl, object: ResourceObject): Resource {
    const name = resourceName(typeUrl, object);
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(typeUrl, object);
    } catch (err) {
      throw new Error(`resource "${name}": ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return Resource.fromMessage(typeUrl, name, bytes, referencesOf(typeUrl, object));
  }

  /**
   * A resource from its encoded message. The message must encode `name` (every
   * resource type carries its name as field 1, so the version tells resources apart as
   * well as contents). The SotW entry, the Any inside it and the message inside that
   * share one buffer.
   */
  static fromMessage(typeUrl: ResourceTypeUrl, name: string, message: Uint8Array, references: readonly Reference[]): Resource {
    const length = message.length;
    const urlField = typeUrlField(typeUrl);
    // Any { string type_url = 1; bytes value = 2; }
    const anyLength = urlField.length + 1 + varintSize(length) + length;
    const sotw = Buffer.allocUnsafe(1 + varintSize(anyLength) + anyLength);
    sotw[0] = (2 << 3) | 2;
    const anyStart = putVarint(sotw, 1, anyLength);
    sotw.set(urlField, anyStart);
    const pos = anyStart + urlField.length;
    sotw[pos] = (2 << 3) | 2;
    sotw.set(message, putVarint(sotw, pos + 1, length));
    murmur3x86Words(message, words);
    return new Resource(typeUrl, name, sotw, anyStart, words[0]!, words[1]!, references);
  }

  /**
   * This resource's share of a type version: the 64 bits of its version, as two 32-bit
   * halves (plain numbers: sums of them need no BigInt). Type versions add these up
   * (see resource-map.ts), so they need no sorting. The version hashes bytes that hold
   * the name, so two resources of one type never share a token by design.
   */
  get tokenHigh(): number {
    return this.high >>> 0;
  }

  get tokenLow(): number {
    return this.low >>> 0;
  }

  /** `DiscoveryResponse.resources` entry: field 2, length-delimited Any. */
  sotwEntry(): Uint8Array {
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
