/**
 * Build-cache helpers: the size, duration and filter parsers, the totals, and what
 * diskUsage()/prune() put on the wire, read as raw protobuf bytes by a gRPC server standing
 * in for a builder (so the field numbers are checked against BuildKit's control.proto, not
 * against our own copy of it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { UsageRecord } from '../src/gen/moby/buildkit/v1/control';
import {
  type BuildkitConnection,
  BuildkitError,
  type CacheRecord,
  cacheFilter,
  connectTo,
  diskUsage,
  parseDuration,
  parseSize,
  prune,
  summarizeUsage,
} from '../src/index';

describe('parseSize (docker --keep-storage)', () => {
  test.each([
    ['0', 0],
    ['512', 512],
    ['512b', 512],
    ['1k', 1024],
    ['1kb', 1024],
    ['1KiB', 1024],
    ['128mb', 128 * 2 ** 20],
    ['128 MB', 128 * 2 ** 20],
    ['2g', 2 * 2 ** 30],
    ['1.5GiB', 1.5 * 2 ** 30],
    ['1t', 2 ** 40],
    [' 3m ', 3 * 2 ** 20],
  ])('%j is %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  test.each(['', 'abc', '-1', '1x', '10 gigs', '1.2.3', 'mb', '1ib', '1e3', '99999999999p'])(
    '%j is refused with E_BAD_OPTION and a hint',
    (text) => {
      let err: unknown;
      try {
        parseSize(text);
      } catch (e) {
        err = e;
      }
      expect(BuildkitError.is(err) && err.code).toBe('E_BAD_OPTION');
      expect((err as BuildkitError).hint).toMatch(/128mb/);
    },
  );
});

describe('parseDuration (until=)', () => {
  test.each([
    ['0', 0n],
    ['90s', 90_000_000_000n],
    ['24h', 86_400_000_000_000n],
    ['2h30m', 9_000_000_000_000n],
    ['1.5h', 5_400_000_000_000n],
    ['250ms', 250_000_000n],
  ])('%j is %d ns', (text, ns) => {
    expect(parseDuration(text)).toBe(ns);
  });
  test.each(['', '24', '1d', 'h', '-1h', '1h junk'])('%j is refused', (text) => {
    expect(() => parseDuration(text)).toThrow(/invalid duration/);
  });
});

describe('cacheFilter (docker-style filters to one containerd expression)', () => {
  test('no filters: nothing on the wire', () => {
    expect(cacheFilter([])).toEqual({ filter: [], olderThanNs: 0n });
  });
  test('id is a prefix match, other keys exact, all joined into one AND expression', () => {
    expect(cacheFilter(['id=abc', 'type=source.local', 'description~=RUN'])).toEqual({
      filter: ['id~=abc,type==source.local,description~=RUN'],
      olderThanNs: 0n,
    });
  });
  test('key!=value passes through; until becomes a duration, not a filter', () => {
    expect(cacheFilter(['type!=regular', 'until=1h'])).toEqual({
      filter: ['type!=regular'],
      olderThanNs: 3_600_000_000_000n,
    });
    expect(cacheFilter(['unused-for=2s']).olderThanNs).toBe(2_000_000_000n);
  });
  test('flag keys take no value, or true; false picks the opposite where there is one', () => {
    expect(cacheFilter(['private', 'mutable=true']).filter).toEqual(['private,mutable']);
    expect(cacheFilter(['shared=false', 'immutable=false']).filter).toEqual(['private,mutable']);
  });
  test('values with commas, spaces or a leading quote character are quoted', () => {
    expect(cacheFilter(['description=RUN echo a,b']).filter).toEqual([
      'description=="RUN echo a,b"',
    ]);
    expect(cacheFilter(['description=/bin/sh']).filter).toEqual(['description=="/bin/sh"']);
    expect(cacheFilter(['description~=.*x.*']).filter).toEqual(['description~=".*x.*"']);
    expect(cacheFilter(['type=source.local']).filter).toEqual(['type==source.local']);
  });
  test.each([
    [['color=red'], /unknown filter "color"/],
    [['type=a', 'type=b'], /given twice/],
    [['until=1h', 'unused-for=2h'], /conflict/],
    [['until=tomorrow'], /invalid duration/],
    [['type'], /needs a value/],
    [['inuse=false'], /give inuse or inuse=true/],
    [['shared!=x'], /takes no operator/],
  ])('%j is refused', (specs, message) => {
    let err: unknown;
    try {
      cacheFilter(specs);
    } catch (e) {
      err = e;
    }
    expect(BuildkitError.is(err) && err.code).toBe('E_BAD_OPTION');
    expect((err as Error).message).toMatch(message);
  });
});

const rec = (over: Partial<CacheRecord>): CacheRecord => ({
  id: 'x',
  mutable: false,
  inUse: false,
  size: 0,
  createdAt: undefined,
  lastUsedAt: undefined,
  usageCount: 0,
  description: '',
  recordType: 'regular',
  shared: false,
  parents: [],
  ...over,
});

test('summarizeUsage: totals of sized records; in-use is not reclaimable; private = total - shared', () => {
  const s = summarizeUsage([
    rec({ size: 100 }),
    rec({ size: 50, inUse: true }),
    rec({ size: 30, shared: true }),
    rec({ size: -1 }),
  ]);
  expect(s).toEqual({ total: 180, reclaimable: 130, shared: 30, private: 150 });
});

/** Protobuf fields of one message as [field number, wire type, value]. */
function fields(buf: Buffer): [number, number, bigint | Buffer][] {
  const out: [number, number, bigint | Buffer][] = [];
  let i = 0;
  const varint = () => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (b < 0x80) return v;
    }
  };
  while (i < buf.length) {
    const tag = Number(varint());
    const [num, type] = [tag >> 3, tag & 7];
    if (type === 0) out.push([num, type, varint()]);
    else if (type === 2) {
      const len = Number(varint());
      out.push([num, type, buf.subarray(i, i + len)]);
      i += len;
    } else throw new Error(`unexpected wire type ${type}`);
  }
  return out;
}

