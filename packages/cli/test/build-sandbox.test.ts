import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { gate, testEngines } from '../../buildkit-client/test/engines';
import { ktl, readEnvFile, repoRoot } from './helpers';

// End to end on the real engine (the rig) and real bubblewrap: `ktl build` re-executes itself
// in the sandbox, reaches the builder only through the gateway, and exports into a bound dir.
const rigEnv = '/var/lib/ktl-rig/env';
const rig = readEnvFile(rigEnv);
const dockerHost = rig.KTL_RIG_DOCKER_HOST;
const ready = dockerHost !== undefined && existsSync(dockerHost.replace('unix://', ''));
const rigTest = ready ? test : test.skip;
const why = ready
  ? ''
  : ` [skipped: the BuildKit rig is not up (${rigEnv}); run scripts/rig.sh up]`;
const dir = mkdtempSync(join(tmpdir(), 'ktl-e2e-'));
// nsjail is not packaged here; a hand-built one is named by KTL_NSJAIL_BIN (see docs/development.md).
const nsjail =
  process.env.KTL_NSJAIL_BIN ||
  spawnSync('sh', ['-c', 'command -v nsjail'], { encoding: 'utf8' }).stdout.trim();
const rigNsjail = ready && nsjail ? test : test.skip;
const nsjailWhy =
  why || (nsjail ? '' : ' [skipped: no nsjail binary (set KTL_NSJAIL_BIN or put nsjail on PATH)]');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hello = join(repoRoot, 'testdata', 'build', 'hello');
