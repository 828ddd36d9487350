// Protobuf wire format for encoders that know their message's shape (see
// translate/fast-encode.ts). One scratch buffer, reused from message to message:
// a nested message reserves one byte for its length and moves its bytes along in
// the rare case the length needs more. The caller copies the finished message out.
//
// Strings are written as protobufjs writes them, so both paths give equal bytes; a
// string with a lone surrogate (which protobufjs writes one of two ways, by length)
// is refused instead: `ok` turns false and the caller takes the generic path.
import { Buffer } from 'node:buffer';

const LEN = 2;
const VARINT = 0;

export class ProtoWriter {
  private buf = Buffer.allocUnsafe(64 * 1024);
  pos = 0;
  /** False once something could not be written exactly as protobufjs would. */
  ok = true;

  reset(): void {
    this.pos = 0;
    this.ok = true;
  }

  /** The message so far: a view of the scratch buffer, valid until the next reset. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /** A copy of what was written from `start` on: outlives the next reset. From Buffer's pool, as a slice would not be. */
  copyFrom(start: number): Uint8Array {
    const copy = Buffer.allocUnsafe(this.pos - start);
    copy.set(this.buf.subarray(start, this.pos));
    return copy;
  }

  /** Drops what was written from `start` on, and forgets a failure since: the caller tries another way. */
  rewind(start: number): void {
    this.pos = start;
    this.ok = true;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  /** A non-negative integer below 2^53 as a varint. */
  varint(n: number): void {
    this.room(10);
    const buf = this.buf;
    let pos = this.pos;
    while (n > 0x7fffffff) {
      buf[pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    while (n > 127) {
      buf[pos++] = (n & 127) | 0x80;
      n >>>= 7;
    }
    buf[pos++] = n;
    this.pos = pos;
  }

  private tag(field: number, wire: number): void {
    const key = (field << 3) | wire;
    if (key < 128) {
      this.room(1);
      this.buf[this.pos++] = key;
    } else this.varint(key);
  }

  /** A uint32, an enum (non-negative) or a positive int64 below 2^53. */
  uint(field: number, n: number): void {
    this.tag(field, VARINT);
    this.varint(n);
  }

  bool(field: number, b: boolean): void {
    this.tag(field, VARINT);
    this.varint(b ? 1 : 0);
  }

  string(field: number, s: string): void {
    this.tag(field, LEN);
    const n = s.length;
    this.room(n + 5);
    // ASCII, the common case, is copied as is, its length known before it is written.
    if (n < 128) {
      const buf = this.buf;
      const start = this.pos + 1;
      let i = 0;
      while (i < n) {
        const c = s.charCodeAt(i);
        if (c > 127) break;
        buf[start + i] = c;
        i++;
      }
      if (i === n) {
        buf[this.pos] = n;
        this.pos = start + n;
        return;
      }
    }
    if (!wellFormed(s)) {
      this.ok = false;
      return;
    }
    const bytes = Buffer.byteLength(s, 'utf8');
    this.varint(bytes);
    this.room(bytes);
    this.buf.write(s, this.pos, bytes, 'utf8');
    this.pos += bytes;
  }

  /** Already-encoded bytes as a length-delimited field. */
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, LEN);
    this.varint(b.length);
    this.raw(b);
  }

  /** Bytes that are already fields (tags included). */
  raw(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Opens a nested message; `end` with the returned mark closes it. */
  begin(field: number): number {
    this.tag(field, LEN);
    this.room(1);
    return this.pos++;
  }

  end(mark: number): void {
    const length = this.pos - mark - 1;
    if (length < 128) {
      this.buf[mark] = length;
      return;
    }
    const size = varintSize(length);
    this.room(size - 1);
    this.buf.copyWithin(mark + size, mark + 1, this.pos);
    this.pos += size - 1;
    const end = this.pos;
    this.pos = mark;
    this.varint(length);
    this.pos = end;
  }
}

export function varintSize(n: number): number {
  let size = 1;
  while (n > 127) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes `n` as a varint into `buf` at `pos`; returns the position after it. */
export function putVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n > 127) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** No lone surrogate: UTF-8 has one encoding for the string. */
function wellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff) return false;
    const next = s.charCodeAt(i + 1);
    if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
    i++;
  }
  return true;
}
