/**
 * The session server spoken to the way the daemon speaks to it: an HTTP/2 client on a raw
 * connection, calling Health, FileSync.DiffCopy and FileSend.DiffCopy. No daemon needed.
 */

import { readdirSync } from 'node:fs';
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Packet, Packet_PacketType as T } from '../src/gen/fsutil/types/wire';
import { BytesMessage } from '../src/gen/moby/filesync/v1/filesync';
import { fileSendReceiver } from '../src/session/filesend';
import { diffCopySender } from '../src/session/filesync';
import { type Handler, serveGrpc } from '../src/session/grpc-server';

let dir: string;
let server: net.Server;
let client: http2.ClientHttp2Session;
let stopServe: () => void;

const frame = (m: Uint8Array) => {
  const b = Buffer.alloc(5 + m.length);
  b.writeUInt32BE(m.length, 1);
  b.set(m, 5);
  return b;
};

/** A bidi call from the client side: send packets, read packets, see the trailers. */
function open(path: string, headers: Record<string, string> = {}) {
  const req = client.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...headers,
  });
  let buf = Buffer.alloc(0);
  const msgs: Buffer[] = [];
  let waiter: (() => void) | undefined;
  const trailers = new Promise<http2.IncomingHttpHeaders>((res) => {
    req.on('trailers', (t) => res(t));
    req.on('response', (r) => {
      if (r['grpc-status'] !== undefined) res(r);
    });
  });
  req.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
      const n = buf.readUInt32BE(1);
      msgs.push(buf.subarray(5, 5 + n));
      buf = buf.subarray(5 + n);
    }
    waiter?.();
  });
  return {
    req,
    trailers,
    send: (m: Uint8Array) => req.write(frame(m)),
    async next(): Promise<Buffer> {
      while (msgs.length === 0) await new Promise<void>((r) => (waiter = r));
      return msgs.shift()!;
    },
  };
}

