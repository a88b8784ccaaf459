/**
 * The build context changed under ktl while it is sent, by whoever controls the repository:
 * a directory of the context swapped for a symbolic link to a directory outside it (here a
 * canary standing in for the registry credentials under /run/ktl/docker). The walker lists
 * only what is really in the context and the file data read is the file listed, at the path
 * listed: the canary's names and bytes are never sent, whatever the timing. A swap the walker
 * notices fails the transfer with "changed while the build context was being sent".
 *
 * Real files, real renames, a real concurrent process; nothing mocked.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { diffCopySender } from '../src/session/filesync';
import { MODE_SYMLINK } from '../src/session/fsstat';
import { ContextWalker, type WalkEntry, walkContext } from '../src/session/walk';
import { receive, sessionPair } from './fakes/fsutil-receiver';

const CANARY = 'CANARY-CREDENTIALS';
const CHANGED = 'changed while the build context was being sent';
// The checks that catch a swapped directory need /proc/self/fd (Linux); elsewhere the walk
// uses paths as it always did.
const onLinux = process.platform === 'linux' ? describe : describe.skip;

const tmp = realpathSync(mkdtempSync(join(tmpdir(), 'ktl-swap-')));
/** Outside every context: what a link swapped into one points at. */
const canary = join(tmp, 'canary');
let n = 0;

beforeAll(() => {
  // Same names as the contexts' files, so a lookup through the link finds something.
  mkdirSync(join(canary, 'd', 'sub'), { recursive: true });
  mkdirSync(join(canary, 'sub'), { recursive: true });
  for (const f of ['secret.txt', 'sub/secret.txt', 'd/secret.txt', 'd/sub/secret.txt'])
    writeFileSync(join(canary, f), CANARY);
  writeFileSync(join(canary, 'canary-only.txt'), CANARY);
  writeFileSync(join(canary, 'd', 'canary-only.txt'), CANARY);
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** A fresh context: `files` (null = directory) under a new directory. */
function context(files: Record<string, string | null>): string {
  const dir = join(tmp, `ctx${n++}`);
  mkdirSync(dir);
  for (const [p, body] of Object.entries(files)) {
    if (body === null) mkdirSync(join(dir, p), { recursive: true });
    else {
      mkdirSync(join(dir, p, '..'), { recursive: true });
      writeFileSync(join(dir, p), body);
    }
  }
  return dir;
}

/** Directory `abs` moved away (kept under tmp) and a link to `target` put in its place. */
function swapForLink(abs: string, target: string): string {
  const away = join(tmp, `away${n++}`);
  renameSync(abs, away);
  symlinkSync(target, abs);
  return away;
}

/** What this process has open under the test's directory (the walker's directories). */
function openUnderTmp(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const at = readlinkSync(`/proc/self/fd/${fd}`);
      if (at.startsWith(tmp)) out.push(at);
    } catch {} // the fd of that readdir itself, closed since
  }
  return out;
}

function expectNoCanary(entries: readonly WalkEntry[]) {
  for (const e of entries) {
    expect(e.stat.path).not.toContain('canary-only');
    expect(e.abs.startsWith(canary)).toBe(false);
  }
}

/** One DiffCopy of `ctx` to the fake daemon: every chunk sent, and how it ended. */
const transferWith = (lookup: 'proc' | 'cwd', ctx: string, beforeRequest: (path: string) => void) =>
  transfer(ctx, beforeRequest, lookup);

async function transfer(
  ctx: string,
  beforeRequest?: (path: string) => void,
  lookup?: 'proc' | 'cwd',
): Promise<{ ok: boolean; error?: string; paths: string[]; chunks: string[] }> {
  const pair = await sessionPair(
    new Map([
      [
        '/moby.filesync.v1.FileSync/DiffCopy',
        diffCopySender(new Map([['context', ctx]]), { lookup }),
      ],
    ]),
    join(tmp, `s${n++}.sock`),
  );
  const paths: string[] = [];
  const chunks: string[] = [];
  try {
    await receive(pair.client, [['dir-name', 'context']], {
      beforeRequest: (st) => {
        paths.push(st.path);
        beforeRequest?.(st.path);
      },
      onData: (_p, c) => chunks.push(c.toString()),
    });
    return { ok: true, paths, chunks };
  } catch (e) {
    return { ok: false, error: (e as Error).message, paths, chunks };
  } finally {
    await pair.close();
  }
}

