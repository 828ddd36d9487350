// The 64-bit content hash of an encoded resource: the first two words (h1, h2) of
// MurmurHash3 x86_128 with seed 0 (Austin Appleby's public-domain algorithm, as in
// SMHasher), written here for a full build's 41,000 short messages.
//
// Why not SHA-256 any more: Node's `crypto.hash` costs about 0.35 µs a call before it
// reads a byte, and a full build makes 41,000 resources, so SHA-256 was 15 to 25 ms of
// every full build while hashing the 5 MB itself took 3 to 4. The libraries measured
// were slower here (docs/benchmarks.md, B1): xxhash-wasm's 64-bit hash returns a
// BigInt, js-xxhash has 32 bits only (two passes), murmurhash3js-revisited returns hex.
//
// A version decides whether a resource changed, not who may change it: the same job
// Envoy gives its own 64-bit xxHash when it skips a cluster update whose configuration
// hashes as before. Messages carry their names, so two resources of one type always
// differ in the bytes hashed, and meet in a hash only by chance (about 2^-64 a pair).

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

/** The little-endian 32-bit word at `i`. */
const word = (b: Uint8Array, i: number): number => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

const mix1 = (k: number): number => Math.imul(rotl(Math.imul(k, C1), 15), C2);
const mix2 = (k: number): number => Math.imul(rotl(Math.imul(k, C2), 16), C3);
const mix3 = (k: number): number => Math.imul(rotl(Math.imul(k, C3), 17), C4);
const mix4 = (k: number): number => Math.imul(rotl(Math.imul(k, C4), 18), C1);

/** Up to 4 tail bytes from `from`, little-endian, as a word (missing bytes are 0). */
function tailWord(b: Uint8Array, from: number, end: number): number {
  let k = 0;
  for (let i = Math.min(end, from + 4) - 1; i >= from; i--) k = (k << 8) | b[i]!;
  return k;
}

/**
 * Writes the first 64 bits of MurmurHash3 x86_128 (seed 0) of `bytes` into `out`:
 * out[0] = h1, out[1] = h2, as signed 32-bit integers. Written to a caller's array, so
 * hashing 41,000 resources makes no objects.
 */
export function murmur3x86Words(bytes: Uint8Array, out: Int32Array): void {
  const n = bytes.length;
  let h1 = 0;
  let h2 = 0;
  let h3 = 0;
  let h4 = 0;
  const blocks = n - (n & 15);
  for (let i = 0; i < blocks; i += 16) {
    h1 ^= mix1(word(bytes, i));
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    h2 ^= mix2(word(bytes, i + 4));
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    h3 ^= mix3(word(bytes, i + 8));
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    h4 ^= mix4(word(bytes, i + 12));
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  // The last 1 to 15 bytes, four to a lane, each lane only if it has a byte.
  if (n > blocks + 12) h4 ^= mix4(tailWord(bytes, blocks + 12, n));
  if (n > blocks + 8) h3 ^= mix3(tailWord(bytes, blocks + 8, n));
  if (n > blocks + 4) h2 ^= mix2(tailWord(bytes, blocks + 4, n));
  if (n > blocks) h1 ^= mix1(tailWord(bytes, blocks, n));
  h1 ^= n;
  h2 ^= n;
  h3 ^= n;
  h4 ^= n;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h3 = fmix(h3);
  h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  out[0] = h1;
  out[1] = h2;
}