describe('diskUsage and prune on the wire (a stand-in builder over a unix socket)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ktl-usage-'));
  const sock = join(dir, 'bk.sock');
  const seen: { method: string; fields: ReturnType<typeof fields> }[] = [];
  const server = new grpc.Server();
  const raw = (b: Buffer) => b;
  const enc = (r: Partial<UsageRecord>) =>
    Buffer.from(UsageRecord.encode(UsageRecord.fromPartial(r)).finish());
  let conn: BuildkitConnection;

  beforeAll(async () => {
    server.addService(
      {
        DiskUsage: {
          path: '/moby.buildkit.v1.Control/DiskUsage',
          requestStream: false,
          responseStream: false,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
        Prune: {
          path: '/moby.buildkit.v1.Control/Prune',
          requestStream: false,
          responseStream: true,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
      },
      {
        DiskUsage: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          seen.push({ method: 'DiskUsage', fields: fields(call.request) });
          // DiskUsageResponse { repeated UsageRecord record = 1 }
          const body = Buffer.concat(
            [
              enc({ ID: 'big', Size: 300n, Shared: true }),
              enc({ ID: 'small', Size: 7n, InUse: true }),
            ].map((r) => Buffer.concat([Buffer.from([0x0a, r.length]), r])),
          );
          cb(null, body);
        },
        Prune: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
          seen.push({ method: 'Prune', fields: fields(call.request) });
          call.write(
            enc({
              ID: 'r1',
              Size: 1000n,
              LastUsedAt: new Date('2020-01-02T03:04:05Z'),
              Mutable: true,
            }),
          );
          call.write(enc({ ID: 'r2', Size: 24n, Parents: ['r1'], RecordType: 'source.local' }));
          call.end();
        },
      },
    );
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) =>
        e ? reject(e) : resolve(),
      ),
    );
    conn = await connectTo(`unix://${sock}`, { verify: false });
  });
  afterAll(async () => {
    await conn?.close();
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('DiskUsage: filter=1 (one AND expression), ageLimit=2 in ns; records come back sorted by size', async () => {
    const records = await diskUsage(conn, { filters: ['type=regular', 'private', 'until=2s'] });
    expect(records.map((r) => [r.id, r.size, r.inUse, r.shared])).toEqual([
      ['small', 7, true, false],
      ['big', 300, false, true],
    ]);
    const req = seen.find((s) => s.method === 'DiskUsage')!.fields;
    expect(req.map(([n, t, v]) => [n, t, Buffer.isBuffer(v) ? v.toString() : v])).toEqual([
      [1, 2, 'type==regular,private'],
      [2, 0, 2_000_000_000n],
    ]);
  });

  test('Prune: all=2, keepDuration=3, reservedSpace=4 (keepBytes in older daemons); streamed records and their total', async () => {
    const streamed: string[] = [];
    const res = await prune(conn, {
      all: true,
      filters: ['id=abc', 'until=1h'],
      reservedSpace: parseSize('1mb'),
      onRecord: (r) => streamed.push(r.id),
    });
    expect(streamed).toEqual(['r1', 'r2']);
    expect(res.reclaimed).toBe(1024);
    expect(res.records[0]).toMatchObject({ id: 'r1', mutable: true, size: 1000 });
    expect(res.records[0]!.lastUsedAt?.toISOString()).toBe('2020-01-02T03:04:05.000Z');
    expect(res.records[1]).toMatchObject({ parents: ['r1'], recordType: 'source.local' });
    const req = seen.find((s) => s.method === 'Prune')!.fields;
    expect(req.map(([n, t, v]) => [n, t, Buffer.isBuffer(v) ? v.toString() : v])).toEqual([
      [1, 2, 'id~=abc'],
      [2, 0, 1n],
      [3, 0, 3_600_000_000_000n],
      [4, 0, 1_048_576n],
    ]);
  });

  test('a builder that fails Prune: E_GRPC with the reason', async () => {
    const bad = await connectTo(`unix://${join(dir, 'nothing.sock')}`, { verify: false });
    try {
      await expect(prune(bad, { filters: ['type=regular'] })).rejects.toMatchObject({
        code: 'E_GRPC',
        message: expect.stringMatching(/^Prune failed: /),
      });
    } finally {
      await bad.close();
    }
  });
});
