import { describe, expect, it } from 'vitest';
import { murmur3x86Words } from '../../../src/xds/content-hash.js';
import { hex8 } from '../../../src/xds/resource.js';

/** h1 and h2 as unsigned hex, the order MurmurHash3_x86_128 writes them in. */
function words(bytes: Uint8Array): [string, string] {
  const out = new Int32Array(2);
  murmur3x86Words(bytes, out);
  return [hex8(out[0]!), hex8(out[1]!)];
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('murmur3x86Words', () => {
  // Expected words from an independent implementation (Python's mmh3 5.x,
  // hash128(..., seed=0, x64arch=False)): every tail length and a multi-block input.
  it.each([
    ['empty', new Uint8Array(0), ['00000000', '00000000']],
    ['1 byte (h1 lane of the tail only)', text('a'), ['a794933c', '5556b01b']],
    ['5 bytes (two tail lanes)', text('hello'), ['2b2444a0', 'db91def7']],
    ['13 bytes (the fourth tail lane holds one byte)', text('abcdefghijklm'), ['c13aa215', 'dbaea1ec']],
    ['15 bytes (all four tail lanes)', text('abcdefghijklmno'), ['ee6d1d69', '4a1ad5ae']],
    ['43 bytes (two blocks and an 11-byte tail)', text('The quick brown fox jumps over the lazy dog'), ['2f1583c3', 'ecee2c67']],
    ['256 bytes (blocks only)', Uint8Array.from({ length: 256 }, (_, i) => i), ['2c56c88f', 'db4503df']],
  ] as const)('%s', (_, bytes, expected) => {
    expect(words(bytes)).toEqual(expected);
  });

  it('reads a view at its own offset, not its buffer from the start', () => {
    const whole = text('xxxThe quick brown fox jumps over the lazy dog');
    expect(words(whole.subarray(3))).toEqual(['2f1583c3', 'ecee2c67']);
  });

  it('tells apart inputs that differ in one bit or one trailing zero byte', () => {
    const base = Uint8Array.from({ length: 61 }, (_, i) => (i * 37) & 255);
    const seen = new Set([words(base).join('')]);
    for (let bit = 0; bit < base.length * 8; bit++) {
      const flipped = Uint8Array.from(base);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      seen.add(words(flipped).join(''));
    }
    seen.add(words(Uint8Array.from([...base, 0])).join(''));
    expect(seen.size).toBe(base.length * 8 + 2);
  });
});
