/**
 * The session's content service (what BuildKit's local cache exporter and importer call),
 * spoken to by a gRPC client that behaves like containerd's proxy store (test/fakes). No
 * daemon: the end-to-end proof against the real engine is in the CLI's build-cache tests.
 * Adversarial cases: a cache directory whose contents try to lead reads or writes out of it.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { ContentClient } from '../src/gen/containerd/services/content/v1/content';
import {
  type StatusResponse,
  UpdateRequest,
  WriteAction,
} from '../src/gen/containerd/services/content/v1/content';
import { serveGrpc } from '../src/session/grpc-server';
import { buildHandlers } from '../src/session/session';
import {
  contentClient,
  failure,
  info,
  RemoteWriter,
  read,
  storeMetadata,
  writeBlob,
} from './fakes/content-proxy';

const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const FAILED_PRECONDITION = 9;
const OUT_OF_RANGE = 11;
const UNIMPLEMENTED = 12;

const dir = mkdtempSync(join(tmpdir(), 'ktl-content-'));
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hex = (d: string) => d.slice('sha256:'.length);
/** Store directories by name; each is served as `local:<dir>`. */
const stores = {
  out: { dir: join(dir, 'out'), writable: true },
  src: { dir: join(dir, 'src'), writable: false },
  linkedBlob: { dir: join(dir, 'linked-blob'), writable: false },
  linkedBlobsDir: { dir: join(dir, 'linked-blobs-dir'), writable: false },
  hardLinked: { dir: join(dir, 'hard-linked'), writable: false },
  fifo: { dir: join(dir, 'fifo'), writable: false },
  tampered: { dir: join(dir, 'tampered'), writable: false },
  writeLinkedAlg: { dir: join(dir, 'w-linked-alg'), writable: true },
  writeLinkedIngest: { dir: join(dir, 'w-linked-ingest'), writable: true },
  writeLinkedTarget: { dir: join(dir, 'w-linked-target'), writable: true },
};
const id = (name: keyof typeof stores) => `local:${stores[name].dir}`;
/** Outside every store: what a hostile cache directory points at. */
const outside = join(dir, 'outside');
const secret = Buffer.from('host secret: must never be served\n');
const secretDigest = sha(secret);

let server: net.Server;
let client: ContentClient;
const sessions: Array<() => void> = [];

function putBlob(storeDir: string, data: Buffer): string {
  const d = sha(data);
  mkdirSync(join(storeDir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(storeDir, 'blobs', 'sha256', hex(d)), data, { mode: 0o444 });
  return d;
}

const ingestEntries = (storeDir: string) =>
  existsSync(join(storeDir, 'ingest')) ? readdirSync(join(storeDir, 'ingest')) : [];

async function fails(p: Promise<unknown>) {
  try {
    await p;
  } catch (e) {
    return failure(e);
  }
  throw new Error('the call succeeded');
}

beforeAll(async () => {
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, 'secret'), secret);
  mkdirSync(join(outside, 'sha256'), { recursive: true });
  writeFileSync(join(outside, 'sha256', hex(secretDigest)), secret);
  for (const s of Object.values(stores)) mkdirSync(s.dir, { recursive: true });

  // A blob that is a symlink to a host file (whose bytes even match the digest).
  mkdirSync(join(stores.linkedBlob.dir, 'blobs', 'sha256'), { recursive: true });
  symlinkSync(
    join(outside, 'secret'),
    join(stores.linkedBlob.dir, 'blobs', 'sha256', hex(secretDigest)),
  );
  // `blobs` itself a symlink to a host directory laid out like a store.
  symlinkSync(outside, join(stores.linkedBlobsDir.dir, 'blobs'));
  // A hard link to a host file under its digest.
  mkdirSync(join(stores.hardLinked.dir, 'blobs', 'sha256'), { recursive: true });
  linkSync(
    join(outside, 'secret'),
    join(stores.hardLinked.dir, 'blobs', 'sha256', hex(secretDigest)),
  );
  // A FIFO under a digest: opening it for reading would block forever.
  mkdirSync(join(stores.fifo.dir, 'blobs', 'sha256'), { recursive: true });
  execFileSync('mkfifo', [join(stores.fifo.dir, 'blobs', 'sha256', hex(secretDigest))]);
  // Bytes that do not match the name they are stored under.
  mkdirSync(join(stores.tampered.dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(stores.tampered.dir, 'blobs', 'sha256', hex(secretDigest)), 'other bytes');
  // Write side: `blobs/sha256` and `ingest` pointing out, a link planted under a digest.
  mkdirSync(join(outside, 'alg-target'));
  mkdirSync(join(stores.writeLinkedAlg.dir, 'blobs'), { recursive: true });
  symlinkSync(join(outside, 'alg-target'), join(stores.writeLinkedAlg.dir, 'blobs', 'sha256'));
  mkdirSync(join(outside, 'ingest-target'));
  symlinkSync(join(outside, 'ingest-target'), join(stores.writeLinkedIngest.dir, 'ingest'));

  const handlers = buildHandlers({
    contentStores: Object.fromEntries(
      Object.values(stores).map((s) => [`local:${s.dir}`, { dir: s.dir, writable: s.writable }]),
    ),
  });
  server = net.createServer((sock) => sessions.push(serveGrpc(sock, handlers).close));
  await new Promise<void>((r) => server.listen(join(dir, 'session.sock'), r));
  client = contentClient(join(dir, 'session.sock'));
});

