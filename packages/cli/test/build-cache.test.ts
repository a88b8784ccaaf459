/**
 * `ktl build --cache-to / --cache-from` end to end against the rig's engine and registry, on
 * the host and in the sandbox. Each test proves a cache HIT after the builder's own cache of
 * the expensive step is gone: the step's cache record is pruned by id (only that record; the
 * rig is shared), then the rebuild must show the step CACHED, must not run it (its echo is not
 * in the log) and must produce the very same random stamp the first build wrote.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { ktl, readEnvFile } from './helpers';

const rigEnv = process.env.KTL_RIG_ENV_FILE ?? '/var/lib/ktl-rig/env';
const rig = readEnvFile(rigEnv);
const dockerHost = rig.KTL_RIG_DOCKER_HOST;
const base = rig.KTL_RIG_BASE_IMAGE;
const registry = rig.KTL_RIG_REGISTRY;
const ready =
  dockerHost !== undefined &&
  existsSync(dockerHost.replace('unix://', '')) &&
  base !== undefined &&
  registry !== undefined;
const why = ready
  ? ''
  : ` [skipped: the BuildKit rig is not up (${rigEnv}); run scripts/rig.sh up]`;

const dir = mkdtempSync(join(tmpdir(), 'ktl-cache-'));
const docker = (...args: string[]) =>
  spawnSync(rig.KTL_RIG_DOCKER_CLI ?? 'docker', ['-H', dockerHost ?? '', ...args], {
    encoding: 'utf8',
  });
const pushed: string[] = [];
afterAll(() => {
  if (pushed.length > 0) docker('image', 'rm', '-f', ...pushed);
  rmSync(dir, { recursive: true, force: true });
});

const noAuth = join(dir, 'docker-config');
mkdirSync(noAuth);
const env = {
  DOCKER_HOST: dockerHost ?? '',
  KTL_SANDBOX_DISABLE: '1',
  BUILDKIT_HOST: '',
  DOCKER_CONFIG: noAuth,
};
const uniq = () => randomBytes(6).toString('hex');
const run = (args: string[], extra: Record<string, string>) =>
  ktl(['build', ...args], { env: { ...env, ...extra } });

const bwrap = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).stdout.trim();
const modes: [string, Record<string, string>, typeof test | typeof test.skip][] = [
  ['on the host', { KTL_SANDBOX_DISABLE: '1' }, ready ? test : test.skip],
  [
    'in the sandbox',
    { KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' },
    ready && bwrap ? test : test.skip,
  ],
];
const modeWhy = (mode: string) =>
  why || (mode === 'in the sandbox' && !bwrap ? ' [skipped: bwrap is not installed]' : '');
const BANNER = /^Running ktl build inside the sandbox \(/m;

/** A context whose one RUN step echoes a unique token and writes a random stamp. */
function stampContext(token: string): string {
  const d = join(dir, `ctx-${token}`);
  mkdirSync(d, { recursive: true });
  writeFileSync(
    join(d, 'Dockerfile'),
    `FROM ${base}\nRUN echo ${token} && cat /proc/sys/kernel/random/uuid > /stamp\n`,
  );
  return d;
}

/** Ids of the builder's cache records made by the step that echoes `token`. */
function recordsOf(token: string): string[] {
  const du = docker('buildx', 'du', '--verbose');
  expect(du.status).toBe(0);
  const ids: string[] = [];
  let id = '';
  for (const line of du.stdout.split('\n')) {
    const m = /^ID:\s+(\S+)/.exec(line);
    if (m) id = m[1]!;
    if (line.startsWith('Description:') && line.includes(`echo ${token} `)) ids.push(id);
  }
  return ids;
}

