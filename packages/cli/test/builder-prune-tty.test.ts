/**
 * `ktl builder prune`'s confirmation prompt on a real pseudo-terminal: ./bin/ktl runs under
 * util-linux `script`, the test waits for the question on the terminal and types the answer.
 * Every prune is scoped with `--filter id=` to a record of a build made here (the rig is
 * shared), and what happened is judged by `ktl builder du`: the record is still there, or gone.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { ktl, ktlBin, readEnvFile, repoRoot } from './helpers';

const rigEnv = process.env.KTL_RIG_ENV_FILE ?? '/var/lib/ktl-rig/env';
const rig = readEnvFile(rigEnv);
const dockerHost = rig.KTL_RIG_DOCKER_HOST;
const base = rig.KTL_RIG_BASE_IMAGE;
const scriptBin = '/usr/bin/script';
const rigUp =
  dockerHost !== undefined && existsSync(dockerHost.replace('unix://', '')) && base !== undefined;
const why = !rigUp
  ? ` [skipped: the BuildKit rig is not up (${rigEnv}); run scripts/rig.sh up]`
  : !existsSync(scriptBin)
    ? ` [skipped: ${scriptBin} (util-linux script) is not installed]`
    : '';
const ptyTest = why === '' ? test : test.skip;

const dir = mkdtempSync(join(tmpdir(), 'ktl-prune-tty-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = {
  DOCKER_HOST: dockerHost ?? '',
  BUILDKIT_HOST: '',
  KTL_STATE_DIR: join(dir, 'state'),
  KTL_SANDBOX_DISABLE: '1',
  DOCKER_CONFIG: join(dir, 'docker-config'),
  TERM: 'xterm',
};
mkdirSync(env.DOCKER_CONFIG);

interface Rec {
  id: string;
  inUse: boolean;
  shared: boolean;
}
const records = (mark: string): Rec[] => {
  const r = ktl(['builder', 'du', '--json', '--filter', `description~=${mark}`], { env });
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { records: Rec[] }).records;
};
const present = (id: string) => {
  const r = ktl(['builder', 'du', '--json', '--filter', `id=${id}`], { env });
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { records: Rec[] }).records.length === 1;
};

/**
 * A build whose RUN step is unique to this call; a record of it that no build is using.
 * The prunes below say --all, so whether the engine counts the record as shared with an
 * image does not matter: only the id filter scopes them.
 */
function prunableRecord(): string {
  const mark = `ktlprune${randomBytes(6).toString('hex')}`;
  const ctx = join(dir, mark);
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${base}\nRUN echo ${mark} > /mark\n`);
  // A local export: no image holds the layer, so the record is the cache's own.
  const b = ktl(['build', ctx, '-o', `type=local,dest=${join(dir, `${mark}-out`)}`], { env });
  expect(b.code).toBe(0);
  const rec = records(mark).find((r) => !r.inUse);
  expect(rec).toBeDefined();
  return rec!.id;
}

const QUESTION =
  'WARNING! This will remove all build cache that is not in use. Are you sure you want to continue? [y/N] ';

/**
 * `ktl builder prune ARGS` with a pseudo-terminal for stdin, stdout and stderr; `keys` are
 * typed once the question is on the screen. Resolves with ktl's exit status (script -e) and
 * everything the terminal showed.
 */
function pruneOnPty(args: string[], keys: string): Promise<{ code: number | null; out: string }> {
  const cmd = [ktlBin, 'builder', 'prune', ...args].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve, reject) => {
    const c = spawn(scriptBin, ['-qfec', cmd, '/dev/null'], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
    });
    let out = '';
    let typed = false;
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      reject(new Error(`no answer within 30 s; the terminal showed: ${JSON.stringify(out)}`));
    }, 30_000);
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!typed && out.includes('[y/N] ')) {
        typed = true;
        c.stdin.write(keys);
      }
    });
    c.on('close', (code) => {
      clearTimeout(timer);
      c.stdin.destroy();
      resolve({ code, out });
    });
  });
}

describe('ktl builder prune asks on a terminal', () => {
  ptyTest(
    `n (or just Enter, or Ctrl-D) prunes nothing: exit 1; Ctrl-C: exit 130; y prunes: exit 0${why}`,
    async () => {
      const id = prunableRecord();
      for (const keys of ['n\r', '\r', '\x04']) {
        const r = await pruneOnPty(['--all', '--filter', `id=${id}`], keys);
        expect(r.out).toContain(QUESTION);
        expect(r.out).toMatch(/^not pruned\r?$/m);
        expect(r.out).not.toContain('Total reclaimed');
        expect(r.code).toBe(1);
        expect(present(id)).toBe(true);
      }
      const c = await pruneOnPty(['--all', '--filter', `id=${id}`], '\x03');
      expect(c.out).toMatch(/^interrupted: not pruned\r?$/m);
      expect(c.code).toBe(130);
      expect(present(id)).toBe(true);

      const y = await pruneOnPty(['--all', '--filter', `id=${id}`], 'y\r');
      expect(y.out).toContain(QUESTION);
      expect(y.out).toMatch(new RegExp(`^${id.slice(0, 12)}`, 'm'));
      expect(y.out).toMatch(/^Total reclaimed: \d/m);
      expect(y.code).toBe(0);
      expect(present(id)).toBe(false);
    },
    120_000,
  );

  ptyTest(
    `stdin not a terminal: refused (exit 2) even when it says y, nothing pruned; -f prunes${why}`,
    () => {
      const id = prunableRecord();
      const r = ktl(['builder', 'prune', '--all', '--filter', `id=${id}`], {
        env,
        input: 'y\n',
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        'ERROR: refusing to prune without confirmation: stdin is not a terminal (this would remove all build cache that is not in use)\nhint: add --force (-f) to prune without asking\n',
      );
      expect(r.stdout).toBe('');
      expect(present(id)).toBe(true);
      const f = ktl(['builder', 'prune', '-f', '--all', '--filter', `id=${id}`], { env });
      expect(f.code).toBe(0);
      expect(f.stdout).toMatch(/^Total reclaimed: \d/m);
      expect(present(id)).toBe(false);
    },
    120_000,
  );
});
