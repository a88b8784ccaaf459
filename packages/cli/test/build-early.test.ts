import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import type { commandLineKey, readBuildArgv } from '../src/build/argv';
import type { takeEarlyJail } from '../src/sandbox/early-handoff';
import { ktl, ktlBin, readEnvFile, repoRoot } from './helpers';

// The sandbox's early start (src/early.ts): the jail starts before the CLI bundle loads and is
// used only for the command line it was planned from. Real bubblewrap, the built bundles.
const hasBwrap = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).status === 0;
const bwrapTest = hasBwrap ? test : test.skip;
const why = hasBwrap ? '' : ' [skipped: no bubblewrap on this machine; apt-get install bubblewrap]';
const rig = readEnvFile();
const dockerHost = rig.KTL_RIG_DOCKER_HOST;
const ready = hasBwrap && dockerHost !== undefined && existsSync(dockerHost.replace('unix://', ''));
const rigTest = ready ? test : test.skip;
const rigWhy = ready ? '' : why || ' [skipped: the BuildKit rig is not up; run scripts/rig.sh up]';

const dir = mkdtempSync(join(tmpdir(), 'ktl-early-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hello = join(repoRoot, 'testdata', 'build', 'hello');
const env = { DOCKER_HOST: dockerHost ?? '', KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' };

interface EarlyBundle {
  prestart: (argv: string[]) => Promise<void>;
  takeEarlyJail: typeof takeEarlyJail;
  commandLineKey: typeof commandLineKey;
  readBuildArgv: typeof readBuildArgv;
}
/** dist/early.cjs, as bin/run.cjs loads it (through dist/boot.cjs; it runs in Node's own realm,
 * not this test's, so the jail is taken through the bundle's own functions). */
const early = createRequire(import.meta.url)(
  join(repoRoot, 'packages', 'cli', 'dist', 'boot.cjs'),
).load('early').exports as EarlyBundle;
const keyOf = (argv: string[]) => {
  const read = early.readBuildArgv(argv)!;
  return early.commandLineKey(read.args, read.flags);
};

const sandboxDirs = () =>
  new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('ktl-sandbox-')));

/** The jail's processes: bwrap and the jailed ktl, found by the private dir bound into it. */
function jailProcesses(privateDir: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(privateDir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('the early jail', () => {
  bwrapTest(
    `another reading of the command line discards it: jail stopped, private and output dirs gone${why}`,
    async () => {
      const out = join(dir, 'made', 'deeper', 'out');
      // bubblewrap named (its command line names the private dir; nsjail's is in a file).
      const argv = [hello, '-o', `type=local,dest=${out}`, '--sandbox-runtime', 'bwrap'];
      const before = sandboxDirs();
      await early.prestart(argv);
      const made = [...sandboxDirs()].filter((n) => !before.has(n));
      expect(made).toHaveLength(1);
      const privateDir = join(tmpdir(), made[0]!);
      expect(existsSync(out)).toBe(true); // made for its bind
      expect(jailProcesses(privateDir).length).toBeGreaterThan(0);
      const taken = early.takeEarlyJail(keyOf([...argv, '--pull']));
      expect(taken.jail).toBeUndefined();
      await taken.discarded;
      expect(existsSync(privateDir)).toBe(false);
      expect(existsSync(join(dir, 'made'))).toBe(false); // every level it made, and only those
      expect(existsSync(dir)).toBe(true);
      expect(jailProcesses(privateDir)).toEqual([]);
    },
    30_000,
  );

  bwrapTest(
    `the same reading takes it; an output dir that already existed is kept${why}`,
    async () => {
      const out = join(dir, 'kept');
      mkdirSync(out);
      const argv = [hello, '-o', `type=local,dest=${out}`, '-t', 'early:1'];
      await early.prestart(argv);
      const taken = early.takeEarlyJail(keyOf(argv));
      expect(taken.jail).toBeDefined();
      expect(taken.jail!.planned.map((p) => p.why)).toEqual(['build context', 'output local']);
      await taken.jail!.discard();
      expect(await taken.jail!.ended).toEqual({ kind: 'stopped' });
      expect(existsSync(out)).toBe(true);
      expect(existsSync(taken.jail!.dir)).toBe(false);
    },
    30_000,
  );

  bwrapTest(
    `is not started for a command line the CLI refuses${why}`,
    async () => {
      const before = sandboxDirs();
      // A bad bind (refused by the bind plan), a missing context, bad option values.
      for (const argv of [
        [hello, '--sandbox-bind', 'nope', '-o', `type=local,dest=${join(dir, 'nope')}`],
        [join(dir, 'missing')],
        [hello, '--platform', 'not/a/plat/form'],
        [hello, '--network', 'host', '--hermetic'],
      ]) {
        await early.prestart(argv);
        expect(early.takeEarlyJail(undefined)).toEqual({});
      }
      expect([...sandboxDirs()].filter((n) => !before.has(n))).toEqual([]);
      expect(existsSync(join(dir, 'nope'))).toBe(false);
    },
    30_000,
  );
});

describe('ktl build with the early jail', () => {
  rigTest(
    `builds in the jail started early (KTL_TIMING shows it), and without it${rigWhy}`,
    () => {
      for (const prestart of ['', '0']) {
        const out = join(dir, `built-${prestart || 'early'}`);
        const r = ktl(['build', hello, '-o', `type=local,dest=${out}`, '--progress', 'plain'], {
          env: { ...env, KTL_TIMING: '1', KTL_SANDBOX_PRESTART: prestart },
        });
        expect([r.code, r.stderr.includes('outer: jail started early')]).toEqual([
          0,
          prestart === '',
        ]);
        expect(r.stderr).toMatch(/^Running ktl build inside the sandbox/m);
        expect(readFileSync(join(out, 'built.txt'), 'utf8')).toContain(
          'hello from the ktl sandbox demo',
        );
      }
    },
    120_000,
  );

  rigTest(
    `a build that fails before exporting leaves no output dir behind (made for the bind, still empty)${rigWhy}`,
    () => {
      const out = join(dir, 'never', 'out');
      const before = sandboxDirs();
      const r = ktl(
        [
          'build',
          hello,
          '-o',
          `type=local,dest=${out}`,
          '--builder',
          'unix:///nonexistent/buildkitd.sock',
        ],
        {
          env,
        },
      );
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/nonexistent\/buildkitd\.sock/);
      expect(existsSync(join(dir, 'never'))).toBe(false);
      expect([...sandboxDirs()].filter((n) => !before.has(n))).toEqual([]);
    },
    60_000,
  );

  rigTest(
    `a built jail is stopped at once, its outputs whole; nothing of it left running${rigWhy}`,
    async () => {
      // The jail's processes, found by a cache dir of their own: bwrap names it on its command
      // line, the jailed ktl has it in its environment.
      const holding = (marker: string) =>
        readdirSync('/proc')
          .filter((p) => /^\d+$/.test(p))
          .filter((p) => {
            try {
              return ['cmdline', 'environ'].some((f) =>
                readFileSync(`/proc/${p}/${f}`, 'utf8').includes(marker),
              );
            } catch {
              return false;
            }
          });
      const tar = join(dir, 'stop-test.tar');
      const local = join(dir, 'stop-test-dir');
      for (const [name, outputs] of [
        ['none', ['-o', 'type=cacheonly']],
        ['tar and local', ['-o', `type=tar,dest=${tar}`, '-o', `type=local,dest=${local}`]],
      ] as const) {
        const cache = join(dir, `cache-${name.replace(/ /g, '-')}`);
        const r = ktl(['build', hello, ...outputs], {
          env: { ...env, KTL_CACHE_DIR: cache, KTL_TIMING: '1' },
        });
        expect([name, r.code, r.stderr.includes('outer: jail stopped once built')]).toEqual([
          name,
          0,
          true,
        ]);
        for (let i = 0; i < 20 && holding(cache).length > 0; i++)
          await new Promise((res) => setTimeout(res, 50));
        expect(holding(cache)).toEqual([]);
      }
      // Written whole before the build returned: the tar under its name (no partial left), the
      // local export's files.
      const listed = spawnSync('tar', ['-tf', tar], { encoding: 'utf8' });
      expect(listed.status).toBe(0);
      expect(listed.stdout.split('\n')).toContain('built.txt');
      expect(readdirSync(dir).filter((n) => n.includes('ktl-partial'))).toEqual([]);
      expect(readFileSync(join(local, 'built.txt'), 'utf8')).toContain(
        'hello from the ktl sandbox demo',
      );
    },
    120_000,
  );

  rigTest(
    `Ctrl-C while ktl is starting: exit 130 or killed, nothing left running or on disk${rigWhy}`,
    async () => {
      const before = sandboxDirs();
      for (const delay of [60, 150, 250, 400]) {
        const out = join(dir, `int-${delay}`, 'out');
        const child = spawn(ktlBin, ['build', hello, '-o', `type=local,dest=${out}`], {
          env: { ...process.env, ...env },
          stdio: 'ignore',
        });
        await new Promise((r) => setTimeout(r, delay));
        child.kill('SIGINT');
        const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
          child.on('exit', (c, s) => r([c, s])),
        );
        // Before ktl installs its handler the signal kills it; after, it exits 130; a build that
        // already finished exits 0.
        expect([
          [130, null],
          [null, 'SIGINT'],
          [0, null],
        ]).toContainEqual([code, signal]);
        const made = [...sandboxDirs()].filter((n) => !before.has(n));
        // A jail the killed process left: its pid 1 dies with bwrap, bwrap with ktl.
        for (const d of made) {
          for (let i = 0; i < 50 && jailProcesses(join(tmpdir(), d)).length > 0; i++)
            await new Promise((r) => setTimeout(r, 100));
          expect(jailProcesses(join(tmpdir(), d))).toEqual([]);
        }
        if (code !== null) expect(made).toEqual([]);
        for (const d of made) rmSync(join(tmpdir(), d), { recursive: true, force: true });
      }
    },
    120_000,
  );
});

describe('ktl build with no sandbox runtime installed', () => {
  // PATH without bwrap or nsjail (ktl itself is started by its full path).
  const bare = (args: string[]) =>
    spawnSync(process.execPath, [ktlBin, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env, PATH: '/nonexistent', KTL_NSJAIL_BIN: '', KTL_BWRAP_BIN: '' },
      encoding: 'utf8',
      timeout: 60_000,
    });

  rigTest(
    `by default: builds on the host, with a warning that names the risk and the fix${rigWhy}`,
    () => {
      const out = join(dir, 'no-runtime');
      const r = bare(['build', hello, '-o', `type=local,dest=${out}`, '--progress', 'plain']);
      expect(r.status).toBe(0);
      expect(r.stderr).toMatch(
        /^WARNING: no sandbox runtime \(neither nsjail nor bwrap is installed\): the build client runs on the host, unsandboxed.*apt-get install bubblewrap.*--sandbox/m,
      );
      expect(r.stderr).not.toMatch(/Running ktl build inside the sandbox/);
      expect(readFileSync(join(out, 'built.txt'), 'utf8')).toContain(
        'hello from the ktl sandbox demo',
      );
    },
    120_000,
  );

  test('with --sandbox, --hermetic or a runtime named: refuses, 71, what is missing and how to install it', () => {
    for (const extra of [['--sandbox'], ['--hermetic'], ['--sandbox-runtime', 'bwrap']]) {
      const out = join(dir, `refused-${extra[0]!.slice(2)}`, 'out');
      const r = bare(['build', hello, '-o', `type=local,dest=${out}`, ...extra]);
      expect([extra, r.status]).toEqual([extra, 71]);
      expect(r.stderr).toMatch(
        /^ERROR: no sandbox runtime: .*refusing to run the command unjailed$/m,
      );
      expect(r.stderr).toMatch(/^hint: install bubblewrap/m);
      expect(existsSync(join(dir, `refused-${extra[0]!.slice(2)}`))).toBe(false);
    }
  }, 60_000);
});