const startCwd = process.cwd();
// Both ways of looking entries up under the open directory (WalkOptions.lookup).
describe.each(['proc', 'cwd'] as const)('lookup %s', (lookup) => {
  onLinux('a directory swapped for a link while the walker lists', () => {
    test('an ancestor swapped after it was opened: the walk fails, nothing of the canary listed', () => {
      const ctx = context({ 'p/d/secret.txt': 'mine', 'p/d/sub/secret.txt': 'mine' });
      const w = new ContextWalker(ctx, { lookup });
      const first = w.next(1);
      expect(first.map((e) => e.stat.path)).toEqual(['p']); // p is open, its names read
      swapForLink(join(ctx, 'p'), canary); // canary/d/... has the same names
      const got: WalkEntry[] = [...first];
      expect(() => {
        while (!w.done) got.push(...w.next(1));
      }).toThrow(`p/d ${CHANGED} (a directory on the way to it was swapped or moved)`);
      expectNoCanary(got);
      expect(openUnderTmp()).toEqual([]);
      expect(process.cwd()).toBe(startCwd); // the failed walk closed what it held
      expect(() => w.next(1)).toThrow('closed');
    });

    test('a directory swapped after it was opened: its own files are listed, not the link target’s', () => {
      const ctx = context({ 'd/other.txt': 'mine', 'd/secret.txt': 'mine', z: 'z' });
      const w = new ContextWalker(ctx, { lookup });
      const got = w.next(1);
      expect(got.map((e) => e.stat.path)).toEqual(['d']);
      swapForLink(join(ctx, 'd'), join(canary, 'd'));
      while (!w.done) got.push(...w.next(1));
      expect(got.map((e) => e.stat.path)).toEqual(['d', 'd/other.txt', 'd/secret.txt', 'z']);
      expectNoCanary(got);
    });

    test('… and a directory below it is refused: it is not where it was listed any more', () => {
      const ctx = context({ 'd/secret.txt': 'mine', 'd/sub/secret.txt': 'mine' });
      const w = new ContextWalker(ctx, { lookup });
      const got = w.next(1);
      swapForLink(join(ctx, 'd'), join(canary, 'd'));
      expect(() => {
        while (!w.done) got.push(...w.next(1));
      }).toThrow(`d/sub ${CHANGED} (a directory on the way to it was swapped or moved)`);
      expect(got.map((e) => e.stat.path)).toEqual(['d', 'd/secret.txt']);
    });

    test('a directory swapped before the walk reached it: listed as the link it is, not followed', () => {
      const ctx = context({ a: 'a', 'd/secret.txt': 'mine' });
      const w = new ContextWalker(ctx, { lookup });
      const got = w.next(1);
      expect(got.map((e) => e.stat.path)).toEqual(['a']);
      swapForLink(join(ctx, 'd'), join(canary, 'd'));
      while (!w.done) got.push(...w.next(1));
      expect(got.map((e) => e.stat.path)).toEqual(['a', 'd']);
      expect(got[1]!.stat.mode & MODE_SYMLINK).toBe(MODE_SYMLINK);
      expect(got[1]!.stat.linkname).toBe(join(canary, 'd'));
    });

    test('a walk given up halfway and closed leaves no directory open', () => {
      const ctx = context({ 'a/b/c/d/f': 'f', 'a/b/c/d/g': 'g' });
      const w = new ContextWalker(ctx, { lookup });
      expect(w.next(3)).toHaveLength(3);
      expect(openUnderTmp().sort()).toEqual([
        ctx,
        join(ctx, 'a'),
        join(ctx, 'a/b'),
        join(ctx, 'a/b/c'),
      ]);
      w.close();
      expect(openUnderTmp()).toEqual([]);
      expect(process.cwd()).toBe(startCwd);
      walkContext(ctx, { lookup });
      expect(openUnderTmp()).toEqual([]);
      expect(process.cwd()).toBe(startCwd);
    });
  });

  onLinux('a directory on a file’s path swapped between listing and reading', () => {
    test('for a link to a directory holding a file of that name: refused, no canary byte sent', async () => {
      const ctx = context({ 'a-first.txt': 'first', 'd/secret.txt': 'mine' });
      const r = await transferWith(lookup, ctx, (p) => {
        if (p === 'd/secret.txt') swapForLink(join(ctx, 'd'), join(canary, 'd'));
      });
      expect(r.paths).toEqual(['a-first.txt', 'd/secret.txt']); // listed before the swap
      expect(r.ok).toBe(false);
      expect(r.error).toContain(`d/secret.txt ${CHANGED}`);
      expect(r.chunks).toEqual(['first']);
    });

    test('for a link to where the directory went (the same file, another path): refused', async () => {
      const ctx = context({ 'a-first.txt': 'first', 'd/deeper/secret.txt': 'mine' });
      const r = await transferWith(lookup, ctx, (p) => {
        if (p === 'd/deeper/secret.txt') {
          const away = join(tmp, `moved${n++}`);
          renameSync(join(ctx, 'd'), away);
          symlinkSync(away, join(ctx, 'd')); // same inode at the end of the path: only where it is differs
        }
      });
      expect(r).toMatchObject({
        ok: false,
        error: expect.stringContaining(
          `d/deeper/secret.txt ${CHANGED} (a directory on the way to it was swapped or moved)`,
        ),
      });
      expect(r.chunks).toEqual(['first']);
    });
  });

  // A second process flips a context directory between the real one and a link to the canary
  // as fast as it can, while walks and whole transfers run: whatever instant each lookup
  // lands on, the canary is never listed or read, and a walk that notices fails with the
  // "changed" error, not anything else.
  onLinux('a directory flipping between itself and a link to the canary', () => {
    let ctx: string;
    let flipper: ChildProcess | undefined;

    beforeAll(async () => {
      ctx = context({
        'a.txt': 'a',
        'd/secret.txt': 'mine',
        'd/sub/secret.txt': 'mine too',
        'd/x/y/z.txt': 'deep',
        'e.txt': 'e',
      });
      const stage = join(tmp, `stage${n++}`);
      mkdirSync(stage);
      symlinkSync(join(canary, 'd'), join(stage, 'link'));
      const script = `
      const fs = require('node:fs');
      const [d, real, link] = process.argv.slice(1);
      process.stdout.write('ready\\n');
      for (;;) {
        fs.renameSync(d, real); fs.renameSync(link, d);
        fs.renameSync(d, link); fs.renameSync(real, d);
      }`;
      flipper = spawn(
        process.execPath,
        ['-e', script, join(ctx, 'd'), join(stage, 'real'), join(stage, 'link')],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise<void>((resolve, reject) => {
        flipper!.stdout!.once('data', () => resolve());
        flipper!.once('exit', (code) => reject(new Error(`flipper exited ${code}`)));
      });
    });
    afterAll(async () => {
      if (flipper && flipper.exitCode === null) {
        const gone = new Promise((r) => flipper!.once('exit', r));
        flipper.kill('SIGKILL');
        await gone;
      }
    });

    test('walks and data reads during the flips: never a canary name or byte', async () => {
      const seen = { walks: 0, failed: 0, asLink: 0, transfers: 0, transfersFailed: 0 };
      const until = Date.now() + 5000;
      for (let i = 0; i < 200 && Date.now() < until; i++) {
        seen.walks++;
        try {
          const entries = walkContext(ctx, { lookup });
          expectNoCanary(entries);
          const d = entries.find((e) => e.stat.path === 'd');
          if (d && d.stat.linkname !== '') seen.asLink++;
        } catch (e) {
          seen.failed++;
          expect((e as Error).message).toContain(CHANGED);
        }
        if (i % 4 === 0) {
          seen.transfers++;
          const r = await transfer(ctx, undefined, lookup);
          for (const p of r.paths) expect(p).not.toContain('canary-only');
          for (const c of r.chunks) expect(c).not.toContain(CANARY);
          if (!r.ok) {
            seen.transfersFailed++;
            // A file whose directory was away at that instant fails as changed too (it is
            // gone), never sent empty.
            expect(r.error).toMatch(new RegExp(CHANGED));
          }
        }
      }
      expect(flipper!.exitCode).toBeNull(); // it flipped all along
      // The flips were seen: some walks met the link (listed as a link) or failed on a swap.
      expect(seen.asLink + seen.failed + seen.transfersFailed).toBeGreaterThan(0);
      expect(openUnderTmp()).toEqual([]);
      expect(process.cwd()).toBe(startCwd);
    }, 30_000);
  });
});

describe('what stays as it was', () => {
  test('a symlink inside the context is listed as a link, not followed', () => {
    const ctx = context({ 'd/f': 'f' });
    symlinkSync('d', join(ctx, 'to-d'));
    symlinkSync(canary, join(ctx, 'to-canary'));
    const entries = walkContext(ctx);
    expect(entries.map((e) => [e.stat.path, e.stat.linkname])).toEqual([
      ['d', ''],
      ['d/f', ''],
      ['to-canary', canary],
      ['to-d', 'd'],
    ]);
    expect(entries[2]!.stat.mode & MODE_SYMLINK).toBe(MODE_SYMLINK);
  });

  test('a context root given through a symlinked path: listed and sent from the real directory', async () => {
    const ctx = context({ Dockerfile: 'FROM scratch', 'sub/f.txt': 'data' });
    const viaLink = join(tmp, `ctx-link${n++}`);
    symlinkSync(ctx, viaLink);
    const nested = join(tmp, `parent-link${n++}`); // a link further up the path
    symlinkSync(tmp, nested);
    for (const root of [viaLink, join(nested, basename(ctx))]) {
      const entries = walkContext(root);
      expect(entries.map((e) => e.stat.path)).toEqual(['Dockerfile', 'sub', 'sub/f.txt']);
      expect(entries.map((e) => e.abs)).toEqual([
        join(ctx, 'Dockerfile'),
        join(ctx, 'sub'),
        join(ctx, 'sub/f.txt'),
      ]);
      const r = await transfer(root);
      expect(r).toMatchObject({ ok: true, chunks: ['FROM scratch', 'data'] });
    }
  });
});