afterAll(async () => {
  client.close();
  for (const close of sessions) close();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

describe('writing, as the cache exporter does', () => {
  test('a blob lands under its digest, read-only, whole, with nothing left in ingest/', async () => {
    const data = randomBytes(2.5 * 1024 * 1024);
    const d = sha(data);
    expect(await writeBlob(client, id('out'), 'layer-1', data, d)).toBe('written');
    const path = join(stores.out.dir, 'blobs', 'sha256', hex(d));
    expect(readFileSync(path).equals(data)).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o444);
    expect(ingestEntries(stores.out.dir)).toEqual([]);
    const i = await info(client, id('out'), d);
    expect(i.info?.digest).toBe(d);
    expect(i.info?.size).toBe(BigInt(data.length));
  });

  test('a digest already stored is ALREADY_EXISTS at the first message: the writer skips it', async () => {
    const data = Buffer.from('already here');
    const d = putBlob(stores.out.dir, data);
    const before = statSync(join(stores.out.dir, 'blobs', 'sha256', hex(d)));
    expect(await writeBlob(client, id('out'), 'dup', Buffer.from('already here'), d)).toBe(
      'exists',
    );
    const after = statSync(join(stores.out.dir, 'blobs', 'sha256', hex(d)));
    expect(after.ino).toBe(before.ino);
    expect(ingestEntries(stores.out.dir)).toEqual([]);
  });

  test('bytes that do not hash to the announced digest are not committed', async () => {
    const claimed = sha(Buffer.from('what the writer claims'));
    const data = Buffer.from('what the writer sends');
    const f = await fails(writeBlob(client, id('out'), 'liar', data, claimed));
    expect(f.code).toBe(FAILED_PRECONDITION);
    expect(f.details).toContain(`unexpected commit digest ${sha(data)}, expected ${claimed}`);
    expect(existsSync(join(stores.out.dir, 'blobs', 'sha256', hex(claimed)))).toBe(false);
    expect(existsSync(join(stores.out.dir, 'blobs', 'sha256', hex(sha(data))))).toBe(false);
    expect(ingestEntries(stores.out.dir)).toEqual([]);
  });

  test('a size that does not match the commit is refused', async () => {
    const data = Buffer.from('twelve bytes');
    const w = new RemoteWriter(client, id('out'));
    await w.send({ action: WriteAction.STAT, ref: 'short' });
    await w.send({ action: WriteAction.WRITE, offset: 0n, data });
    const f = await fails(w.send({ action: WriteAction.COMMIT, total: 99n, offset: 12n }));
    expect(f.code).toBe(FAILED_PRECONDITION);
    expect(f.details).toContain('unexpected commit size 12, expected 99');
    expect(existsSync(join(stores.out.dir, 'blobs', 'sha256', hex(sha(data))))).toBe(false);
    expect(ingestEntries(stores.out.dir)).toEqual([]);
  });

  test('a write at another offset than the current one is OUT_OF_RANGE', async () => {
    const w = new RemoteWriter(client, id('out'));
    await w.send({ action: WriteAction.STAT, ref: 'gap' });
    await w.send({ action: WriteAction.WRITE, offset: 0n, data: Buffer.from('abc') });
    const f = await fails(
      w.send({ action: WriteAction.WRITE, offset: 10n, data: Buffer.from('x') }),
    );
    expect(f.code).toBe(OUT_OF_RANGE);
    expect(f.details).toContain('write @10 must occur at current offset 3');
    expect(ingestEntries(stores.out.dir)).toEqual([]);
  });

  test('a writer may start over at offset 0; only the second attempt is stored', async () => {
    const data = Buffer.from('the real content');
    const w = new RemoteWriter(client, id('out'));
    await w.send({ action: WriteAction.STAT, ref: 'retry' });
    await w.send({ action: WriteAction.WRITE, offset: 0n, data: Buffer.from('garbage') });
    const r = await w.send({ action: WriteAction.WRITE, offset: 0n, data });
    expect(r.offset).toBe(BigInt(data.length));
    const c = await w.send({
      action: WriteAction.COMMIT,
      total: BigInt(data.length),
      offset: BigInt(data.length),
      expected: sha(data),
    });
    expect(c.digest).toBe(sha(data));
    w.close();
    expect(readFileSync(join(stores.out.dir, 'blobs', 'sha256', hex(sha(data))), 'utf8')).toBe(
      'the real content',
    );
  });

  test('a write cancelled half-way leaves nothing behind', async () => {
    const w = new RemoteWriter(client, id('out'));
    const data = randomBytes(4096);
    await w.send({ action: WriteAction.STAT, ref: 'cancelled', expected: sha(data) });
    await w.send({ action: WriteAction.WRITE, offset: 0n, data: data.subarray(0, 1000) });
    expect(ingestEntries(stores.out.dir)).toHaveLength(1);
    w.cancel();
    for (let i = 0; i < 50 && ingestEntries(stores.out.dir).length > 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(ingestEntries(stores.out.dir)).toEqual([]);
    expect(existsSync(join(stores.out.dir, 'blobs', 'sha256', hex(sha(data))))).toBe(false);
  });

  test('Status tells a write under way; Abort ends it and removes its bytes', async () => {
    const w = new RemoteWriter(client, id('out'));
    await w.send({ action: WriteAction.STAT, ref: 'watched', total: 10n });
    await w.send({ action: WriteAction.WRITE, offset: 0n, data: Buffer.from('01234') });
    const st = await new Promise<StatusResponse>((res, rej) =>
      client.status({ ref: 'watched' }, storeMetadata(id('out')), (e, r) => (e ? rej(e) : res(r))),
    );
    expect(st.status).toMatchObject({ ref: 'watched', offset: 5n, total: 10n });
    await new Promise<void>((res, rej) =>
      client.abort({ ref: 'watched' }, storeMetadata(id('out')), (e) => (e ? rej(e) : res())),
    );
    expect(ingestEntries(stores.out.dir)).toEqual([]);
    const f = await fails(
      w.send({ action: WriteAction.WRITE, offset: 5n, data: Buffer.from('5') }),
    );
    expect(f.code).toBe(FAILED_PRECONDITION);
    w.cancel();
    const gone = await fails(
      new Promise((res, rej) =>
        client.status({ ref: 'watched' }, storeMetadata(id('out')), (e, r) =>
          e ? rej(e) : res(r),
        ),
      ),
    );
    expect(gone.code).toBe(NOT_FOUND);
  });

  test('a cache source (--cache-from) cannot be written', async () => {
    const data = Buffer.from('not welcome');
    const f = await fails(writeBlob(client, id('src'), 'ro', data, sha(data)));
    expect(f.code).toBe(PERMISSION_DENIED);
    expect(f.details).toContain('is a cache source (--cache-from)');
    expect(existsSync(join(stores.src.dir, 'blobs'))).toBe(false);
    expect(existsSync(join(stores.src.dir, 'ingest'))).toBe(false);
  });
});

describe('reading, as the cache importer does', () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  let d = '';
  beforeAll(() => {
    d = putBlob(stores.src.dir, data);
  });

  test('Info gives the size; Read the whole blob in chunks of at most 1 MiB', async () => {
    expect((await info(client, id('src'), d)).info?.size).toBe(BigInt(data.length));
    const r = await read(client, id('src'), d);
    expect(r.data.equals(data)).toBe(true);
    expect(r.offsets).toEqual([0n, 1048576n, 2097152n, 3145728n]);
  });

  test('Read of a range (ReaderAt), and a size past the end clipped to it', async () => {
    expect(
      (await read(client, id('src'), d, 1000, 5000)).data.equals(data.subarray(1000, 6000)),
    ).toBe(true);
    const tail = await read(client, id('src'), d, data.length - 10, 100);
    expect(tail.data.equals(data.subarray(data.length - 10))).toBe(true);
    const f = await fails(read(client, id('src'), d, data.length + 1, 1));
    expect(f.code).toBe(OUT_OF_RANGE);
  });

  test('a digest not in the store is NOT_FOUND', async () => {
    const f = await fails(info(client, id('src'), sha(Buffer.from('never stored'))));
    expect(f.code).toBe(NOT_FOUND);
    const r = await fails(read(client, id('src'), secretDigest));
    expect(r.code).toBe(NOT_FOUND);
  });

  test.each([
    ['sha256:../../outside/secret'],
    [`sha256:${'A'.repeat(64)}`],
    [`sha256:${'a'.repeat(63)}`],
    [`md5:${'a'.repeat(32)}`],
    [`sha256:${'a'.repeat(64)}/../x`],
    [''],
  ])('%j is not a digest: INVALID_ARGUMENT, no path is made of it', async (bad) => {
    expect((await fails(info(client, id('src'), bad))).code).toBe(INVALID_ARGUMENT);
    expect((await fails(read(client, id('src'), bad))).code).toBe(INVALID_ARGUMENT);
  });

  test('the store is chosen by the buildkit-attachable-store-id header, and must be known', async () => {
    const missing = await fails(info(client, undefined, d));
    expect(missing.code).toBe(INVALID_ARGUMENT);
    expect(missing.details).toContain('buildkit-attachable-store-id');
    const unknown = await fails(info(client, `local:${outside}`, secretDigest));
    expect(unknown.code).toBe(NOT_FOUND);
    expect(unknown.details).toBe(`unknown store local:${outside}`);
  });

  test('delete and label updates are refused; listing is not offered', async () => {
    const del = await fails(
      new Promise((res, rej) =>
        client.delete({ digest: d }, storeMetadata(id('src')), (e, r) => (e ? rej(e) : res(r))),
      ),
    );
    expect(del.code).toBe(PERMISSION_DENIED);
    expect(existsSync(join(stores.src.dir, 'blobs', 'sha256', hex(d)))).toBe(true);
    const upd = await fails(
      new Promise((res, rej) =>
        client.update(
          UpdateRequest.fromPartial({ info: { digest: d } }),
          storeMetadata(id('src')),
          (e, r) => (e ? rej(e) : res(r)),
        ),
      ),
    );
    expect(upd.code).toBe(FAILED_PRECONDITION);
    const list = await fails(
      new Promise((res, rej) => {
        const s = client.list({ filters: [] }, storeMetadata(id('src')));
        s.on('data', () => {});
        s.on('error', rej);
        s.on('end', res);
      }),
    );
    expect(list.code).toBe(UNIMPLEMENTED);
  });
});

describe('a hostile cache directory cannot lead reads or writes out of it', () => {
  test.each<[keyof typeof stores, string]>([
    ['linkedBlob', 'is a symbolic link'],
    ['linkedBlobsDir', '/blobs is a symbolic link'],
    ['hardLinked', 'has 2 hard links'],
    ['fifo', 'is a FIFO'],
  ])('%s: Info and Read are refused and no byte is served', async (name, why) => {
    const i = await fails(info(client, id(name), secretDigest));
    expect(i.code).toBe(PERMISSION_DENIED);
    expect(i.details).toContain(why);
    expect(i.details).toContain('does not follow links out of it');
    const r = await fails(read(client, id(name), secretDigest));
    expect(r.code).toBe(PERMISSION_DENIED);
  });

  test('bytes that do not match their digest are refused before any is served', async () => {
    const chunks: Buffer[] = [];
    const f = await fails(
      new Promise((res, rej) => {
        const s = client.read(
          { digest: secretDigest, offset: 0n, size: 0n },
          storeMetadata(id('tampered')),
        );
        s.on('data', (m: { data: Uint8Array }) => chunks.push(Buffer.from(m.data)));
        s.on('error', rej);
        s.on('end', res);
      }),
    );
    expect(f.code).toBe(FAILED_PRECONDITION);
    expect(f.details).toContain('the cache directory is damaged or was tampered with');
    expect(chunks).toEqual([]);
  });

  test('blobs/sha256 linked out of the store: the write is refused, nothing lands outside', async () => {
    const data = Buffer.from('exported layer');
    const f = await fails(writeBlob(client, id('writeLinkedAlg'), 'w1', data, sha(data)));
    expect(f.code).toBe(PERMISSION_DENIED);
    expect(f.details).toContain('blobs/sha256 is a symbolic link');
    expect(readdirSync(join(outside, 'alg-target'))).toEqual([]);
    expect(ingestEntries(stores.writeLinkedAlg.dir)).toEqual([]);
  });

  test('ingest/ linked out of the store: the write is refused before a byte is written', async () => {
    const data = Buffer.from('exported layer');
    const f = await fails(writeBlob(client, id('writeLinkedIngest'), 'w2', data, sha(data)));
    expect(f.code).toBe(PERMISSION_DENIED);
    expect(f.details).toContain('/ingest is a symbolic link');
    expect(readdirSync(join(outside, 'ingest-target'))).toEqual([]);
  });

  test('a link planted under the digest being written is replaced, never written through', async () => {
    const data = Buffer.from('the exported bytes');
    const d = sha(data);
    const target = join(outside, 'victim');
    writeFileSync(target, 'untouched');
    const blobs = join(stores.writeLinkedTarget.dir, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    symlinkSync(target, join(blobs, hex(d)));
    expect(await writeBlob(client, id('writeLinkedTarget'), 'w3', data, d)).toBe('written');
    expect(lstatSync(join(blobs, hex(d))).isFile()).toBe(true);
    expect(readFileSync(join(blobs, hex(d))).equals(data)).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('untouched');
  });

  test('a refused call still leaves the session serving', async () => {
    const data = Buffer.from('after the refusals');
    expect(await writeBlob(client, id('out'), 'after', data, sha(data))).toBe('written');
    expect(readFileSync(join(stores.out.dir, 'blobs', 'sha256', hex(sha(data))), 'utf8')).toBe(
      'after the refusals',
    );
  });
});
