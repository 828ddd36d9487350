import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { Resource, contentHash, hex8 } from '../../../src/xds/resource.js';
import { murmur3x86Words } from '../../../src/xds/content-hash.js';
import { TypeUrl, decodeAny, encodeAny, encodeMessage } from '../../../src/xds/resources.js';

/** 16 hex characters of the message's 64-bit content hash, written out here from its two words. */
function messageHash(message: Uint8Array): string {
  const out = new Int32Array(2);
  murmur3x86Words(message, out);
  return hex8(out[0]!) + hex8(out[1]!);
}

const cluster = { name: 'api.beta', type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } }, connect_timeout: { seconds: 1 } };

describe('Resource', () => {
  it('carries the Any of the encoded message, and its SotW entry wraps exactly that Any', () => {
    const r = Resource.fromObject(TypeUrl.Cluster, cluster);
    const message = encodeMessage(TypeUrl.Cluster, cluster);
    expect(Buffer.from(r.any)).toEqual(Buffer.from(encodeAny(TypeUrl.Cluster, message)));
    expect(decodeAny(r.any)).toEqual({ typeUrl: TypeUrl.Cluster, value: Buffer.from(message) });
    const entry = protobuf.Writer.create().uint32((2 << 3) | 2).bytes(r.any).finish();
    expect(Buffer.from(r.sotwEntry())).toEqual(Buffer.from(entry));
  });

  it('frames messages whose lengths need multi-byte varints', () => {
    const big = { ...cluster, name: 'x'.repeat(20_000) };
    const r = Resource.fromObject(TypeUrl.Cluster, big);
    expect(Buffer.from(r.any)).toEqual(Buffer.from(encodeAny(TypeUrl.Cluster, encodeMessage(TypeUrl.Cluster, big))));
    expect(Buffer.from(r.sotwEntry())).toEqual(Buffer.from(protobuf.Writer.create().uint32(18).bytes(r.any).finish()));
  });

  it("versions by the message's 64-bit content hash, and tokens by the version's halves", () => {
    const r = Resource.fromObject(TypeUrl.Cluster, cluster);
    const expected = messageHash(encodeMessage(TypeUrl.Cluster, cluster));
    expect(r.version).toBe(expected);
    expect([r.tokenHigh, r.tokenLow]).toEqual([parseInt(expected.slice(0, 8), 16), parseInt(expected.slice(8), 16)]);
    const renamed = Resource.fromObject(TypeUrl.Cluster, { ...cluster, name: 'api.stable' });
    expect([renamed.tokenHigh, renamed.tokenLow]).not.toEqual([r.tokenHigh, r.tokenLow]);
  });

  it('reads tokens as unsigned halves whatever the top bits of the hash, and compares content by them', () => {
    const resources = Array.from({ length: 64 }, (_, i) => Resource.fromObject(TypeUrl.Cluster, { ...cluster, name: `svc-${i}` }));
    // Half of the hashes' words start at 0x80 or above: the halves must not come out negative.
    expect(resources.some((r) => r.tokenHigh >= 2 ** 31) && resources.some((r) => r.tokenLow >= 2 ** 31)).toBe(true);
    for (const r of resources) {
      expect(r.version).toBe(messageHash(encodeMessage(TypeUrl.Cluster, { ...cluster, name: r.name })));
      expect([r.tokenHigh, r.tokenLow]).toEqual([parseInt(r.version.slice(0, 8), 16), parseInt(r.version.slice(8), 16)]);
    }
    const again = Resource.fromObject(TypeUrl.Cluster, { ...cluster, name: 'svc-0' });
    expect(again.sameContent(resources[0]!)).toBe(true);
    expect(again.sameContent(resources[1]!)).toBe(false);
  });

  it('hashes several parts as one stream', () => {
    expect(contentHash('ab', new Uint8Array([99]))).toBe(contentHash('abc'));
  });
});