/** Header object whose repeated names are arrays: node sends each element as its own field. */
function repeatedHeaders(headers: Array<[string, string]>) {
  const h: Record<string, string | string[]> = {};
  for (const [k, v] of headers) {
    const cur = h[k];
    h[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  return h;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ktl-wire-'));
  await mkdir(join(dir, 'ctx/sub'), { recursive: true });
  await writeFile(join(dir, 'ctx/Dockerfile'), 'FROM scratch\n');
  await writeFile(join(dir, 'ctx/big.bin'), Buffer.alloc(100_000, 7));
  await writeFile(join(dir, 'ctx/a, b.txt'), 'comma');
  await writeFile(join(dir, 'ctx/sub/s.txt'), 's');
  const handlers = new Map<string, Handler>([
    [
      '/moby.filesync.v1.FileSync/DiffCopy',
      diffCopySender(new Map([['context', join(dir, 'ctx')]])),
    ],
    [
      '/moby.filesync.v1.FileSend/DiffCopy',
      fileSendReceiver([
        { kind: 'dir', dest: join(dir, 'out') },
        { kind: 'file', path: join(dir, 'arch', 'a.tar') },
        { kind: 'dir', dest: join(dir, 'out-atomic') },
        { kind: 'dir', dest: join(dir, 'out-multi') },
        { kind: 'dir', dest: join(dir, 'out-many') },
      ]),
    ],
    [
      '/grpc.health.v1.Health/Check',
      async (call) => {
        for await (const _ of call.messages()) {
          // drain the request
        }
        await call.send(Buffer.from([8, 1]));
      },
    ],
    [
      // Echoes each request message: shows how the server cut the byte stream into messages.
      '/ktl.test.Echo/Echo',
      async (call) => {
        for await (const m of call.messages()) await call.send(m);
      },
    ],
  ]);
  server = net.createServer((sock) => {
    stopServe = serveGrpc(sock, handlers).close;
  });
  await new Promise<void>((r) => server.listen(join(dir, 's.sock'), r));
  client = http2.connect('http://session', {
    createConnection: () => net.connect(join(dir, 's.sock')),
  });
});

afterAll(async () => {
  client.close();
  stopServe?.();
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

const pkt = (p: Parameters<typeof Packet.fromPartial>[0]) =>
  Packet.encode(Packet.fromPartial(p)).finish();

describe('session gRPC server', () => {
  test('Health/Check answers SERVING (08 01)', async () => {
    const c = open('/grpc.health.v1.Health/Check');
    c.send(new Uint8Array());
    c.req.end();
    expect([...(await c.next())]).toEqual([8, 1]);
    expect((await c.trailers)['grpc-status']).toBe('0');
  });

  test('messages are cut out of the byte stream however it arrives: split headers, several per chunk, 1 MiB in small frames', async () => {
    const a = Buffer.from('first');
    const b = Buffer.alloc(0);
    const c = Buffer.from('third, sent three bytes at a time');
    const big = Buffer.alloc(1024 * 1024 + 3, 9);
    const e = open('/ktl.test.Echo/Echo');
    e.req.write(Buffer.concat([frame(a), frame(b)]));
    const fc = frame(c);
    for (let i = 0; i < fc.length; i += 3) e.req.write(fc.subarray(i, i + 3));
    const fb = frame(big);
    for (let i = 0; i < fb.length; i += 16 * 1024) e.req.write(fb.subarray(i, i + 16 * 1024));
    e.req.end();
    expect(await e.next()).toEqual(a);
    expect(await e.next()).toEqual(b);
    expect(await e.next()).toEqual(c);
    expect((await e.next()).equals(big)).toBe(true);
    expect((await e.trailers)['grpc-status']).toBe('0');
  });

  test('a request cut off inside a message is an error, not a shorter message', async () => {
    const e = open('/ktl.test.Echo/Echo');
    e.req.end(frame(Buffer.from('whole')).subarray(0, 7));
    const t = await e.trailers;
    expect(t['grpc-status']).toBe('13');
    expect(t['grpc-message']).toBe('truncated gRPC message');
  });

  test('responses carry no date header (formatting one costs ~20 ms in a jail without /etc/localtime)', async () => {
    const heads = async (path: string) => {
      const req = client.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
      });
      const h = await new Promise<http2.IncomingHttpHeaders>((r) => req.once('response', r));
      req.close();
      return h;
    };
    const served = await heads('/grpc.health.v1.Health/Check');
    const trailersOnly = await heads('/ktl.test.Nope/Nope');
    expect([served[':status'], served.date]).toEqual([200, undefined]);
    expect([trailersOnly['grpc-status'], trailersOnly.date]).toEqual(['12', undefined]);
  });

  test('unknown methods are UNIMPLEMENTED', async () => {
    const c = open('/moby.sshforward.v1.SSH/CheckAgent');
    c.req.end();
    expect((await c.trailers)['grpc-status']).toBe('12');
  });

  test('DiffCopy: stats, then data for requested ids, FIN answered with FIN and OK', async () => {
    const headers = repeatedHeaders([
      ['dir-name', 'context'],
      ['exclude-patterns', 'a, b.txt'],
      ['exclude-patterns', 'sub'],
    ]);
    const req = client.request({
      ':method': 'POST',
      ':path': '/moby.filesync.v1.FileSync/DiffCopy',
      'content-type': 'application/grpc',
      ...headers,
    });
    let buf = Buffer.alloc(0);
    const got: Packet[] = [];
    let wake: (() => void) | undefined;
    req.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        got.push(Packet.decode(buf.subarray(5, 5 + buf.readUInt32BE(1))));
        buf = buf.subarray(5 + buf.readUInt32BE(1));
      }
      wake?.();
    });
    const trailers = new Promise<http2.IncomingHttpHeaders>((r) => req.on('trailers', r));
    const until = async (pred: () => boolean) => {
      while (!pred()) await new Promise<void>((r) => (wake = r));
    };
    await until(() => got.some((p) => p.type === T.PACKET_STAT && p.stat === undefined));
    const stats = got.filter((p) => p.stat).map((p) => p.stat!.path);
    expect(stats).toEqual(['Dockerfile', 'big.bin']); // both patterns applied, one per header
    req.write(frame(pkt({ type: T.PACKET_REQ, ID: 1 })));
    await until(() => got.some((p) => p.type === T.PACKET_DATA && p.data.length === 0));
    const data = Buffer.concat(
      got.filter((p) => p.type === T.PACKET_DATA).map((p) => Buffer.from(p.data)),
    );
    expect(data.equals(Buffer.alloc(100_000, 7))).toBe(true);
    expect(Math.max(...got.filter((p) => p.type === T.PACKET_DATA).map((p) => p.data.length))).toBe(
      100_000, // one DATA packet: up to DATA_CHUNK (128 KiB) each
    );
    req.write(frame(pkt({ type: T.PACKET_FIN })));
    await until(() => got.some((p) => p.type === T.PACKET_FIN));
    req.end();
    expect((await trailers)['grpc-status']).toBe('0');
  });

  test('DiffCopy: an id that is not a requestable file fails the call', async () => {
    const req = client.request({
      ':method': 'POST',
      ':path': '/moby.filesync.v1.FileSync/DiffCopy',
      'content-type': 'application/grpc',
      'dir-name': 'context',
    });
    req.resume();
    const trailers = new Promise<http2.IncomingHttpHeaders>((r) => req.on('trailers', r));
    req.write(frame(pkt({ type: T.PACKET_REQ, ID: 999 })));
    const t = await trailers;
    expect(t['grpc-status']).toBe('3');
    expect(decodeURIComponent(String(t['grpc-message']))).toBe('invalid file id 999');
    req.close();
  });

  test('FileSend local: files, dirs, links land under dest; REQ/DATA/FIN exchange', async () => {
    const c = open('/moby.filesync.v1.FileSend/DiffCopy');
    const mtime = 1_600_000_000_123_456_789n;
    c.send(
      pkt({
        type: T.PACKET_STAT,
        stat: { path: 'd', mode: (0x80000000 | 0o755) >>> 0, modTime: mtime },
      }),
    );
    c.send(
      pkt({ type: T.PACKET_STAT, stat: { path: 'd/f', mode: 0o640, size: 5n, modTime: mtime } }),
    );
    c.send(pkt({ type: T.PACKET_STAT, stat: { path: 'd/hl', mode: 0o640, linkname: 'd/f' } }));
    c.send(
      pkt({
        type: T.PACKET_STAT,
        stat: { path: 'ln', mode: (1 << 27) | 0o777, linkname: '/etc/passwd' },
      }),
    );
    c.send(pkt({ type: T.PACKET_STAT }));
    const req = Packet.decode(await c.next());
    expect(req.type).toBe(T.PACKET_REQ);
    expect(req.ID).toBe(1); // ids count every stat, the dir included
    c.send(pkt({ type: T.PACKET_DATA, ID: 1, data: Buffer.from('hello') }));
    c.send(pkt({ type: T.PACKET_DATA, ID: 1 }));
    expect(Packet.decode(await c.next()).type).toBe(T.PACKET_FIN);
    c.send(pkt({ type: T.PACKET_FIN }));
    c.req.end();
    expect((await c.trailers)['grpc-status']).toBe('0');
    const out = join(dir, 'out');
    expect(await readFile(join(out, 'd/f'), 'utf8')).toBe('hello');
    expect((await stat(join(out, 'd/f'))).mode & 0o777).toBe(0o640);
    expect((await stat(join(out, 'd/hl'))).ino).toBe((await stat(join(out, 'd/f'))).ino);
    expect(await readlink(join(out, 'ln'))).toBe('/etc/passwd');
    expect((await stat(join(out, 'd'))).mtimeMs).toBeCloseTo(1_600_000_000_123.456, 2);
  });

  test('FileSend local: 3000 files requested before any data holds few descriptors open (the jail allows 4096)', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    const c = open('/moby.filesync.v1.FileSend/DiffCopy', {
      'buildkit-attachable-exporter-id': '4',
    });
    const N = 3000;
    for (let i = 0; i < N; i++)
      c.send(pkt({ type: T.PACKET_STAT, stat: { path: `f${i}`, mode: 0o644, size: 4n } }));
    c.send(pkt({ type: T.PACKET_STAT }));
    const ids: number[] = [];
    while (ids.length < N) ids.push(Packet.decode(await c.next()).ID);
    let most = fds();
    // Data for all of them, in reverse and in two halves each, as a daemon may send it.
    for (const id of [...ids].reverse())
      c.send(pkt({ type: T.PACKET_DATA, ID: id, data: Buffer.from(`${id % 10}`) }));
    for (const id of ids) {
      c.send(pkt({ type: T.PACKET_DATA, ID: id, data: Buffer.from('abc') }));
      c.send(pkt({ type: T.PACKET_DATA, ID: id }));
      if (id % 500 === 0) most = Math.max(most, fds());
    }
    expect(Packet.decode(await c.next()).type).toBe(T.PACKET_FIN);
    c.send(pkt({ type: T.PACKET_FIN }));
    c.req.end();
    expect((await c.trailers)['grpc-status']).toBe('0');
    expect(most - before).toBeLessThan(100);
    const out = join(dir, 'out-many');
    expect(readdirSync(out)).toHaveLength(N);
    expect(await readFile(join(out, 'f7'), 'utf8')).toBe('7abc'); // its id is its place in the listing
  });

  test.each([
    ['../escape', /escapes the destination/],
    ['/abs', /absolute/],
    ['a/../../b', /not a clean relative path/],
    ['ln/passwd', /parent is not a directory of this export/], // through the symlink above
  ])('FileSend local refuses %j', async (path, why) => {
    const c = open('/moby.filesync.v1.FileSend/DiffCopy');
    c.req.on('error', () => {});
    c.send(
      pkt({ type: T.PACKET_STAT, stat: { path: 'ln', mode: (1 << 27) | 0o777, linkname: '/etc' } }),
    );
    c.send(pkt({ type: T.PACKET_STAT, stat: { path, mode: 0o644 } }));
    const err = Packet.decode(await c.next());
    expect(err.type).toBe(T.PACKET_ERR);
    expect(Buffer.from(err.data).toString()).toMatch(why);
    const t = await c.trailers;
    expect(t['grpc-status']).toBe('3');
    c.req.close();
    await expect(lstat('/etc/passwd-ktl-test')).rejects.toThrow();
  });

  const partials = async (d: string) =>
    (await readdir(d, { recursive: true })).filter((n) => String(n).includes('.ktl-partial-'));
  const until = async (cond: () => Promise<boolean>) => {
    for (let i = 0; i < 200 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 10));
  };

  test('FileSend local is atomic per file: the old file stays until the new one is whole', async () => {
    const out = join(dir, 'out-atomic');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'f'), 'old');
    const c = open('/moby.filesync.v1.FileSend/DiffCopy', {
      'buildkit-attachable-exporter-id': '2',
    });
    c.send(pkt({ type: T.PACKET_STAT, stat: { path: 'f', mode: 0o644, size: 6n } }));
    c.send(pkt({ type: T.PACKET_STAT }));
    const req = Packet.decode(await c.next());
    expect(req.type).toBe(T.PACKET_REQ);
    c.send(pkt({ type: T.PACKET_DATA, ID: req.ID, data: Buffer.from('new') }));
    await until(async () => (await partials(out)).length === 1);
    expect(await readFile(join(out, 'f'), 'utf8')).toBe('old'); // mid-transfer
    expect(await partials(out)).toHaveLength(1);
    c.send(pkt({ type: T.PACKET_DATA, ID: req.ID, data: Buffer.from('new') }));
    c.send(pkt({ type: T.PACKET_DATA, ID: req.ID }));
    expect(Packet.decode(await c.next()).type).toBe(T.PACKET_FIN);
    c.send(pkt({ type: T.PACKET_FIN }));
    c.req.end();
    expect((await c.trailers)['grpc-status']).toBe('0');
    expect(await readFile(join(out, 'f'), 'utf8')).toBe('newnew');
    expect(await partials(out)).toEqual([]);
  });

  test('FileSend local: a failed export leaves the old file and no partial file', async () => {
    const out = join(dir, 'out-atomic');
    await writeFile(join(out, 'g'), 'keep');
    const c = open('/moby.filesync.v1.FileSend/DiffCopy', {
      'buildkit-attachable-exporter-id': '2',
    });
    c.req.on('error', () => {});
    c.send(pkt({ type: T.PACKET_STAT, stat: { path: 'g', mode: 0o644, size: 9n } }));
    c.send(pkt({ type: T.PACKET_STAT }));
    const req = Packet.decode(await c.next());
    c.send(pkt({ type: T.PACKET_DATA, ID: req.ID, data: Buffer.from('half') }));
    await until(async () => (await partials(out)).length === 1);
    c.send(pkt({ type: T.PACKET_ERR, data: Buffer.from('sender gave up') }));
    const t = await c.trailers;
    expect(t['grpc-status']).not.toBe('0');
    expect(await readFile(join(out, 'g'), 'utf8')).toBe('keep');
    expect(await partials(out)).toEqual([]);
  });

  test('FileSend tar: written under a partial name, renamed when the stream ends cleanly', async () => {
    const arch = join(dir, 'arch');
    await mkdir(arch, { recursive: true });
    await writeFile(join(arch, 'a.tar'), 'old archive');
    const msg = (b: string) => BytesMessage.encode({ data: Buffer.from(b) }).finish();
    const c = open('/moby.filesync.v1.FileSend/DiffCopy', {
      'buildkit-attachable-exporter-id': '1',
    });
    c.send(msg('new '));
    await until(async () => (await partials(arch)).length === 1);
    expect(await readFile(join(arch, 'a.tar'), 'utf8')).toBe('old archive');
    c.send(msg('archive'));
    c.req.end();
    expect((await c.trailers)['grpc-status']).toBe('0');
    expect(await readFile(join(arch, 'a.tar'), 'utf8')).toBe('new archive');
    expect(await partials(arch)).toEqual([]);

    // A stream cut short (the daemon canceled): the old archive stays, nothing partial remains.
    const d = open('/moby.filesync.v1.FileSend/DiffCopy', {
      'buildkit-attachable-exporter-id': '1',
    });
    d.req.on('error', () => {});
    d.send(msg('trunc'));
    await until(async () => (await partials(arch)).length === 1);
    d.req.close(http2.constants.NGHTTP2_CANCEL);
    await until(async () => (await partials(arch)).length === 0);
    expect(await partials(arch)).toEqual([]);
    expect(await readFile(join(arch, 'a.tar'), 'utf8')).toBe('new archive');
  });

  const DIR = (0x80000000 | 0o755) >>> 0;
  const LINK = ((1 << 27) | 0o777) >>> 0;
  const multi = () =>
    open('/moby.filesync.v1.FileSend/DiffCopy', { 'buildkit-attachable-exporter-id': '3' });

  test('FileSend local, multi-platform: a transfer per platform, each into its own subdirectory, one at a time, files under partial names until whole', async () => {
    const out = join(dir, 'out-multi');
    const a = multi();
    const b = multi();
    const events: string[] = [];
    for (const [c, p] of [
      [a, 'linux_amd64'],
      [b, 'linux_arm64'],
    ] as const) {
      c.send(pkt({ type: T.PACKET_STAT, stat: { path: p, mode: DIR, modTime: 0n } }));
      c.send(pkt({ type: T.PACKET_STAT, stat: { path: `${p}/p`, mode: 0o644, size: 12n } }));
      c.send(pkt({ type: T.PACKET_STAT }));
    }
    void b.next().then(() => events.push('b answered'));
    const reqA = Packet.decode(await a.next());
    expect(reqA).toMatchObject({ type: T.PACKET_REQ, ID: 1 });
    await until(async () => (await partials(out)).length === 1);
    expect((await partials(out)).map(String)).toEqual([
      expect.stringMatching(/^linux_amd64\/\.p\.ktl-partial-/),
    ]);
    a.send(pkt({ type: T.PACKET_DATA, ID: 1, data: Buffer.from('linux/amd64\n') }));
    a.send(pkt({ type: T.PACKET_DATA, ID: 1 }));
    expect(Packet.decode(await a.next()).type).toBe(T.PACKET_FIN);
    // The second platform's transfer has not been answered while the first was running.
    expect(events).toEqual([]);
    events.push('a done');
    a.send(pkt({ type: T.PACKET_FIN }));
    a.req.end();
    expect((await a.trailers)['grpc-status']).toBe('0');
    await until(async () => events.length === 2);
    expect(events).toEqual(['a done', 'b answered']);
    b.send(pkt({ type: T.PACKET_DATA, ID: 1, data: Buffer.from('linux/arm64\n') }));
    b.send(pkt({ type: T.PACKET_DATA, ID: 1 }));
    expect(Packet.decode(await b.next()).type).toBe(T.PACKET_FIN);
    b.send(pkt({ type: T.PACKET_FIN }));
    b.req.end();
    expect((await b.trailers)['grpc-status']).toBe('0');
    expect(await readFile(join(out, 'linux_amd64/p'), 'utf8')).toBe('linux/amd64\n');
    expect(await readFile(join(out, 'linux_arm64/p'), 'utf8')).toBe('linux/arm64\n');
    expect((await stat(join(out, 'linux_arm64'))).mtimeMs).toBe(0);
    expect(await partials(out)).toEqual([]);
  });

  test('FileSend local: two transfers into one destination cannot race a symlink into a directory the other is filling', async () => {
    // Platform A makes directory x and will write x/f; platform B has x as a symlink out of
    // the destination. Run at once, B could swap x for its link between A's mkdir and A's
    // write of x/f, and A's file would land outside. One at a time, it cannot.
    const out = join(dir, 'out-multi');
    const outside = join(dir, 'outside-multi');
    await mkdir(outside);
    const a = multi();
    const b = multi();
    b.req.on('error', () => {});
    a.send(pkt({ type: T.PACKET_STAT, stat: { path: 'x', mode: DIR } }));
    await until(async () => (await lstat(join(out, 'x')).catch(() => undefined)) !== undefined);
    b.send(pkt({ type: T.PACKET_STAT, stat: { path: 'x', mode: LINK, linkname: outside } }));
    b.send(pkt({ type: T.PACKET_STAT }));
    await new Promise((r) => setTimeout(r, 100));
    a.send(pkt({ type: T.PACKET_STAT, stat: { path: 'x/f', mode: 0o644, size: 3n } }));
    a.send(pkt({ type: T.PACKET_STAT }));
    const req = Packet.decode(await a.next());
    expect(req.type).toBe(T.PACKET_REQ);
    a.send(pkt({ type: T.PACKET_DATA, ID: req.ID, data: Buffer.from('abc') }));
    a.send(pkt({ type: T.PACKET_DATA, ID: req.ID }));
    expect(Packet.decode(await a.next()).type).toBe(T.PACKET_FIN);
    a.send(pkt({ type: T.PACKET_FIN }));
    a.req.end();
    expect((await a.trailers)['grpc-status']).toBe('0');
    expect(Packet.decode(await b.next()).type).toBe(T.PACKET_FIN);
    b.send(pkt({ type: T.PACKET_FIN }));
    b.req.end();
    expect((await b.trailers)['grpc-status']).toBe('0');
    expect(await readdir(outside)).toEqual([]);
    // The later transfer's entry wins, as with any merge into an existing tree.
    expect(await readlink(join(out, 'x'))).toBe(outside);
  });
});
