// A resource encoded once: the `Any` bytes, a content-hash version, and (built on first
// use, then shared by every stream) the exact bytes it takes inside a SotW or delta
// response. Nothing about a resource is ever encoded per stream.
import { Buffer } from 'node:buffer';
import { createHash, hash } from 'node:crypto';
import protobuf from 'protobufjs';
import { encodeMessage, resourceName, type ResourceObject, type ResourceTypeUrl } from './resources.js';
import { referencesOf, type Reference } from './references.js';
import { putVarint, varintSize } from './proto-writer.js';

/** 16 hex characters of SHA-256: collisions are not a practical concern at our scale. */
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

export class Resource {
  private delta?: Uint8Array;
  private anyView?: Uint8Array;

  private constructor(
    readonly typeUrl: ResourceTypeUrl,
    readonly name: string,
    /** `DiscoveryResponse.resources` entry: field 2, length-delimited Any. */
    private readonly sotw: Uint8Array,
    /** Where the Any starts in `sotw`. */
    private readonly anyStart: number,
    /** Hash of the encoded message: equal in every process for equal content. */
    readonly version: string,
    readonly references: readonly Reference[],
  ) {}

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
   * A resource from its encoded message, given in one or more parts laid end to end.
   * The message must encode `name` (every resource type carries its name as field 1, so
   * the version tells resources apart as well as contents). The SotW entry, the Any
   * inside it and the message inside that share one buffer.
   */
  static fromMessage(typeUrl: ResourceTypeUrl, name: string, message: Uint8Array | readonly Uint8Array[], references: readonly Reference[]): Resource {
    const parts = message instanceof Uint8Array ? [message] : message;
    let length = 0;
    for (const part of parts) length += part.length;
    const urlField = typeUrlField(typeUrl);
    // Any { string type_url = 1; bytes value = 2; }
    const anyLength = urlField.length + 1 + varintSize(length) + length;
    const sotw = Buffer.allocUnsafe(1 + varintSize(anyLength) + anyLength);
    sotw[0] = (2 << 3) | 2;
    const anyStart = putVarint(sotw, 1, anyLength);
    sotw.set(urlField, anyStart);
    let pos = anyStart + urlField.length;
    sotw[pos] = (2 << 3) | 2;
    const messageStart = putVarint(sotw, pos + 1, length);
    pos = messageStart;
    for (const part of parts) {
      sotw.set(part, pos);
      pos += part.length;
    }
    const version = contentHash(parts.length === 1 ? parts[0]! : sotw.subarray(messageStart));
    return new Resource(typeUrl, name, sotw, anyStart, version, references);
  }

  /**
   * This resource's share of a type version: the 64 bits of its version, as two 32-bit
   * halves (plain numbers: sums of them need no BigInt). Type versions add these up
   * (see resource-map.ts), so they need no sorting. The version hashes bytes that hold
   * the name, so two resources of one type never share a token by design.
   */
  get tokenHigh(): number {
    return parseInt(this.version.slice(0, 8), 16);
  }

  get tokenLow(): number {
    return parseInt(this.version.slice(8, 16), 16);
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
