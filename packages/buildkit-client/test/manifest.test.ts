/**
 * The comparison helper itself (manifest.ts): a tree and GNU tar's PAX archive of it give the
 * same manifest, and the diff names each field that differs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { diffManifests, readTar, tarManifest, treeManifest, xattrsReadable } from './manifest';

const dir = mkdtempSync(join(tmpdir(), 'ktl-manifest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tree = join(dir, 'tree');
mkdirSync(join(tree, 'sub', 'empty'), { recursive: true });
writeFileSync(join(tree, 'a'), 'a'.repeat(1000));
linkSync(join(tree, 'a'), join(tree, 'sub', 'a2'));
linkSync(join(tree, 'a'), join(tree, 'b'));
writeFileSync(join(tree, 'x'), 'x');
chmodSync(join(tree, 'x'), 0o4711);
symlinkSync('../a', join(tree, 'sub', 'up'));
execFileSync('mkfifo', [join(tree, 'pipe')]);
writeFileSync(join(tree, `${'long-name-'.repeat(12)}.txt`), 'long');
execFileSync('touch', ['-h', '-d', '@1700000000.123456789', join(tree, 'x')]);
const canSetXattr =
  xattrsReadable &&
  spawnSync('/usr/bin/python3', [
    '-c',
    `import os; os.setxattr(${JSON.stringify(join(tree, 'x'))}, 'user.k', b'v\\x00w')`,
  ]).status === 0;

describe('manifest', () => {
  test("of a tree and of GNU tar's PAX archive of it agree, hardlink groups by first path, ns mtimes, long names", () => {
    const tarFile = join(dir, 't.tar');
    execFileSync('tar', ['--format=pax', '--xattrs', '-C', tree, '-cf', tarFile, '.']);
    const fromTree = treeManifest(tree);
    const fromTar = tarManifest(tarFile);
    expect(diffManifests(fromTree, fromTar, {}, ['tree', 'tar'])).toEqual([]);
    expect(fromTree.get('b')?.hardlinkGroup).toBe('a');
    expect(fromTree.get('sub/a2')?.hardlinkGroup).toBe('a');
    expect(fromTree.get('x')).toMatchObject({ mode: 0o4711, mtimeNs: '1700000000123456789' });
    expect(fromTree.get('pipe')?.type).toBe('fifo');
    expect(fromTree.get('sub/up')).toMatchObject({ type: 'symlink', target: '../a' });
    // GNU tar writes the later links as typeflag 1 members.
    expect(readTar(tarFile).filter((m) => m.typeflag === '1')).toHaveLength(2);
  });

  (canSetXattr ? test : test.skip)(
    `carries user.* xattrs from a tree and from a tar${canSetXattr ? '' : ' [skipped: no /usr/bin/python3 or no user xattrs on this file system]'}`,
    () => {
      const tarFile = join(dir, 'x.tar');
      execFileSync('tar', ['--format=pax', '--xattrs', '-C', tree, '-cf', tarFile, 'x']);
      expect(treeManifest(tree).get('x')?.xattrs).toEqual({ 'user.k': '760077' });
      expect(tarManifest(tarFile).get('x')?.xattrs).toEqual({ 'user.k': '760077' });
    },
  );

  test('the diff names each differing field, and entries on one side only', () => {
    const a = treeManifest(tree);
    const b = new Map(a);
    b.set('x', { ...a.get('x')!, mode: 0o711, uid: 7, sha256: 'f00' });
    b.delete('b');
    b.set('new', { ...a.get('x')! });
    expect(diffManifests(a, b, {}, ['ktl', 'buildx'])).toEqual([
      'b: only in ktl (file)',
      'new: only in buildx (file)',
      'x: mode ktl=04711 buildx=0711',
      'x: uid ktl=0 buildx=7',
      `x: sha256 ktl=${a.get('x')!.sha256} buildx=f00`,
    ]);
    expect(
      diffManifests(a, b, { ignore: ['mode', 'uid', 'sha256'], skip: (p) => p !== 'x' }),
    ).toEqual([]);
  });
});
