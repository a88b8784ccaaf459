/**
 * The context sender against a fake of the daemon's fsutil receiver (its validation rules),
 * on trees that have broken naive senders: byte order vs. locale order, `a-b` vs `a/b`,
 * hardlinks, filtered directories listed lazily, long ignore files.
 */
import { spawnSync } from 'node:child_process';
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { diffCopySender } from '../src/session/filesync';
import { comparePath, FsutilValidator, receive, sessionPair } from './fakes/fsutil-receiver';

const root = mkdtempSync(join(tmpdir(), 'ktl-fsr-'));
const ctx = join(root, 'ctx');
let pair: Awaited<ReturnType<typeof sessionPair>>;

function tree(files: Record<string, string | null>) {
  for (const [p, body] of Object.entries(files)) {
    const abs = join(ctx, p);
    if (body === null) mkdirSync(abs, { recursive: true });
    else {
      mkdirSync(join(abs, '..'), { recursive: true });
      writeFileSync(abs, body);
    }
  }
}

beforeAll(async () => {
  tree({
    B: 'upper',
    a: null,
    'a/b': 'in a',
    'a-b': 'dash',
    'a.b': 'dot',
    'a0/x': 'digit',
    é: 'accent',
    z: 'zed',
    'empty/': null,
    'deep/1/2/3/4/5/6/7/8/leaf': 'deep',
    'ign/drop.txt': 'no',
    'ign/keep.txt': 'yes',
    'ign/sub/keep.txt': 'yes too',
    'x.log': 'no',
    'big.bin': 'q'.repeat(200_000),
  });
  linkSync(join(ctx, 'z'), join(ctx, 'z-hardlink'));
  symlinkSync('a/b', join(ctx, 'link-to-ab'));
  symlinkSync('/nonexistent', join(ctx, 'dangling'));
  pair = await sessionPair(
    new Map([['/moby.filesync.v1.FileSync/DiffCopy', diffCopySender(new Map([['context', ctx]]))]]),
    join(root, 's.sock'),
  );
});
afterAll(async () => {
  await pair.close();
  rmSync(root, { recursive: true, force: true });
});

describe('fsutil ordering rules (the fake itself)', () => {
  test('ComparePath puts "/" before every other byte', () => {
    expect(comparePath('a/b', 'a-b')).toBeLessThan(0);
    expect(comparePath('B', 'a')).toBeLessThan(0);
    expect(comparePath('a', 'a/b')).toBeLessThan(0);
  });
  test('the validator refuses what the daemon refuses', () => {
    const dir = (path: string) => ({ path, mode: 0x80000000 | 0o755 }) as never;
    const file = (path: string, linkname = '') => ({ path, mode: 0o644, linkname }) as never;
    const v = () => new FsutilValidator();
    expect(() => {
      const x = v();
      x.check(file('a'));
      x.check(file('B'));
    }).toThrow('changes out of order: "B" "a"');
    expect(() => v().check(file('a/b'))).toThrow('changes out of order');
    expect(() => v().check(file('./a'))).toThrow('unclean path');
    expect(() => v().check(file('x', 'nope'))).toThrow('invalid hardlink');
    const ok = v();
    for (const s of [
      dir('a'),
      file('a/b'),
      file('a-b'),
      dir('c'),
      dir('c/d'),
      file('c/d/e'),
      file('c/f'),
    ]) {
      ok.check(s);
    }
  });
});