const env = { DOCKER_HOST: dockerHost ?? '', KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' };
const BANNER =
  /^Running ktl build inside the sandbox \(policy: embedded default, runtime: (bubblewrap|nsjail)\)\. Set KTL_SANDBOX_DISABLE=1 to opt out\.$/m;

describe.each((await testEngines()).map((e) => [e.label, e] as const))(
  'ktl build in the sandbox on %s',
  (_l, engine) => {
    const g = gate(engine);
    g.test(
      `builds the bundled example inside the sandbox, banner first${g.why}`,
      () => {
        const out = join(dir, `out1-${engine.id}`);
        const r = ktl(['build', hello, '-o', `type=local,dest=${out}`], {
          env: { ...env, DOCKER_HOST: engine.dockerHost },
        });
        expect(r.code).toBe(0);
        expect(r.stderr).toMatch(BANNER);
        expect(r.stderr.indexOf('Running ktl build inside the sandbox')).toBe(0);
        expect(r.stderr).toMatch(/#\d+ \[3\/3\] RUN cat \/greeting.txt/);
        expect(readFileSync(join(out, 'built.txt'), 'utf8')).toContain(
          'hello from the ktl sandbox demo',
        );
      },
      120_000,
    );
  },
);

describe('ktl build in the sandbox', () => {
  rigTest(
    `--iidfile and --metadata-file are written outside the jail: nothing of their directory is bound${why}`,
    () => {
      const out = join(dir, 'out-iid');
      const meta = mkdtempSync(join(dir, 'meta-'));
      const r = ktl(
        [
          'build',
          hello,
          '-o',
          `type=local,dest=${out}`,
          '-t',
          'ktl-e2e/iid:1',
          '--load',
          '--iidfile',
          join(meta, 'iid'),
          '--metadata-file',
          join(meta, 'm.json'),
          '--sandbox-logs',
        ],
        { env },
      );
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(BANNER);
      // The jail gets the context and the -o directory, not meta/.
      const binds = r.stderr.split('\n').filter((l) => l.startsWith('[sandbox] bind '));
      expect(binds.some((l) => l.includes(out))).toBe(true);
      expect(binds.filter((l) => l.includes(meta))).toEqual([]);
      const m = JSON.parse(readFileSync(join(meta, 'm.json'), 'utf8')) as Record<string, unknown>;
      expect(Object.keys(m).length).toBeGreaterThan(0);
      expect(readFileSync(join(meta, 'iid'), 'utf8')).toMatch(/^sha256:[0-9a-f]{64}$/);
    },
    120_000,
  );

  rigTest(
    `a runtime that fails after the build started: its own words and exit 71, not "cancelled"${why}`,
    () => {
      // Valid policy text, but bubblewrap cannot make the jail (a mandatory bind of nothing).
      const cfg = join(dir, 'bind-nothing.cfg');
      writeFileSync(
        cfg,
        `${readFileSync(join(repoRoot, 'testdata', 'sandbox', 'linux-ci.cfg'), 'utf8')}\nmount { src: "${dir}/not-there" dst: "/x" is_bind: true }\n`,
      );
      const r = ktl(
        [
          'build',
          hello,
          '--sandbox-config',
          cfg,
          // bubblewrap named: with nsjail installed too, auto would pick nsjail.
          '--sandbox-runtime',
          'bwrap',
          '-o',
          `type=local,dest=${join(dir, 'o71')}`,
        ],
        {
          env,
        },
      );
      expect(r.code).toBe(71);
      expect(r.stderr).toContain(`bwrap: Can't find source path ${dir}/not-there`);
      expect(r.stderr).toContain('[sandbox] runtime failed before the command started');
      expect(r.stderr).not.toContain('build cancelled');
    },
    120_000,
  );

  rigTest(
    `KTL_SANDBOX_DISABLE=1 builds on the host, no banner, a loud warning${why}`,
    () => {
      const out = join(dir, 'out2');
      const r = ktl(['build', hello, '-o', `type=local,dest=${out}`], {
        env: { ...env, KTL_SANDBOX_DISABLE: '1' },
      });
      expect(r.code).toBe(0);
      expect(r.stderr).not.toMatch(BANNER);
      expect(r.stderr).toContain('WARNING: KTL_SANDBOX_DISABLE=1');
      expect(existsSync(join(out, 'built.txt'))).toBe(true);
    },
    120_000,
  );

  rigTest(`a malformed policy fails before anything runs, with FILE:LINE:COL${why}`, () => {
    const bad = join(dir, 'bad.cfg');
    writeFileSync(bad, 'name: "x"\nmount { dst: "/tmp" fstype: "tmpfs" rw: yes }\n');
    const out = join(dir, 'out3');
    const r = ktl(['build', hello, '-o', `type=local,dest=${out}`, '--sandbox-config', bad], {
      env,
    });
    expect(r.code).toBe(71);
    expect(r.stderr).toContain(`${bad}:2:41: Invalid value for boolean field "rw"`);
    expect(r.stderr).not.toMatch(BANNER);
    expect(existsSync(join(out, 'built.txt'))).toBe(false);
  });

  rigTest(
    `--sandbox-logs shows what is bound and why${why}`,
    () => {
      const out = join(dir, 'out4');
      const r = ktl(['build', hello, '-o', `type=local,dest=${out}`, '--sandbox-logs'], { env });
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`[sandbox] bind ${hello} -> ${hello} (ro, build context)`);
      expect(r.stderr).toContain(`[sandbox] bind ${out} -> ${out} (rw, output local)`);
      // Of ktl itself, only its bundles are bound: not the checkout around them.
      const ktlPkg = join(repoRoot, 'packages', 'cli', 'package.json');
      expect(existsSync(ktlPkg)).toBe(true);
      expect(r.stderr).toContain(`[sandbox] inside: ${ktlPkg}: absent`);
    },
    120_000,
  );

  rigTest(
    `a tar into the context: the context stays read-only inside, the tar is moved into place; a failed build leaves none${why}`,
    () => {
      const ctx = mkdtempSync(join(dir, 'tar-ctx-'));
      writeFileSync(join(ctx, 'Dockerfile'), readFileSync(join(hello, 'Dockerfile'), 'utf8'));
      for (const f of ['greeting.txt']) writeFileSync(join(ctx, f), readFileSync(join(hello, f)));
      const cache = mkdtempSync(join(dir, 'tar-cache-'));
      const tarEnv = { ...env, KTL_CACHE_DIR: cache };
      const r = ktl(['build', ctx, '-o', 'type=tar,dest=image.tar', '--sandbox-logs'], {
        cwd: ctx,
        env: tarEnv,
      });
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`[sandbox] bind ${ctx} -> ${ctx} (ro, build context)`);
      expect(r.stderr).not.toMatch(/\[sandbox\] bind .* \(rw, /);
      const listed = spawnSync('tar', ['tf', join(ctx, 'image.tar')], { encoding: 'utf8' });
      expect(listed.stdout.split('\n')).toContain('built.txt');
      // Nothing of the staging is left behind in ktl's cache directory.
      expect(readdirSync(cache).filter((n) => n.startsWith('outputs-'))).toEqual([]);
      writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY missing.txt /\n');
      const failed = ktl(['build', ctx, '-o', 'type=tar,dest=second.tar'], {
        cwd: ctx,
        env: tarEnv,
      });
      expect(failed.code).not.toBe(0);
      expect(existsSync(join(ctx, 'second.tar'))).toBe(false);
      expect(readdirSync(cache).filter((n) => n.startsWith('outputs-'))).toEqual([]);
    },
    120_000,
  );

  rigNsjail(
    `the same build under nsjail: banner names it, the engine socket is absent inside${nsjailWhy}`,
    () => {
      const out = join(dir, 'out-nsjail');
      const r = ktl(
        [
          'build',
          hello,
          '-o',
          `type=local,dest=${out}`,
          '--sandbox-runtime',
          'nsjail',
          '--sandbox-logs',
        ],
        { env: { ...env, KTL_NSJAIL_BIN: nsjail } },
      );
      expect(r.stderr).toMatch(
        /^Running ktl build inside the sandbox \(policy: embedded default, runtime: nsjail\)/m,
      );
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`inside: ${dockerHost!.replace('unix://', '')}: absent`);
      expect(readFileSync(join(out, 'built.txt'), 'utf8')).toContain(
        'hello from the ktl sandbox demo',
      );
    },
    120_000,
  );

  test('contradictory flags are refused: --hermetic --network host, KTL_SANDBOX_DISABLE with --sandbox', () => {
    const r1 = ktl(['build', hello, '--hermetic', '--network', 'host'], { env });
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain('--hermetic and --network host contradict each other');
    const r2 = ktl(['build', hello, '--sandbox'], { env: { ...env, KTL_SANDBOX_DISABLE: '1' } });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('KTL_SANDBOX_DISABLE=1 is ignored: --sandbox requires the sandbox');
  });

  test('no builder: exit 3 with every address tried', () => {
    const r = ktl(['build', hello, '--builder', `unix://${dir}/nothing.sock`], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('nothing.sock');
  });
});