/** Removes exactly the step's records, so only a cache import can bring its result back. */
function pruneStep(token: string): void {
  const ids = recordsOf(token);
  expect(ids.length).toBeGreaterThan(0);
  for (const id of ids) {
    const r = docker('builder', 'prune', '-f', '--filter', `id=${id}`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  }
  expect(recordsOf(token)).toEqual([]);
}

/** The step ran: BuildKit logged its echo (`#6 0.123 TOKEN`). */
const ran = (stderr: string, token: string) =>
  new RegExp(`^#\\d+ \\d+\\.\\d+ ${token}$`, 'm').test(stderr);
/** The step was a cache hit: its vertex is reported CACHED. */
const cachedStep = (stderr: string, token: string) =>
  new RegExp(
    `^#(\\d+) \\[2/2\\] RUN echo ${token} [^\\n]*\\n(?:[^\\n]*\\n)*?#\\1 CACHED$`,
    'm',
  ).test(stderr);

describe.each(modes)('ktl build --cache-to/--cache-from %s', (mode, modeEnv, modeTest) => {
  modeTest(
    `registry cache, mode=max: a rebuild without the local cache reuses the step${modeWhy(mode)}`,
    () => {
      const token = `tok-${uniq()}`;
      const ctx = stampContext(token);
      const ref = `${registry}/ktltest/cache:${token}`;
      const out1 = join(dir, `out-${token}-1`);
      const r1 = run(
        [
          ctx,
          '--progress',
          'plain',
          '--cache-to',
          `type=registry,ref=${ref},mode=max`,
          '-o',
          `type=local,dest=${out1}`,
        ],
        modeEnv,
      );
      expect(r1.stderr).toMatch(mode === 'in the sandbox' ? BANNER : /^WARNING: KTL_SANDBOX/m);
      expect(r1.code).toBe(0);
      expect(ran(r1.stderr, token)).toBe(true);
      expect(r1.stderr).toMatch(/^#\d+ exporting cache to registry$/m);
      expect(r1.stderr).toMatch(/^#\d+ writing cache manifest sha256:/m);

      pruneStep(token);

      const out2 = join(dir, `out-${token}-2`);
      const r2 = run(
        [
          ctx,
          '--progress',
          'plain',
          '--cache-from',
          `type=registry,ref=${ref}`,
          '-o',
          `type=local,dest=${out2}`,
        ],
        modeEnv,
      );
      expect(r2.code).toBe(0);
      expect(cachedStep(r2.stderr, token)).toBe(true);
      expect(ran(r2.stderr, token)).toBe(false);
      const stamp = readFileSync(join(out1, 'stamp'), 'utf8');
      expect(stamp).toMatch(/^[0-9a-f-]{36}\n$/);
      expect(readFileSync(join(out2, 'stamp'), 'utf8')).toBe(stamp);
    },
    180_000,
  );

  modeTest(
    `inline cache in a pushed image, imported with --cache-from type=registry,ref=IMAGE${modeWhy(mode)}`,
    () => {
      const token = `tok-${uniq()}`;
      const ctx = stampContext(token);
      const image = `${registry}/ktltest/inline:${token}`;
      pushed.push(image);
      const out1 = join(dir, `out-${token}-1`);
      const r1 = run(
        [
          ctx,
          '--progress',
          'plain',
          '-t',
          image,
          '--push',
          '--cache-to',
          'type=inline',
          '-o',
          `type=local,dest=${out1}`,
        ],
        modeEnv,
      );
      expect(r1.code).toBe(0);
      expect(ran(r1.stderr, token)).toBe(true);
      expect(r1.stderr).toMatch(/^#\d+ pushing manifest for /m);

      // The engine keeps the pushed image, which holds on to the step's snapshot: drop it
      // there (the registry keeps its copy), then the record itself.
      expect(docker('image', 'rm', '-f', image).status).toBe(0);
      pruneStep(token);

      const out2 = join(dir, `out-${token}-2`);
      const r2 = run(
        [ctx, '--progress', 'plain', '--cache-from', image, '-o', `type=local,dest=${out2}`],
        modeEnv,
      );
      expect(r2.code).toBe(0);
      expect(cachedStep(r2.stderr, token)).toBe(true);
      expect(ran(r2.stderr, token)).toBe(false);
      const stamp = readFileSync(join(out1, 'stamp'), 'utf8');
      expect(stamp).toMatch(/^[0-9a-f-]{36}\n$/);
      expect(readFileSync(join(out2, 'stamp'), 'utf8')).toBe(stamp);
    },
    180_000,
  );

  modeTest(`type=local is refused with exit 2 and what to use instead${modeWhy(mode)}`, () => {
    const ctx = stampContext(`tok-${uniq()}`);
    const r = run([ctx, '--cache-to', `type=local,dest=${join(dir, 'local-cache')}`], modeEnv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('type=local caches are not supported');
    expect(r.stderr).toContain('hint: use a registry cache instead');
    expect(existsSync(join(dir, 'local-cache'))).toBe(false);
  });
});