describe('diffCopySender through the fake receiver', () => {
  test('the whole tree: accepted, contents intact, hardlink and symlinks as links', async () => {
    const r = await receive(pair.client, [['dir-name', 'context']]);
    const paths = r.stats.map((s) => s.path);
    expect(paths.indexOf('a/b')).toBeLessThan(paths.indexOf('a-b'));
    expect(paths.slice(0, 2)).toEqual(['B', 'a']);
    expect(paths).toContain('empty');
    expect(r.files.get('big.bin')?.length).toBe(200_000);
    expect(r.files.get('deep/1/2/3/4/5/6/7/8/leaf')?.toString()).toBe('deep');
    const hl = r.stats.find((s) => s.path === 'z-hardlink')!;
    expect(hl.linkname).toBe('z');
    expect(r.files.has('z-hardlink')).toBe(false);
    expect(r.stats.find((s) => s.path === 'dangling')?.linkname).toBe('/nonexistent');
  });

  test('exclusions with exceptions: an excluded directory is listed only for what it keeps', async () => {
    const r = await receive(pair.client, [
      ['dir-name', 'context'],
      ['exclude-patterns', 'ign'],
      ['exclude-patterns', '!ign/keep.txt'],
      ['exclude-patterns', '!ign/sub/keep.txt'],
      ['exclude-patterns', '*.log'],
    ]);
    const paths = r.stats.map((s) => s.path);
    expect(paths.filter((p) => p.startsWith('ign'))).toEqual([
      'ign',
      'ign/keep.txt',
      'ign/sub',
      'ign/sub/keep.txt',
    ]);
    expect(paths).not.toContain('x.log');
  });

  test('followpaths: only the named files and the directories leading to them', async () => {
    const r = await receive(pair.client, [
      ['dir-name', 'context'],
      ['followpaths', 'a/b'],
      ['followpaths', 'deep/1/2/3/4/5/6/7/8/leaf'],
    ]);
    expect(r.stats.map((s) => s.path)).toEqual([
      'a',
      'a/b',
      'deep',
      'deep/1',
      'deep/1/2',
      'deep/1/2/3',
      'deep/1/2/3/4',
      'deep/1/2/3/4/5',
      'deep/1/2/3/4/5/6',
      'deep/1/2/3/4/5/6/7',
      'deep/1/2/3/4/5/6/7/8',
      'deep/1/2/3/4/5/6/7/8/leaf',
    ]);
  });

  test('3000 ignore patterns, one header each, all applied', async () => {
    const patterns: Array<[string, string]> = Array.from({ length: 2998 }, (_, i) => [
      'exclude-patterns',
      `generated-${i}/**/*.tmp`,
    ]);
    patterns.push(['exclude-patterns', 'big.bin'], ['exclude-patterns', 'deep']);
    const r = await receive(pair.client, [['dir-name', 'context'], ...patterns]);
    const paths = r.stats.map((s) => s.path);
    expect(paths).not.toContain('big.bin');
    expect(paths.some((p) => p.startsWith('deep'))).toBe(false);
    expect(paths).toContain('z');
  });

  test('an unknown directory name is NOT_FOUND', async () => {
    await expect(receive(pair.client, [['dir-name', 'nope']])).rejects.toThrow(
      'grpc-status 5: no access allowed to dir "nope"',
    );
  });
});

// Between listing a file and reading it for the daemon, the context can change under ktl. The
// bytes sent must be the listed file's: never a link's target outside the context, never a
// FIFO (which would hang the transfer), never another file put in its place.
describe('a context swapped between listing and reading', () => {
  const secret = join(root, 'secret.txt');

  async function race(swap: (abs: string) => void) {
    const dir = mkdtempSync(join(root, 'swap-'));
    const victim = join(dir, 'victim.txt');
    writeFileSync(join(dir, 'a-first.txt'), 'first');
    writeFileSync(victim, 'listed bytes');
    writeFileSync(secret, 'SECRET OUTSIDE THE CONTEXT');
    const p = await sessionPair(
      new Map([
        ['/moby.filesync.v1.FileSync/DiffCopy', diffCopySender(new Map([['context', dir]]))],
      ]),
      join(dir, '..', `${dir.split('/').pop()}.sock`),
    );
    const received: string[] = [];
    try {
      return await receive(p.client, [['dir-name', 'context']], {
        beforeRequest: (st) => {
          if (st.path === 'victim.txt') swap(victim);
        },
        onData: (_path, chunk) => received.push(chunk.toString()),
      }).then(
        () => ({ ok: true as const, received }),
        (e: Error) => ({ ok: false as const, error: e.message, received }),
      );
    } finally {
      await p.close();
    }
  }

  test('a file replaced by a symlink to a file outside the context: refused, nothing of it sent', async () => {
    const r = await race((abs) => {
      rmSync(abs);
      symlinkSync(secret, abs);
    });
    expect(r.ok).toBe(false);
    expect(r).toMatchObject({
      error: expect.stringContaining(
        'victim.txt changed while the build context was being sent (it is a symbolic link now)',
      ),
    });
    expect(r.received).toEqual(['first']); // the file listed before it, nothing else
  });

  test('a file replaced by a FIFO: refused at once, no hang', async () => {
    const r = await race((abs) => {
      rmSync(abs);
      expect(spawnSync('mkfifo', [abs]).status).toBe(0);
    });
    expect(r).toMatchObject({
      ok: false,
      error: expect.stringContaining(
        'victim.txt changed while the build context was being sent (it is not a file now)',
      ),
    });
  }, 10_000);

  test('a file renamed over by another one (hardlinked secret): refused', async () => {
    const r = await race((abs) => {
      const tmp = `${abs}.new`;
      linkSync(secret, tmp);
      renameSync(tmp, abs);
    });
    expect(r).toMatchObject({
      ok: false,
      error: expect.stringContaining('(another file is there now)'),
    });
    expect(r.received).toEqual(['first']);
  });

  test('the same file rewritten in place (same inode): sent, cut at the listed size', async () => {
    const r = await race((abs) => writeFileSync(abs, 'LISTED BYTES and more written since'));
    expect(r).toEqual({ ok: true, received: ['first', 'LISTED BYTES'] });
  });
});
