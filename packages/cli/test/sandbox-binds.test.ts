import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { BindPlanError, planBuildBinds } from '../src/sandbox/binds';
import { unboundOutputs } from '../src/sandbox/inner-spec';

const dir = mkdtempSync(join(tmpdir(), 'ktl-binds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'ctx'));
mkdirSync(join(dir, 'named'));
writeFileSync(join(dir, 'Dockerfile.other'), 'FROM scratch\n');
writeFileSync(join(dir, 'token'), 's3cret');
symlinkSync(join(dir, 'ctx'), join(dir, 'ctx-link'));

describe('planBuildBinds', () => {
  test('binds exactly what the command line names, read-only except outputs', () => {
    const { binds, ensureDirs } = planBuildBinds(
      [
        'ctx',
        '-f',
        'Dockerfile.other',
        '--build-context',
        'extra=named',
        '--build-context',
        'img=docker-image://alpine',
        '--secret',
        'id=t,src=token',
        '-o',
        'type=local,dest=out',
        '--output=type=tar,dest=art/img.tar',
        '--iidfile',
        'meta/iid',
        '-o',
        'bare-out',
        '-o',
        'type=image,name=x:1',
        '-t',
        'x:1',
        '--build-arg',
        'A=/etc',
      ],
      dir,
    );
    expect(binds.map((b) => [b.dst.replace(dir, '$D'), b.readonly, b.why])).toEqual([
      ['$D/ctx', true, 'build context'],
      ['$D/Dockerfile.other', true, 'Dockerfile'],
      ['$D/named', true, 'named context extra'],
      ['$D/token', true, 'secret t'],
      ['$D/out', false, 'output local'],
      ['$D/art', false, 'output tar'],
      ['$D/meta', false, 'iidfile'],
      ['$D/bare-out', false, 'output local'],
    ]);
    expect(ensureDirs).toEqual([
      join(dir, 'out'),
      join(dir, 'art'),
      join(dir, 'meta'),
      join(dir, 'bare-out'),
    ]);
  });

  test('a symlinked context is bound from its real path at the path the user typed', () => {
    const { binds } = planBuildBinds([join(dir, 'ctx-link')], dir);
    expect(binds[0]).toMatchObject({
      src: join(dir, 'ctx'),
      dst: join(dir, 'ctx-link'),
      readonly: true,
    });
  });

  test('--sandbox-bind HOST:GUEST[:ro]', () => {
    const { binds } = planBuildBinds(
      ['ctx', '--sandbox-bind', `${dir}/named:/data:ro`, `--sandbox-bind=${dir}/named:/rw`],
      dir,
    );
    expect(binds.slice(1).map((b) => [b.dst, b.readonly])).toEqual([
      ['/data', true],
      ['/rw', false],
    ]);
  });

  test.each([
    [['ctx', '--sandbox-bind', 'named'], 'expected HOST:GUEST[:ro|rw]'],
    [['ctx', '--sandbox-bind', 'named:rel'], 'GUEST must be an absolute path'],
    [['ctx', '--sandbox-bind', 'nope:/x'], 'does not exist'],
    [['ctx', '--sandbox-bind', 'named:/x:rx'], 'expected HOST:GUEST[:ro|rw]'],
    [['missing-ctx'], 'build context'],
    [['ctx', '--secret', 'id=a,src=no-such-file'], 'secret a'],
    [['Dockerfile.other'], 'is not a directory'],
  ])('refuses %j', (argv, message) => {
    expect(() => planBuildBinds(argv, dir)).toThrow(BindPlanError);
    expect(() => planBuildBinds(argv, dir)).toThrow(message);
  });
});

describe('symlinks out of the working tree are refused, explicit outside paths are not', () => {
  // The "host" side: a directory outside the working tree, and a working tree (an untrusted
  // repository) whose links point into it.
  const host = mkdtempSync(join(tmpdir(), 'ktl-host-only-'));
  afterAll(() => rmSync(host, { recursive: true, force: true }));
  writeFileSync(join(host, 'marker'), 'host only');
  const repo = join(dir, 'repo');
  mkdirSync(join(repo, 'real-assets'), { recursive: true });
  writeFileSync(join(repo, 'Dockerfile'), 'FROM scratch\n');
  symlinkSync(host, join(repo, 'assets'));
  symlinkSync(join(host, 'marker'), join(repo, 'token'));
  symlinkSync(join(host, 'marker'), join(repo, 'Dockerfile.evil'));
  symlinkSync(host, join(repo, 'out-link'));
  symlinkSync(host, join(repo, 'ctx-out'));
  symlinkSync('real-assets', join(repo, 'assets-inside'));
  symlinkSync('..', join(repo, 'parent'));

  test.each([
    [['.', '--build-context', 'a=assets'], 'named context a: assets is inside the current'],
    [['.', '--build-context', 'a=./assets/'], 'named context a'],
    [['.', '--secret', 'id=t,src=token'], 'secret t: token'],
    [['.', '-f', 'Dockerfile.evil'], 'Dockerfile: Dockerfile.evil'],
    [['ctx-out'], 'build context: ctx-out'],
    [['.', '-o', 'out-link'], 'repo/out-link is inside'],
    [['.', '-o', 'out-link/new/dir'], 'repo/out-link/new/dir is inside'],
    [['.', '-o', 'type=tar,dest=out-link/x.tar'], 'output tar'],
    [['.', '--iidfile', 'out-link/iid'], 'iidfile'],
    [['.', '--build-context', 'p=parent'], 'named context p: parent is inside'],
  ])('refuses %j, naming the link and the way out', (argv, message) => {
    let err: unknown;
    try {
      planBuildBinds(argv, repo);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BindPlanError);
    expect((err as BindPlanError).message).toContain(message);
    expect((err as BindPlanError).message).toContain('(a symlink)');
    expect((err as BindPlanError).hint).toMatch(/--sandbox-bind \/\S+:\/\S+:(ro|rw)$/);
  });

  test('links that stay inside, and outside paths typed as such, are bound', () => {
    const { binds } = planBuildBinds(
      [
        '.',
        '--build-context',
        'a=assets-inside',
        '--build-context',
        `h=${host}`,
        '--build-context',
        // `..` typed out of the tree is an explicit outside path, not a hidden one.
        `up=../repo/real-assets`,
      ],
      repo,
    );
    expect(binds.map((b) => [b.src, b.dst])).toEqual([
      [repo, repo],
      [join(repo, 'real-assets'), join(repo, 'assets-inside')],
      [host, host],
      [join(repo, 'real-assets'), join(repo, 'real-assets')],
    ]);
  });
});

describe('unboundOutputs (the jailed ktl refuses to write where nothing is bound)', () => {
  test('paths under a writable bind pass; siblings, prefixes and the unset case do not', () => {
    const env = ['/w/out', '/w/meta'];
    expect(unboundOutputs(['/w/out', '/w/out/a/b', '/w/meta/iid'], env)).toEqual([]);
    expect(unboundOutputs(['/w/outside', '/w/ou', '/w', '/tmp/x'], env)).toEqual([
      '/w/outside',
      '/w/ou',
      '/w',
      '/tmp/x',
    ]);
    expect(unboundOutputs(['/w/out'], [])).toEqual(['/w/out']);
  });
});
