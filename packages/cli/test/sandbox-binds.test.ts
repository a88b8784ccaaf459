import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parseBuildOptions, type RawBuildFlags } from '../src/build/options';
import { BindPlanError, inMountOrder, planBuildBinds } from '../src/sandbox/binds';
import { outputPaths, unboundOutputs } from '../src/sandbox/inner-spec';

const dir = mkdtempSync(join(tmpdir(), 'ktl-binds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'ctx'));
writeFileSync(join(dir, 'ctx', 'Dockerfile'), 'FROM scratch\n');
mkdirSync(join(dir, 'named'));
writeFileSync(join(dir, 'Dockerfile.other'), 'FROM scratch\n');
writeFileSync(join(dir, 'token'), 's3cret');
symlinkSync(join(dir, 'ctx'), join(dir, 'ctx-link'));

/** The command line as the CLI parses it, then the bind plan for it. */
function plan(raw: RawBuildFlags, cwd = dir, sandboxBinds: string[] = []) {
  const o = parseBuildOptions(raw, { cwd, env: { TOK: 'x' } });
  return planBuildBinds(o, sandboxBinds, cwd);
}

const agentSock = join(dir, 'agent.sock');
let agentServer: Server;
beforeAll(
  () =>
    new Promise<void>((res) => {
      agentServer = createServer().listen(agentSock, res);
    }),
);
afterAll(() => new Promise<void>((res) => agentServer.close(() => res())));

describe('planBuildBinds', () => {
  test('an ssh agent socket is bound itself, read-write (connecting needs write access)', () => {
    const o = parseBuildOptions(
      { context: 'ctx', ssh: ['default', 'gh=agent.sock'] },
      { cwd: dir, env: { SSH_AUTH_SOCK: agentSock } },
    );
    // One socket under two ids is bound once (nsjail cannot bind a mount point twice).
    expect(planBuildBinds(o, [], dir).binds.slice(1)).toEqual([
      { src: agentSock, dst: agentSock, readonly: false, why: 'ssh agent default, ssh agent gh' },
    ]);
  });

  test('binds are made outside in: a directory before what is bound inside it, else as planned', () => {
    const { binds } = plan({
      context: 'ctx',
      output: ['type=local,dest=out/files', 'type=tar,dest=out/files.tar', 'type=local,dest=z'],
    });
    expect(inMountOrder([...binds]).map((b) => b.dst.replace(dir, '$D'))).toEqual([
      '$D/ctx',
      '$D/out',
      '$D/z',
      '$D/out/files',
    ]);
  });

  test('one bind per guest path: a path named twice is bound once, read-write if any use writes', () => {
    const { binds, ensureDirs } = plan({
      context: 'ctx',
      output: ['type=local,dest=out', 'type=tar,dest=out/img.tar', 'type=tar,dest=out/b.tar'],
      buildContext: ['again=ctx'],
    });
    expect(binds.map((b) => [b.dst.replace(dir, '$D'), b.readonly, b.why])).toEqual([
      ['$D/ctx', true, 'build context, named context again'],
      ['$D/out', false, 'output local, output tar'],
    ]);
    expect(ensureDirs).toEqual([join(dir, 'out')]);
    // Two host paths at one guest path: refused, not one hiding the other.
    expect(() =>
      plan({ context: 'ctx' }, dir, [`${join(dir, 'named')}:${join(dir, 'ctx')}`]),
    ).toThrow(BindPlanError);
    expect(() =>
      plan({ context: 'ctx' }, dir, [`${join(dir, 'named')}:${join(dir, 'ctx')}`]),
    ).toThrow(/build context and --sandbox-bind both want .*\/ctx inside the sandbox/);
  });

  test('binds exactly what the command line names, read-only except outputs', () => {
    const { binds, ensureDirs } = plan({
      context: 'ctx',
      file: 'Dockerfile.other',
      buildContext: ['extra=named', 'img=docker-image://alpine'],
      secret: ['id=t,src=token', 'id=e,env=TOK'],
      output: ['type=local,dest=out', 'type=tar,dest=art/img.tar', 'bare-out'],
      iidfile: 'meta/iid',
      tag: ['x:1'],
      buildArg: ['A=/etc'],
    });
    expect(binds.map((b) => [b.dst.replace(dir, '$D'), b.readonly, b.why])).toEqual([
      ['$D/ctx', true, 'build context'],
      ['$D/Dockerfile.other', true, 'Dockerfile'],
      ['$D/named', true, 'named context extra'],
      ['$D/token', true, 'secret t'],
      ['$D/out', false, 'output local'],
      ['$D/art', false, 'output tar'],
      ['$D/bare-out', false, 'output local'],
    ]);
    // --iidfile is written by the outer ktl: nothing of meta/ enters the jail.
    expect(ensureDirs).toEqual([join(dir, 'out'), join(dir, 'art'), join(dir, 'bare-out')]);
  });

  test('the default Dockerfile comes with the context; -f - binds nothing more', () => {
    expect(plan({ context: 'ctx' }).binds.map((b) => b.why)).toEqual(['build context']);
    expect(plan({ context: 'ctx', file: '-' }).binds.map((b) => b.why)).toEqual(['build context']);
  });

  test('a symlinked context is bound from its real path at the path the user typed', () => {
    const { binds } = plan({ context: join(dir, 'ctx-link') });
    expect(binds[0]).toMatchObject({
      src: join(dir, 'ctx'),
      dst: join(dir, 'ctx-link'),
      readonly: true,
    });
  });

  test('--sandbox-bind HOST:GUEST[:ro]', () => {
    const { binds } = plan({ context: 'ctx' }, dir, [`${dir}/named:/data:ro`, `${dir}/named:/rw`]);
    expect(binds.slice(1).map((b) => [b.dst, b.readonly])).toEqual([
      ['/data', true],
      ['/rw', false],
    ]);
  });

  test.each([
    [['named'], 'expected HOST:GUEST[:ro|rw]'],
    [['named:rel'], 'GUEST must be an absolute path'],
    [['nope:/x'], 'does not exist'],
    [['named:/x:rx'], 'expected HOST:GUEST[:ro|rw]'],
  ])('refuses --sandbox-bind %j', (binds, message) => {
    expect(() => plan({ context: 'ctx' }, dir, binds)).toThrow(BindPlanError);
    expect(() => plan({ context: 'ctx' }, dir, binds)).toThrow(message);
  });
});

describe('symlinks out of the working tree are refused, explicit outside paths are not', () => {
  // The "host" side: a directory outside the working tree, and a working tree (an untrusted
  // repository) whose links point into it.
  const host = mkdtempSync(join(tmpdir(), 'ktl-host-only-'));
  afterAll(() => rmSync(host, { recursive: true, force: true }));
  writeFileSync(join(host, 'marker'), 'host only');
  writeFileSync(join(host, 'Dockerfile'), 'FROM scratch\n');
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

  test.each<[RawBuildFlags, string]>([
    [{ context: '.', buildContext: ['a=assets'] }, 'named context a: REPO/assets is inside'],
    [{ context: '.', buildContext: ['a=./assets/'] }, 'named context a: REPO/assets'],
    [{ context: '.', secret: ['id=t,src=token'] }, 'secret t: REPO/token is inside'],
    [{ context: '.', file: 'Dockerfile.evil' }, 'Dockerfile: REPO/Dockerfile.evil is inside'],
    [{ context: 'ctx-out' }, 'build context: REPO/ctx-out is inside'],
    [{ context: '.', output: ['out-link'] }, 'output local: REPO/out-link is inside'],
    [{ context: '.', output: ['out-link/new/dir'] }, 'REPO/out-link/new/dir is inside'],
    [{ context: '.', output: ['type=tar,dest=out-link/x.tar'] }, 'output tar: REPO/out-link'],
    [{ context: '.', iidfile: 'out-link/iid' }, 'iidfile: REPO/out-link is inside'],
    [{ context: '.', metadataFile: 'out-link/m.json' }, 'metadata-file: REPO/out-link is inside'],
    [{ context: '.', buildContext: ['p=parent'] }, 'named context p: REPO/parent is inside'],
  ])('refuses %j, naming the link and the way out', (raw, message) => {
    let err: unknown;
    try {
      plan(raw, repo);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BindPlanError);
    expect((err as BindPlanError).message).toContain(message.replace('REPO', repo));
    expect((err as BindPlanError).message).toContain('(a symlink)');
    expect((err as BindPlanError).hint).toMatch(/--sandbox-bind \/\S+:\/\S+:(ro|rw)$/);
  });

  test('links that stay inside, and outside paths typed as such, are bound', () => {
    const { binds } = plan(
      {
        context: '.',
        buildContext: [
          'a=assets-inside',
          `h=${host}`,
          // `..` typed out of the tree is an explicit outside path, not a hidden one.
          'up=../repo/real-assets',
        ],
      },
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

describe('local caches: the export directory read-write, the import directory read-only', () => {
  mkdirSync(join(dir, 'cache-in'));

  test('dest is bound rw (and created first), an existing src ro', () => {
    const { binds, ensureDirs } = plan({
      context: 'ctx',
      cacheFrom: ['type=local,src=cache-in'],
      cacheTo: ['type=local,dest=cache-out,mode=max'],
    });
    expect(binds.slice(1).map((b) => [b.dst.replace(dir, '$D'), b.readonly, b.why])).toEqual([
      ['$D/cache-out', false, 'cache export (local)'],
      ['$D/cache-in', true, 'cache import (local)'],
    ]);
    expect(ensureDirs).toEqual([join(dir, 'cache-out')]);
  });

  test('a src that does not exist yet is no cache and is not bound; one that is also dest comes rw once', () => {
    expect(plan({ context: 'ctx', cacheFrom: ['type=local,src=not-yet'] }).binds).toHaveLength(1);
    const { binds } = plan({
      context: 'ctx',
      cacheFrom: ['type=local,src=cache-in'],
      cacheTo: ['type=local,dest=cache-in'],
    });
    expect(binds.slice(1).map((b) => [b.dst, b.readonly])).toEqual([
      [join(dir, 'cache-in'), false],
    ]);
  });

  test('a cache directory typed inside the tree that links out of it is refused', () => {
    const host = mkdtempSync(join(tmpdir(), 'ktl-host-cache-'));
    const repo = join(dir, 'cache-repo');
    mkdirSync(repo);
    writeFileSync(join(repo, 'Dockerfile'), 'FROM scratch\n');
    symlinkSync(host, join(repo, 'cache'));
    try {
      for (const [raw, why] of [
        [{ context: '.', cacheFrom: ['type=local,src=cache'] }, 'cache import (local)'],
        [{ context: '.', cacheTo: ['type=local,dest=cache'] }, 'cache export (local)'],
      ] as const) {
        let err: unknown;
        try {
          plan(raw, repo);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(BindPlanError);
        expect((err as BindPlanError).message).toContain(
          `${why}: ${join(repo, 'cache')} is inside the current directory but resolves to ${host}`,
        );
      }
    } finally {
      rmSync(host, { recursive: true, force: true });
    }
  });

  test('the jailed ktl counts a local cache export among what it writes', () => {
    const o = parseBuildOptions(
      { context: 'ctx', cacheTo: ['type=local,dest=cache-out'] },
      { cwd: dir, env: {} },
    );
    expect(outputPaths(o)).toEqual([join(dir, 'cache-out')]);
    expect(unboundOutputs(outputPaths(o), [])).toEqual([join(dir, 'cache-out')]);
  });
});

describe('unboundOutputs (the jailed ktl refuses to write where nothing is bound)', () => {
  test('paths under a writable bind pass; siblings, prefixes and the unset case do not', () => {
    const writable = ['/w/out', '/w/meta'];
    expect(unboundOutputs(['/w/out', '/w/out/a/b', '/w/meta/iid'], writable)).toEqual([]);
    expect(unboundOutputs(['/w/outside', '/w/ou', '/w', '/tmp/x'], writable)).toEqual([
      '/w/outside',
      '/w/ou',
      '/w',
      '/tmp/x',
    ]);
    expect(unboundOutputs(['/w/out'], [])).toEqual(['/w/out']);
  });
});
