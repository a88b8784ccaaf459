import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type BuildFlags, optionsFromFlags } from '../src/build/from-flags';
import { parseBuildOptions, type RawBuildFlags } from '../src/build/options';
import { BindPlanError, closeBindPlan, inMountOrder, planBuildBinds } from '../src/sandbox/binds';
import { readExportRoots, recordExportRoots } from '../src/sandbox/export-record';
import { outputPaths, unboundOutputs } from '../src/sandbox/inner-spec';

const dir = mkdtempSync(join(tmpdir(), 'ktl-binds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'ctx'));
writeFileSync(join(dir, 'ctx', 'Dockerfile'), 'FROM scratch\n');
mkdirSync(join(dir, 'named'));
writeFileSync(join(dir, 'Dockerfile.other'), 'FROM scratch\n');
writeFileSync(join(dir, 'token'), 's3cret');
symlinkSync(join(dir, 'ctx'), join(dir, 'ctx-link'));

/**
 * The command line as the CLI parses it, then the bind plan for it (its descriptors closed):
 * the binds as plain data, and the output directories still to be made.
 */
function plan(raw: RawBuildFlags, cwd = dir, sandboxBinds: string[] = []) {
  const o = parseBuildOptions(raw, { cwd, env: { TOK: 'x' } });
  const p = planBuildBinds(o, sandboxBinds, cwd);
  closeBindPlan(p);
  return {
    binds: p.binds.map(({ src, dst, readonly, why }) => ({ src, dst, readonly, why })),
    ensureDirs: p.binds.filter((b) => b.pin.missing.length > 0).map((b) => b.dst),
    outerDirs: [...p.outerDirs.keys()],
    masks: p.masks,
    fileOutputs: p.fileOutputs.map(({ index, dest }) => ({ index, dest })),
  };
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
    const p = planBuildBinds(o, [], dir);
    closeBindPlan(p);
    expect(
      p.binds.slice(1).map(({ src, dst, readonly, why }) => ({ src, dst, readonly, why })),
    ).toEqual([
      { src: agentSock, dst: agentSock, readonly: false, why: 'ssh agent default, ssh agent gh' },
    ]);
  });

  test('binds are made outside in: a directory before what is bound inside it, else as planned', () => {
    const { binds } = plan({
      context: 'ctx',
      output: ['type=local,dest=out/files', 'type=local,dest=out', 'type=local,dest=z'],
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
      output: ['type=local,dest=out', 'type=local,dest=out'],
      buildContext: ['again=ctx'],
    });
    expect(binds.map((b) => [b.dst.replace(dir, '$D'), b.readonly, b.why])).toEqual([
      ['$D/ctx', true, 'build context, named context again'],
      ['$D/out', false, 'output local'],
    ]);
    expect(ensureDirs).toEqual([join(dir, 'out')]);
    // Two host paths at one guest path: refused, not one hiding the other.
    const twice = [`${join(dir, 'named')}:/x`, `${join(dir, 'ctx')}:/x`];
    expect(() => plan({ context: 'ctx' }, dir, twice)).toThrow(BindPlanError);
    expect(() => plan({ context: 'ctx' }, dir, twice)).toThrow(
      /--sandbox-bind and --sandbox-bind both want \/x inside the sandbox/,
    );
  });

  test('binds exactly what the command line names, read-only except outputs', () => {
    const { binds, ensureDirs, outerDirs, fileOutputs } = plan({
      context: 'ctx',
      file: 'Dockerfile.other',
      buildContext: ['extra=named', 'img=docker-image://alpine'],
      secret: ['id=t,src=token', 'id=e,env=TOK'],
      output: ['type=local,dest=out', 'type=tar,dest=art/img.tar', 'bare-out'],
      iidfile: 'meta/iid',
      tag: ['x:1'],
      load: true, // an image, for --iidfile
      buildArg: ['A=/etc'],
    });
    expect(binds.map((b) => [b.dst.replace(dir, '$D'), b.readonly, b.why])).toEqual([
      ['$D/ctx', true, 'build context'],
      ['$D/Dockerfile.other', true, 'Dockerfile'],
      ['$D/named', true, 'named context extra'],
      ['$D/token', true, 'secret t'],
      ['$D/out', false, 'output local'],
      ['$D/bare-out', false, 'output local'],
    ]);
    // --iidfile is written by the outer ktl, and a tar is moved into place by it: nothing of
    // meta/ or art/ enters the jail; their directories are pinned for the outer ktl instead.
    expect(ensureDirs).toEqual([join(dir, 'out'), join(dir, 'bare-out')]);
    expect(outerDirs).toEqual([join(dir, 'meta')]);
    expect(fileOutputs).toEqual([{ index: 1, dest: join(dir, 'art', 'img.tar') }]);
  });

  test('a tar beside the context leaves the context read-only inside', () => {
    const { binds, fileOutputs } = plan({ context: 'ctx', output: ['type=tar,dest=ctx/img.tar'] });
    expect(binds.map((b) => [b.dst, b.readonly])).toEqual([[join(dir, 'ctx'), true]]);
    expect(fileOutputs).toEqual([{ index: 0, dest: join(dir, 'ctx', 'img.tar') }]);
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

describe('a link in the repository may only lead inside it, from any working directory', () => {
  // The "host" side: a directory outside the repository, and a repository (untrusted, a git
  // work tree) whose links point into it.
  const host = mkdtempSync(join(tmpdir(), 'ktl-host-only-'));
  afterAll(() => rmSync(host, { recursive: true, force: true }));
  writeFileSync(join(host, 'marker'), 'host only');
  writeFileSync(join(host, 'Dockerfile'), 'FROM scratch\n');
  const repo = join(dir, 'repo');
  mkdirSync(join(repo, '.git'), { recursive: true });
  mkdirSync(join(repo, 'real-assets'), { recursive: true });
  mkdirSync(join(repo, 'app'), { recursive: true });
  writeFileSync(join(repo, 'Dockerfile'), 'FROM scratch\n');
  writeFileSync(join(repo, 'app', 'Dockerfile'), 'FROM scratch\n');
  symlinkSync(host, join(repo, 'assets'));
  symlinkSync(join(host, 'marker'), join(repo, 'token'));
  symlinkSync(join(host, 'marker'), join(repo, 'Dockerfile.evil'));
  symlinkSync(host, join(repo, 'out-link'));
  symlinkSync(host, join(repo, 'ctx-out'));
  symlinkSync('real-assets', join(repo, 'assets-inside'));
  symlinkSync('..', join(repo, 'parent'));
  // Relative, through `..`, and a chain of two links whose second leaves.
  symlinkSync('../../..', join(repo, 'real-assets', 'up3'));
  symlinkSync('hop2', join(repo, 'hop1'));
  symlinkSync(host, join(repo, 'hop2'));

  const cases: [RawBuildFlags, string, string][] = [
    [{ context: '.', buildContext: ['a=assets'] }, 'named context a', 'assets'],
    [{ context: '.', buildContext: ['a=./assets/'] }, 'named context a', 'assets'],
    [{ context: 'app', buildContext: ['a=assets'] }, 'named context a', 'assets'],
    [{ context: '.', secret: ['id=t,src=token'] }, 'secret t', 'token'],
    [{ context: 'app', file: 'Dockerfile.evil' }, 'Dockerfile', 'Dockerfile.evil'],
    [{ context: 'ctx-out' }, 'build context', 'ctx-out'],
    [{ context: '.', output: ['out-link'] }, 'output local', 'out-link'],
    [{ context: '.', output: ['out-link/new/dir'] }, 'output local', 'out-link'],
    [{ context: '.', output: ['type=tar,dest=out-link/x.tar'] }, 'output tar', 'out-link'],
    [{ context: '.', iidfile: 'out-link/iid' }, 'iidfile', 'out-link'],
    [{ context: '.', metadataFile: 'out-link/m.json' }, 'metadata-file', 'out-link'],
    [{ context: '.', buildContext: ['p=parent'] }, 'named context p', 'parent'],
    [{ context: '.', buildContext: ['u=real-assets/up3'] }, 'named context u', 'real-assets/up3'],
    [{ context: '.', buildContext: ['h=hop1'] }, 'named context h', 'hop2'],
    [{ context: '.', cacheFrom: ['type=local,src=assets'] }, 'cache import (local)', 'assets'],
    [{ context: '.', cacheTo: ['type=local,dest=assets'] }, 'cache export (local)', 'assets'],
  ];
  /** Relative paths resolved against `from`, the same flags with absolute paths elsewhere. */
  const absolute = (raw: RawBuildFlags): RawBuildFlags => {
    const a = (p: string) => (p.startsWith('/') ? p : join(repo, p));
    const kv = (v: string) => v.replace(/=(?!.*=)(.*)$/, (_, p: string) => `=${a(p)}`);
    return {
      ...raw,
      context: a(raw.context ?? '.'),
      ...(raw.file ? { file: a(raw.file) } : {}),
      ...(raw.buildContext ? { buildContext: raw.buildContext.map(kv) } : {}),
      ...(raw.secret
        ? { secret: raw.secret.map((v) => v.replace(/src=(.*)$/, (_, p: string) => `src=${a(p)}`)) }
        : {}),
      ...(raw.output
        ? {
            output: raw.output.map((v) =>
              v.includes('dest=')
                ? v.replace(/dest=(.*)$/, (_, p: string) => `dest=${a(p)}`)
                : a(v),
            ),
          }
        : {}),
      ...(raw.cacheFrom
        ? {
            cacheFrom: raw.cacheFrom.map((v) =>
              v.replace(/src=(.*)$/, (_, p: string) => `src=${a(p)}`),
            ),
          }
        : {}),
      ...(raw.cacheTo
        ? {
            cacheTo: raw.cacheTo.map((v) =>
              v.replace(/dest=(.*)$/, (_, p: string) => `dest=${a(p)}`),
            ),
          }
        : {}),
      ...(raw.iidfile ? { iidfile: a(raw.iidfile) } : {}),
      ...(raw.metadataFile ? { metadataFile: a(raw.metadataFile) } : {}),
    };
  };
  const refusal = (raw: RawBuildFlags, cwd: string) => {
    try {
      plan(raw, cwd);
    } catch (e) {
      return e;
    }
    return undefined;
  };

  test.each(cases)(
    'refuses %j from inside the repository, its parent and elsewhere',
    (raw, why, link) => {
      for (const [cwd, flags] of [
        [repo, raw],
        [dir, absolute(raw)],
        ['/', absolute(raw)],
      ] as const) {
        const err = refusal(flags, cwd);
        expect(err).toBeInstanceOf(BindPlanError);
        const { message, hint } = err as BindPlanError;
        expect(message).toContain(`${why}: `);
        expect(message).toContain(`the symlink ${join(repo, link)} -> `);
        expect(message).toContain(`leads out of the git work tree ${repo}`);
        expect(hint).toMatch(
          /name it directly, or bind it with --sandbox-bind \/\S*:GUEST and name GUEST$/,
        );
      }
      // From the parent, with paths relative to it: the same.
      const rel = JSON.parse(
        JSON.stringify(absolute(raw)).replaceAll(`${dir}/`, ''),
      ) as RawBuildFlags;
      expect((refusal(rel, dir) as Error | undefined)?.message).toContain(
        `the symlink ${join(repo, link)} -> `,
      );
    },
  );

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

  test("links above the repository are the user's layout, followed from any cwd", () => {
    // /…/layout/checkout -> repo: a home on another disk, a checkout reached through a link.
    const layout = mkdtempSync(join(tmpdir(), 'ktl-layout-'));
    try {
      symlinkSync(repo, join(layout, 'checkout'));
      for (const cwd of [layout, '/', repo]) {
        const { binds } = plan(
          {
            context: join(layout, 'checkout', 'app'),
            buildContext: [`r=${join(layout, 'checkout', 'real-assets')}`],
          },
          cwd,
        );
        expect(binds.map((b) => [b.src, b.dst])).toEqual([
          [join(repo, 'app'), join(layout, 'checkout', 'app')],
          [join(repo, 'real-assets'), join(layout, 'checkout', 'real-assets')],
        ]);
      }
    } finally {
      rmSync(layout, { recursive: true, force: true });
    }
  });

  test("outside a git work tree the context and the Dockerfile's directory are the repository", () => {
    const plain = mkdtempSync(join(tmpdir(), 'ktl-plain-'));
    try {
      mkdirSync(join(plain, 'app'));
      writeFileSync(join(plain, 'Dockerfile'), 'FROM scratch\n');
      writeFileSync(join(plain, 'app', 'Dockerfile'), 'FROM scratch\n');
      symlinkSync(host, join(plain, 'app', 'assets'));
      symlinkSync(host, join(plain, 'home'));
      // A named context through a link in the context; the context a link beside -f's file.
      expect(
        refusal(
          { context: join(plain, 'app'), buildContext: [`a=${join(plain, 'app', 'assets')}`] },
          '/',
        ),
      ).toBeInstanceOf(BindPlanError);
      const err = refusal(
        { context: join(plain, 'home'), file: join(plain, 'Dockerfile') },
        '/',
      ) as Error;
      expect(err.message).toContain(
        `the symlink ${join(plain, 'home')} -> ${host} leads out of the build directory ${plain}`,
      );
      // With nothing around it to judge it by, a context named through a link is the user's.
      expect(plan({ context: join(plain, 'home') }, '/').binds[0]).toMatchObject({
        src: host,
        dst: join(plain, 'home'),
      });
    } finally {
      rmSync(plain, { recursive: true, force: true });
    }
  });

  test('an --ssh agent that is an engine socket is refused, under any name', async () => {
    const engineDir = mkdtempSync(join(tmpdir(), 'ktl-engine-'));
    const sock = join(engineDir, 'docker.sock');
    const server = createServer();
    await new Promise<void>((res) => server.listen(sock, res));
    try {
      symlinkSync(sock, join(engineDir, 'agent.sock'));
      for (const agent of [sock, join(engineDir, 'agent.sock')]) {
        const o = parseBuildOptions({ context: 'ctx', ssh: [`x=${agent}`] }, { cwd: dir, env: {} });
        expect(() => planBuildBinds(o, [], dir, { DOCKER_HOST: `unix://${sock}` })).toThrow(
          `ssh agent x: ${agent} is the engine socket ${sock}, not an ssh agent`,
        );
      }
      // A directory that holds it: bound, with the socket masked at its place inside.
      const o = parseBuildOptions(
        { context: 'ctx', buildContext: [`e=${engineDir}`] },
        { cwd: dir, env: {} },
      );
      const p = planBuildBinds(o, [], dir, { DOCKER_HOST: `unix://${sock}` });
      closeBindPlan(p);
      expect(p.masks).toEqual([{ dst: sock, kind: 'file', why: `engine socket ${sock}` }]);
    } finally {
      await new Promise<void>((res) => server.close(() => res()));
      rmSync(engineDir, { recursive: true, force: true });
    }
  });

  test('--sandbox-bind GUEST paths are valid names for the other path flags', () => {
    // Read as the CLI reads its flags (from-flags.ts): existence is checked on the HOST side.
    const flags = (rest: BuildFlags, bind: string) => ({ ...rest, 'sandbox-bind': [bind] });
    const proc = { cwd: dir, env: {}, stderrIsTTY: false };
    const o = optionsFromFlags(
      'ctx',
      flags(
        {
          secret: ['id=t,src=/guest/token'],
          'build-context': ['n=/guest/named'],
          output: ['type=local,dest=/guest/named/out'],
        },
        `${dir}:/guest:rw`,
      ),
      proc,
    );
    const p = planBuildBinds(o, [`${dir}:/guest:rw`], dir);
    closeBindPlan(p);
    // Nothing more is bound for them: the --sandbox-bind covers them.
    expect(p.binds.map((b) => [b.dst, b.why])).toEqual([
      [join(dir, 'ctx'), 'build context'],
      ['/guest', '--sandbox-bind'],
    ]);
    const ro = optionsFromFlags(
      'ctx',
      flags({ output: ['type=local,dest=/guest/out'] }, `${dir}:/guest:ro`),
      proc,
    );
    expect(() => planBuildBinds(ro, [`${dir}:/guest:ro`], dir)).toThrow(
      'output local: /guest/out is under --sandbox-bind',
    );
  });

  test("a link in a directory an earlier build exported to is judged as that build's", () => {
    const state = mkdtempSync(join(tmpdir(), 'ktl-state-'));
    const out = mkdtempSync(join(tmpdir(), 'ktl-exported-'));
    try {
      // What the earlier build left: out/meta -> a host directory of its choice.
      symlinkSync(host, join(out, 'meta'));
      const env = { KTL_STATE_DIR: join(state, 'ktl') };
      const st = statSync(out, { bigint: true });
      const planWith = (raw: RawBuildFlags) => {
        const p = planBuildBinds(parseBuildOptions(raw, { cwd: dir, env: {} }), [], dir, env);
        closeBindPlan(p);
        return p;
      };
      const next = { context: 'ctx', output: [`type=local,dest=${join(out, 'meta')}`] };
      // Not recorded: outside any repository, the link is followed (the user's layout).
      expect(planWith(next).binds[1]).toMatchObject({ src: host, dst: join(out, 'meta') });
      recordExportRoots(env, [{ path: out, dev: st.dev, ino: st.ino }]);
      expect(readExportRoots(env)).toEqual([{ path: out, dev: st.dev, ino: st.ino }]);
      expect(() => planWith(next)).toThrow(
        `the symlink ${join(out, 'meta')} -> ${host} leads out of the directory an earlier build exported to, ${out},`,
      );
      // A state directory whose parent is missing records nothing, and says nothing.
      const none = { KTL_STATE_DIR: join(state, 'no', 'such', 'ktl') };
      recordExportRoots(none, [{ path: out, dev: st.dev, ino: st.ino }]);
      expect(readExportRoots(none)).toEqual([]);
    } finally {
      rmSync(state, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('--iidfile or --metadata-file inside an output directory is refused up front', () => {
    // By how it is typed, too: o/meta may be a link (left by an earlier build) leading out.
    mkdirSync(join(dir, 'o'), { recursive: true });
    symlinkSync(join(dir, 'named'), join(dir, 'o', 'meta'));
    for (const raw of [
      { context: 'ctx', output: ['type=local,dest=o'], metadataFile: 'o/meta/m.json' },
      { context: 'ctx', output: ['type=local,dest=o'], iidfile: 'o/iid', tag: ['x:1'], load: true },
    ])
      expect(() => plan(raw)).toThrow(/is inside .*\/o, which the build writes/);
    expect(
      plan({
        context: 'ctx',
        output: ['type=local,dest=o'],
        iidfile: 'iid',
        tag: ['x:1'],
        load: true,
      }).outerDirs,
    ).toEqual([dir]);
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
