import { chown, link, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { canRequestData, goFileMode, MODE_DIR, MODE_SYMLINK } from '../src/session/fsstat';
import {
  ContextWalker,
  resolveFollowPaths,
  type WalkOptions,
  walkContext,
} from '../src/session/walk';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ktl-walk-'));
  for (const d of ['a', 'a/z', 'B', 'sub', 'sub/deep', 'node_modules/x'])
    await mkdir(join(root, d), { recursive: true });
  for (const f of [
    'a-b',
    'a/z/f',
    'B/f',
    'Dockerfile',
    'é',
    'z',
    'sub/deep/keep.txt',
    'sub/drop.txt',
    'node_modules/x/i.js',
    'x.log',
  ]) {
    await writeFile(join(root, f), f);
  }
  await symlink('Dockerfile', join(root, 'link-to-df'));
  await link(join(root, 'z'), join(root, 'zz-hardlink'));
  await utimes(join(root, 'z'), 1_700_000_000.5, 1_700_000_000.5);
  // Owned by someone else (as root), or by the caller: not 0:0 either way.
  if (process.getuid?.() === 0) await chown(join(root, 'x.log'), 1234, 5678);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const paths = (o?: WalkOptions) => walkContext(root, o).map((e) => e.stat.path);

describe('walkContext', () => {
  test('depth first, parents first, UTF-8 byte order per directory', () => {
    expect(paths()).toEqual([
      'B',
      'B/f',
      'Dockerfile',
      'a',
      'a/z',
      'a/z/f',
      'a-b', // "a" < "a-b": a directory's contents come before its later siblings
      'link-to-df',
      'node_modules',
      'node_modules/x',
      'node_modules/x/i.js',
      'sub',
      'sub/deep',
      'sub/deep/keep.txt',
      'sub/drop.txt',
      'x.log',
      'z',
      'zz-hardlink',
      'é', // 0xC3 sorts after ASCII
    ]);
  });

  test('Go FileMode bits, nanosecond mtimes, symlink and hardlink names, owner 0:0, a hardlink with its size', () => {
    const byPath = new Map(walkContext(root).map((e) => [e.stat.path, e.stat]));
    const dir = byPath.get('a')!;
    expect((dir.mode & MODE_DIR) >>> 0).toBe(MODE_DIR);
    expect(dir.size).toBe(0n);
    const ln = byPath.get('link-to-df')!;
    expect(ln.mode & MODE_SYMLINK).toBe(MODE_SYMLINK);
    expect(ln.linkname).toBe('Dockerfile');
    expect(ln.size).toBe(10n);
    expect(canRequestData(ln.mode)).toBe(false);
    expect(byPath.get('z')!.modTime).toBe(1_700_000_000_500_000_000n);
    const hl = byPath.get('zz-hardlink')!;
    expect(hl.linkname).toBe('z');
    // As fsutil: the size of the file, not 0 (the daemon would take the link as changed).
    expect(hl.size).toBe(byPath.get('z')!.size);
    expect(hl.size).toBeGreaterThan(0n);
    expect(canRequestData(hl.mode)).toBe(true);
    // As BuildKit's client: every entry 0:0, whoever owns it here.
    for (const st of byPath.values()) expect([st.path, st.uid, st.gid]).toEqual([st.path, 0, 0]);
  });

  test('exclude patterns skip whole directories; exceptions list parents lazily', () => {
    expect(
      paths({
        excludePatterns: [
          'node_modules',
          '*.log',
          'sub',
          '!sub/deep/keep.txt',
          'a*',
          'B',
          'z*',
          'é',
        ],
      }),
    ).toEqual(['Dockerfile', 'link-to-df', 'sub', 'sub/deep', 'sub/deep/keep.txt']);
  });

  test('followpaths send only those paths (and resolve symlinks to their targets)', () => {
    expect(paths({ followPaths: ['link-to-df', 'missing'] })).toEqual(['Dockerfile', 'link-to-df']);
    expect(paths({ followPaths: ['a/z/f'] })).toEqual(['a', 'a/z', 'a/z/f']);
    expect(resolveFollowPaths(root, ['.'])).toBeUndefined();
  });

  test('include patterns', () => {
    expect(paths({ includePatterns: ['sub/deep'] })).toEqual([
      'sub',
      'sub/deep',
      'sub/deep/keep.txt',
    ]);
    expect(paths({ includePatterns: ['**/f'] })).toEqual(['B', 'B/f', 'a', 'a/z', 'a/z/f']);
  });
});

describe('ContextWalker', () => {
  test('names past U+FFFF sort after U+E000..U+FFFF, as their UTF-8 bytes do (not as UTF-16)', async () => {
    const d = await mkdtemp(join(tmpdir(), 'ktl-walk-order-'));
    try {
      for (const n of ['\u{1F600}', '\uFFFD', 'a', '\uE000', 'Z']) await writeFile(join(d, n), n);
      expect(walkContext(d).map((e) => e.stat.path)).toEqual([
        'Z',
        'a',
        '\uE000',
        '\uFFFD',
        '\u{1F600}',
      ]);
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  test('any batch size gives the same listing, and done only once everything was returned', async () => {
    const d = await mkdtemp(join(tmpdir(), 'ktl-walk-batch-'));
    try {
      // Nested directories whose names interleave with files around them ("x" < "x-1" < "x.1").
      for (const top of ['x', 'x-1', 'y']) {
        for (let i = 0; i < 6; i++) {
          const sub = join(d, top, `s${i}`);
          await mkdir(join(sub, 'inner'), { recursive: true });
          await writeFile(join(sub, 'inner', 'f'), 'f');
          await writeFile(join(sub, `f${i}`), 'f');
        }
      }
      await writeFile(join(d, 'x.1'), 'f');
      const whole = walkContext(d).map((e) => e.stat.path);
      expect(whole).toHaveLength(3 + 3 * 6 * 4 + 1);
      expect(whole.slice(0, 3)).toEqual(['x', 'x/s0', 'x/s0/f0']);
      expect(whole.indexOf('x-1')).toBeGreaterThan(whole.indexOf('x/s5/inner/f'));
      expect(whole.indexOf('x.1')).toBeGreaterThan(whole.indexOf('x-1/s5/inner/f'));
      for (const size of [1, 2, 7, 100]) {
        const w = new ContextWalker(d);
        const got: string[] = [];
        while (!w.done) {
          const batch = w.next(size);
          expect(batch.length).toBeLessThanOrEqual(size);
          got.push(...batch.map((e) => e.stat.path));
        }
        expect(got).toEqual(whole);
        expect(w.next(size)).toEqual([]);
      }
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});

describe('goFileMode', () => {
  test.each([
    [0o100644, 0o644],
    [0o040755, (MODE_DIR | 0o755) >>> 0],
    [0o120777, MODE_SYMLINK | 0o777],
    [0o104755, (1 << 23) | 0o755], // setuid
    [0o041777, (MODE_DIR | (1 << 20) | 0o777) >>> 0], // sticky dir
    [0o020666, (1 << 26) | (1 << 21) | 0o666], // char device
  ])('st_mode %o', (st, want) => expect(goFileMode(st)).toBe(want));
});
