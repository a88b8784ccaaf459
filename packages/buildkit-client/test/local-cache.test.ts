/**
 * The client's bookkeeping around a local cache: the manifest digest looked up in index.json
 * before an import, index.json and oci-layout written after an export, the cache attributes
 * and content stores a Solve and its session get. Hostile directories included: index.json or
 * the manifest blob as symlinks out of the directory.
 */
import { createHash } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { BuildkitError } from '../src/errors';
import {
  pinDirectory,
  readLayoutIndex,
  recordLocalCacheExport,
  resolveLocalCacheImport,
} from '../src/local-cache';
import { cacheOptions, localCacheStores } from '../src/solve';

const dir = mkdtempSync(join(tmpdir(), 'ktl-localcache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const INDEX_TYPE = 'application/vnd.oci.image.index.v1+json';

function layout(name: string, manifests: unknown[]): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
  return d;
}

function putBlob(storeDir: string, data: string): { digest: string; size: number } {
  const digest = sha(data);
  mkdirSync(join(storeDir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(storeDir, 'blobs', 'sha256', digest.slice(7)), data);
  return { digest, size: Buffer.byteLength(data) };
}

function thrown(f: () => unknown): BuildkitError {
  try {
    f();
  } catch (e) {
    if (BuildkitError.is(e)) return e;
    throw e;
  }
  throw new Error('nothing thrown');
}

async function rejected(p: Promise<unknown>): Promise<BuildkitError> {
  try {
    await p;
  } catch (e) {
    if (BuildkitError.is(e)) return e;
    throw e;
  }
  throw new Error('nothing thrown');
}

describe('resolveLocalCacheImport (index.json by tag)', () => {
  const a = sha('manifest a');
  const b = sha('manifest b');
  const src = layout('src', [
    {
      mediaType: INDEX_TYPE,
      digest: a,
      size: 10,
      annotations: { 'org.opencontainers.image.ref.name': 'latest' },
    },
    {
      mediaType: INDEX_TYPE,
      digest: b,
      size: 10,
      annotations: { 'org.opencontainers.image.ref.name': 'v2' },
    },
  ]);

  test('latest by default, another tag when named', () => {
    expect(resolveLocalCacheImport(src)).toEqual({ found: true, digest: a });
    expect(resolveLocalCacheImport(src, 'v2')).toEqual({ found: true, digest: b });
  });

  test('a directory or index that does not exist is no cache yet (the build goes on)', () => {
    expect(resolveLocalCacheImport(join(dir, 'nope'))).toEqual({
      found: false,
      reason: `${join(dir, 'nope', 'index.json')} does not exist`,
    });
    mkdirSync(join(dir, 'empty'));
    expect(resolveLocalCacheImport(join(dir, 'empty')).found).toBe(false);
  });

  test('an index without the tag is an error naming the tags it has', () => {
    const e = thrown(() => resolveLocalCacheImport(src, 'v3'));
    expect(e.code).toBe('E_UNSUPPORTED');
    expect(e.message).toBe(
      `local cache ${src} has no manifest tagged "v3" in its index.json (tags: latest, v2)`,
    );
    expect(e.hint).toContain('digest=sha256:');
  });

  test('index.json as a symlink (to a host file) is refused, not read', () => {
    const host = join(dir, 'host-index.json');
    writeFileSync(host, JSON.stringify({ schemaVersion: 2, manifests: [] }));
    const d = join(dir, 'linked-index');
    mkdirSync(d);
    symlinkSync(host, join(d, 'index.json'));
    const e = thrown(() => resolveLocalCacheImport(d));
    expect(e.message).toBe(
      `${join(d, 'index.json')} is a symbolic link; ktl does not follow links in a cache directory`,
    );
  });

  test.each([
    ['not JSON', '{', 'is not JSON'],
    ['manifests not a list', '{"manifests":{}}', 'is not an OCI image index'],
    ['a descriptor without digest', '{"manifests":[{"size":1}]}', 'is not an OCI image index'],
  ])('%s: refused', (_n, text, message) => {
    const d = join(dir, `bad-${_n.replace(/ /g, '-')}`);
    mkdirSync(d);
    writeFileSync(join(d, 'index.json'), text);
    expect(thrown(() => readLayoutIndex(d)).message).toContain(message);
  });

  test('a tagged entry whose digest is not a digest is refused', () => {
    const d = layout('bad-digest', [
      {
        digest: 'sha256:../../x',
        size: 1,
        annotations: { 'org.opencontainers.image.ref.name': 'latest' },
      },
    ]);
    expect(thrown(() => resolveLocalCacheImport(d)).message).toContain('is not a digest');
  });
});

describe('recordLocalCacheExport (index.json after the build)', () => {
  test('records the manifest under the tag, keeps other tags, replaces the same tag; writes oci-layout', async () => {
    const dest = join(dir, 'dest');
    const m1 = putBlob(dest, '{"first":1}');
    await recordLocalCacheExport(dest, 'latest', JSON.stringify({ mediaType: INDEX_TYPE, ...m1 }));
    const m2 = putBlob(dest, '{"second":2}');
    await recordLocalCacheExport(dest, 'v2', JSON.stringify({ mediaType: INDEX_TYPE, ...m2 }));
    const m3 = putBlob(dest, '{"third":3}');
    await recordLocalCacheExport(dest, 'latest', JSON.stringify({ mediaType: INDEX_TYPE, ...m3 }));
    const idx = JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8'));
    expect(idx).toEqual({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: INDEX_TYPE,
          ...m2,
          annotations: { 'org.opencontainers.image.ref.name': 'v2' },
        },
        {
          mediaType: INDEX_TYPE,
          ...m3,
          annotations: { 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    });
    expect(JSON.parse(readFileSync(join(dest, 'oci-layout'), 'utf8'))).toEqual({
      imageLayoutVersion: '1.0.0',
    });
    // Written by rename from temporary files: none is left behind.
    expect(readdirSync(dest).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
    expect(resolveLocalCacheImport(dest)).toEqual({ found: true, digest: m3.digest });
  });

  test('a manifest the directory does not hold is not recorded', async () => {
    const dest = join(dir, 'dest-missing');
    mkdirSync(dest);
    const e = await rejected(
      recordLocalCacheExport(dest, 'latest', JSON.stringify({ digest: sha('absent'), size: 6 })),
    );
    expect(e.code).toBe('E_EXPORT');
    expect(e.message).toContain('is not in the directory');
    expect(readdirSync(dest)).toEqual([]);
  });

  test('a manifest blob with other bytes, or another size, is not recorded', async () => {
    const dest = join(dir, 'dest-bad');
    const m = putBlob(dest, 'real');
    const size = await rejected(
      recordLocalCacheExport(dest, 'latest', JSON.stringify({ digest: m.digest, size: 99 })),
    );
    expect(size.message).toContain('is 4 bytes there, the builder said 99');
    writeFileSync(join(dest, 'blobs', 'sha256', m.digest.slice(7)), 'fake');
    const bytes = await rejected(
      recordLocalCacheExport(dest, 'latest', JSON.stringify({ digest: m.digest, size: 4 })),
    );
    expect(bytes.message).toContain('damaged or was tampered with');
    expect(readdirSync(dest)).toEqual(['blobs']);
  });

  test('a manifest blob linked out of the directory is not followed', async () => {
    const dest = join(dir, 'dest-linked');
    const host = join(dir, 'host-manifest');
    writeFileSync(host, 'host');
    mkdirSync(join(dest, 'blobs', 'sha256'), { recursive: true });
    symlinkSync(host, join(dest, 'blobs', 'sha256', sha('host').slice(7)));
    const e = await rejected(
      recordLocalCacheExport(dest, 'latest', JSON.stringify({ digest: sha('host'), size: 4 })),
    );
    expect(e.message).toContain('is a symbolic link');
  });

  test('an index.json linked out of the directory is neither read nor written through', async () => {
    const dest = join(dir, 'dest-linked-index');
    const m = putBlob(dest, '{"m":1}');
    const host = join(dir, 'host-index-2.json');
    writeFileSync(host, '{"manifests":[]}');
    symlinkSync(host, join(dest, 'index.json'));
    const e = await rejected(recordLocalCacheExport(dest, 'latest', JSON.stringify(m)));
    expect(e.message).toContain('is a symbolic link');
    expect(readFileSync(host, 'utf8')).toBe('{"manifests":[]}');
    expect(lstatSync(join(dest, 'index.json')).isSymbolicLink()).toBe(true);
  });

  test('DEST swapped for a link during the build: the index goes into the directory pinned before it', async () => {
    const dest = join(dir, 'dest-swapped');
    const pin = pinDirectory(dest);
    try {
      const m = putBlob(dest, '{"pinned":1}');
      // What a jailed process could do when DEST's parent is writable in the jail too.
      renameSync(dest, `${dest}.moved`);
      const elsewhere = join(dir, 'elsewhere');
      mkdirSync(elsewhere);
      putBlob(elsewhere, '{"pinned":1}');
      symlinkSync(elsewhere, dest);
      await recordLocalCacheExport(dest, 'latest', JSON.stringify(m), pin);
      expect(readdirSync(elsewhere)).toEqual(['blobs']);
      expect(resolveLocalCacheImport(`${dest}.moved`)).toEqual({ found: true, digest: m.digest });
    } finally {
      pin.close();
    }
  });

  test('errors name DEST as typed, not the pinned /proc path', async () => {
    const dest = join(dir, 'dest-pinned-missing');
    const pin = pinDirectory(dest);
    try {
      const e = await rejected(
        recordLocalCacheExport(dest, 'latest', JSON.stringify({ digest: sha('x'), size: 1 }), pin),
      );
      expect(e.message).toContain(`local cache export to ${dest}: the cache manifest`);
      expect(e.message).not.toContain('/proc/self/fd');
    } finally {
      pin.close();
    }
  });

  test("the builder's descriptor must be one", async () => {
    const dest = join(dir, 'dest-desc');
    mkdirSync(dest);
    expect((await rejected(recordLocalCacheExport(dest, 'latest', 'nope'))).message).toContain(
      'is not JSON',
    );
    expect(
      (await rejected(recordLocalCacheExport(dest, 'latest', '{"digest":"x","size":1}'))).message,
    ).toContain('is not a descriptor');
  });
});

describe('cacheOptions and localCacheStores for local caches', () => {
  const m = sha('the manifest');
  const src = layout('opts-src', [
    { digest: m, size: 1, annotations: { 'org.opencontainers.image.ref.name': 'latest' } },
  ]);

  test('an import gets its digest from index.json; an export goes as given; stores by id', () => {
    const c = cacheOptions({
      cacheImports: [{ type: 'local', attrs: { src } }],
      cacheExports: [{ type: 'local', attrs: { dest: join(dir, 'opts-dest'), mode: 'max' } }],
    });
    expect(c.warnings).toEqual([]);
    expect(c.imports).toEqual([{ Type: 'local', Attrs: { src, digest: m } }]);
    expect(c.exports).toEqual([
      { Type: 'local', Attrs: { dest: join(dir, 'opts-dest'), mode: 'max' } },
    ]);
    expect(JSON.parse(c.frontendAttrs['cache-imports']!)).toEqual([
      { Type: 'local', Attrs: { src, digest: m } },
    ]);
    expect(
      localCacheStores({
        cacheImports: [
          { type: 'local', attrs: { src } },
          { type: 'registry', attrs: { ref: 'r' } },
        ],
        cacheExports: [{ type: 'local', attrs: { dest: join(dir, 'opts-dest') } }],
      }),
    ).toEqual({
      [`local:${src}`]: { dir: src, writable: false },
      [`local:${join(dir, 'opts-dest')}`]: { dir: join(dir, 'opts-dest'), writable: true },
    });
  });

  test('a directory that is both source and destination is served writable once', () => {
    expect(
      localCacheStores({
        cacheImports: [{ type: 'local', attrs: { src } }],
        cacheExports: [{ type: 'local', attrs: { dest: src } }],
      }),
    ).toEqual({ [`local:${src}`]: { dir: src, writable: true } });
  });

  test('an explicit digest is sent as given, without reading index.json', () => {
    const d = sha('pinned');
    const c = cacheOptions({
      cacheImports: [{ type: 'local', attrs: { src: join(dir, 'does-not-exist'), digest: d } }],
    });
    expect(c.imports).toEqual([
      { Type: 'local', Attrs: { src: join(dir, 'does-not-exist'), digest: d } },
    ]);
  });

  test('no cache at src yet: left out of the Solve, with a warning', () => {
    const c = cacheOptions({
      cacheImports: [{ type: 'local', attrs: { src: join(dir, 'none') } }],
    });
    expect(c.imports).toEqual([]);
    expect(c.frontendAttrs).toEqual({});
    expect(c.warnings).toEqual([
      `local cache import at ${join(dir, 'none')} not found (${join(dir, 'none', 'index.json')} does not exist); building without it`,
    ]);
  });

  test('a local export beside another registry or local export is refused (one manifest per build)', () => {
    const e = thrown(() =>
      cacheOptions({
        cacheExports: [
          { type: 'local', attrs: { dest: join(dir, 'x') } },
          { type: 'registry', attrs: { ref: '127.0.0.1:5000/a:c' } },
        ],
      }),
    );
    expect(e.code).toBe('E_UNSUPPORTED');
    expect(e.message).toContain(
      'a local cache export cannot be combined with another cache export',
    );
    // inline rides in the image and reports no cache manifest: it may go along.
    expect(
      cacheOptions({
        cacheExports: [{ type: 'local', attrs: { dest: join(dir, 'x') } }, { type: 'inline' }],
      }).exports,
    ).toHaveLength(2);
  });
});
