/** The hand-written fsutil Packet encoder must produce what the generated codec reads back. */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { Stat } from '../src/gen/fsutil/types/stat';
import { Packet, Packet_PacketType as T } from '../src/gen/fsutil/types/wire';
import { PacketBatch } from '../src/session/packet-batch';

const dir = mkdtempSync(join(tmpdir(), 'ktl-pb-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Splits a batch back into its gRPC messages. */
function messages(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; ) {
    expect(buf[i]).toBe(0);
    const n = buf.readUInt32BE(i + 1);
    out.push(buf.subarray(i + 5, i + 5 + n));
    i += 5 + n;
  }
  return out;
}

const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const stat = fc.record({
  path: fc.string({ unit: 'grapheme', maxLength: 40 }),
  mode: u32,
  uid: u32,
  gid: u32,
  size: int64,
  modTime: int64,
  linkname: fc.string({ maxLength: 20 }),
  devmajor: int64,
  devminor: int64,
  // A key named `__proto__` is dropped by the generated fromPartial (it assigns into a plain
  // object), so the reference cannot encode it; ktl never sends xattrs (fsstat leaves them empty).
  xattrs: fc.dictionary(
    fc.string({ minLength: 1, maxLength: 10 }).filter((k) => k !== '__proto__'),
    fc.uint8Array({ maxLength: 10 }),
    { maxKeys: 3 },
  ),
});

describe('PacketBatch', () => {
  test('STAT packets are byte-identical to the generated encoder', () => {
    fc.assert(
      fc.property(stat, (s) => {
        const b = new PacketBatch();
        b.stat(s);
        const [m] = messages(b.take());
        const ref = Packet.encode(Packet.fromPartial({ type: T.PACKET_STAT, stat: s })).finish();
        // Map entry order is insertion order in both; compare bytes exactly.
        expect(Buffer.from(m!).equals(Buffer.from(ref))).toBe(true);
        expect(Stat.fromPartial(Packet.decode(m!).stat!)).toEqual(Stat.fromPartial(s));
      }),
      { numRuns: 300 },
    );
  });

  test('end of listing, end of file, FIN and ERR', () => {
    const b = new PacketBatch();
    b.stat(undefined);
    b.endOfFile(0);
    b.endOfFile(300);
    b.fin();
    b.err('boom');
    const got = messages(b.take()).map((m) => Packet.decode(m));
    expect(got.map((p) => [p.type, p.ID, Buffer.from(p.data).toString(), p.stat])).toEqual([
      [T.PACKET_STAT, 0, '', undefined],
      [T.PACKET_DATA, 0, '', undefined],
      [T.PACKET_DATA, 300, '', undefined],
      [T.PACKET_FIN, 0, '', undefined],
      [T.PACKET_ERR, 0, 'boom', undefined],
    ]);
  });

  test('DATA read from a file, including a short read that shrinks the length varint', () => {
    const f = join(dir, 'f');
    writeFileSync(f, Buffer.alloc(200, 9));
    const fd = openSync(f, 'r');
    try {
      const b = new PacketBatch();
      expect(b.data(7, fd, 0, 100)).toBe(100);
      // Asks for 300 (2-byte varint), gets 100 (1-byte varint): data must move up.
      expect(b.data(2 ** 20, fd, 100, 300)).toBe(100);
      expect(b.data(7, fd, 200, 10)).toBe(0);
      const got = messages(b.take()).map((m) => Packet.decode(m));
      expect(got).toHaveLength(2);
      expect(got[0]).toMatchObject({ type: T.PACKET_DATA, ID: 7 });
      expect(got[1]).toMatchObject({ type: T.PACKET_DATA, ID: 2 ** 20 });
      expect(Buffer.from(got[1]!.data).equals(Buffer.alloc(100, 9))).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  test('grows past its batch size for one large packet, and reports full', () => {
    const f = join(dir, 'big');
    writeFileSync(f, Buffer.alloc(600_000, 1));
    const fd = openSync(f, 'r');
    try {
      const b = new PacketBatch();
      expect(b.data(1, fd, 0, 600_000)).toBe(600_000);
      expect(b.full).toBe(true);
      const [m] = messages(b.take());
      expect(Packet.decode(m!).data.length).toBe(600_000);
      expect(b.size).toBe(0);
    } finally {
      closeSync(fd);
    }
  });
});
