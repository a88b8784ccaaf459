/**
 * What the daemon receives of a build context, judged against `docker buildx build` on the
 * same engine: the context copied whole into an image (`COPY . /`) and exported as a tar, so
 * every entry is seen as the daemon stored it (name, type, mode, owner, size, content,
 * symlink target, hardlink group, mtime to the second), ktl's and buildx's compared entry by entry, on the
 * host and in the sandbox. Also a second build of the same context, which the daemon applies
 * as a difference to its copy of the first.
 */
import { execFileSync } from 'node:child_process';
import {
  chownSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from '@jest/globals';
import { diffManifests, type Manifest, tarManifest } from '../../buildkit-client/test/manifest';
import { buildx, ktlBuild, modes, ok } from './reference';

const dir = mkdtempSync(join(tmpdir(), 'ktl-fidelity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const isRoot = process.getuid?.() === 0;

/** Sets a file's mtime to the nanosecond (Node's utimes takes seconds as a double). */
const touchNs = (p: string, when: string) => execFileSync('touch', ['-h', '-d', when, p]);

/**
 * A context with what a repository holds: plain and executable files, hardlinks (three names
 * for one inode, one in a subdirectory), symlinks (one dangling), an empty directory, a
 * directory, nanosecond mtimes; as root also files owned by other users.
 */
function makeContext(name: string): string {
  const c = join(dir, name);
  mkdirSync(join(c, 'sub', 'deep'), { recursive: true });
  mkdirSync(join(c, 'empty'));
  mkdirSync(join(c, 'theirs'), { mode: 0o755 });
  writeFileSync(join(c, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  writeFileSync(join(c, 'a.txt'), 'hello\n'.repeat(1000));
  linkSync(join(c, 'a.txt'), join(c, 'b.txt'));
  linkSync(join(c, 'a.txt'), join(c, 'sub', 'c.txt'));
  writeFileSync(join(c, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  writeFileSync(join(c, 'sub', 'deep', 'data.bin'), Buffer.alloc(70_000, 7));
  writeFileSync(join(c, 'theirs', 'p'), 'p\n', { mode: 0o644 });
  symlinkSync('a.txt', join(c, 'link'));
  symlinkSync('../nowhere', join(c, 'sub', 'dangling'));
  if (isRoot) {
    writeFileSync(join(c, 'owned'), 'owned by 1234:5678\n');
    chownSync(join(c, 'owned'), 1234, 5678);
    chownSync(join(c, 'theirs'), 4321, 4321);
    chownSync(join(c, 'theirs', 'p'), 4321, 4321);
  }
  for (const p of ['a.txt', 'run.sh', 'sub/deep/data.bin', 'link', 'sub', 'empty', 'Dockerfile'])
    touchNs(join(c, p), '@1700000000.123456789');
  return c;
}

/** The image's tree as the daemon built it: `COPY . /` onto scratch, exported as a tar. */
const tarOf = (run: (out: string) => void, out: string): Manifest => {
  run(out);
  return tarManifest(out);
};

const names = (m: Manifest) => [...m.keys()];

/**
 * A directory's mtime in the daemon's copy is when its receiver last wrote into it (and the
 * tar exporter keeps whole seconds only): compared for everything else.
 */
const cmp = {
  ignoreFor: (_p: string, a: { type: string }) => (a.type === 'dir' ? ['mtimeNs' as const] : []),
};

describe.each(modes)('the context ktl sends $label', (mode) => {
  const tag = mode.sandboxed ? 'sandbox' : 'host';

  mode.gate.test(
    `is the context buildx sends, entry by entry: modes, owners (0:0), sizes, content, links, hardlink groups, mtimes; also on a second build of the same context (no .tmp. entry)${mode.gate.why}`,
    () => {
      const ctx = makeContext(`ctx-${tag}`);
      const ktlTar = (n: number) =>
        tarOf(
          (out) =>
            ok(ktlBuild([ctx, '--no-cache', '-o', `type=tar,dest=${out}`], mode), 'ktl build'),
          join(dir, `ktl-${tag}-${n}.tar`),
        );
      const buildxTar = (n: number) =>
        tarOf(
          (out) => ok(buildx([ctx, '--no-cache', '-o', `type=tar,dest=${out}`]), 'buildx build'),
          join(dir, `buildx-${tag}-${n}.tar`),
        );
      const ours1 = ktlTar(1);
      const ours2 = ktlTar(2);
      const theirs1 = buildxTar(1);
      const theirs2 = buildxTar(2);
      expect(names(ours2).filter((p) => p.includes('.tmp.'))).toEqual([]);
      expect(diffManifests(ours1, theirs1, cmp, ['ktl', 'buildx'])).toEqual([]);
      expect(diffManifests(ours2, theirs2, cmp, ['ktl', 'buildx'])).toEqual([]);
      expect(diffManifests(ours2, ours1, cmp, ['second', 'first'])).toEqual([]);
      // What was compared: the hardlinks are one group, the owners were reset.
      expect(ours1.get('sub/c.txt')?.hardlinkGroup).toBe('a.txt');
      expect(ours1.get('b.txt')?.hardlinkGroup).toBe('a.txt');
      if (isRoot) expect(ours1.get('owned')).toMatchObject({ uid: 0, gid: 0 });
      expect(ours1.get('a.txt')?.mtimeNs).toBe('1700000000000000000');
    },
  );
});
