/**
 * A local export strips setuid and setgid bits from the files it writes, unless --keep-setid:
 * a hostile Dockerfile must not be able to drop a set-id binary into the caller's tree (owned
 * by the caller, or by root when ktl runs as root). This differs from buildx on purpose; the
 * reference build below shows buildx keeping the bits on the same input.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { ktl, readEnvFile } from './helpers';

const rig = readEnvFile();
const dockerHost = rig.KTL_RIG_DOCKER_HOST;
const base = rig.KTL_RIG_BASE_IMAGE;
const ready = dockerHost !== undefined && existsSync(dockerHost.replace('unix://', '')) && !!base;
const rigTest = ready ? test : test.skip;
const why = ready ? '' : ' [skipped: the BuildKit rig is not up; run scripts/rig.sh up]';
const buildxPlugin = rig.KTL_RIG_BUILDX ?? '/usr/libexec/docker/cli-plugins/docker-buildx';
const buildxTest = ready && existsSync(buildxPlugin) ? test : test.skip;
const buildxWhy =
  why || (existsSync(buildxPlugin) ? '' : ' [skipped: docker buildx is not installed]');

const dir = mkdtempSync(join(tmpdir(), 'ktl-setid-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ctx = join(dir, 'ctx');
mkdirSync(ctx);
writeFileSync(
  join(ctx, 'Dockerfile'),
  `FROM ${base ?? 'scratch'} AS b\n` +
    'RUN mkdir -p /o/bin /o/shared && cp /bin/busybox /o/bin/suid && chmod 4755 /o/bin/suid && ' +
    'echo x > /o/bin/sgid && chmod 2755 /o/bin/sgid && echo y > /o/plain && chmod 0751 /o/plain && ' +
    'chmod 2775 /o/shared\n' +
    'FROM scratch\nCOPY --from=b /o /\n',
);
const mode = (p: string) => statSync(p).mode & 0o7777;
const env = (sandboxed: boolean) => ({
  DOCKER_HOST: dockerHost ?? '',
  BUILDKIT_HOST: '',
  KTL_SANDBOX_CONFIG: '',
  KTL_SANDBOX_DISABLE: sandboxed ? '' : '1',
});

describe.each([
  ['in the sandbox', true],
  ['on the host (KTL_SANDBOX_DISABLE=1)', false],
])('local export %s', (_label, sandboxed) => {
  rigTest(`setuid/setgid bits are stripped from files by default${why}`, () => {
    const out = join(dir, `strip-${sandboxed}`);
    const r = ktl(['build', ctx, '-o', `type=local,dest=${out}`], { env: env(sandboxed) });
    expect(r.stderr).not.toMatch(/^ERROR/m);
    expect(r.code).toBe(0);
    expect(mode(join(out, 'bin', 'suid'))).toBe(0o755);
    expect(mode(join(out, 'bin', 'sgid'))).toBe(0o755);
    // Other bits as exported; a directory keeps its setgid (group inheritance, not privilege).
    expect(mode(join(out, 'plain'))).toBe(0o751);
    expect(mode(join(out, 'shared'))).toBe(0o2775);
  });

  rigTest(`--keep-setid keeps them${why}`, () => {
    const out = join(dir, `keep-${sandboxed}`);
    const r = ktl(['build', '--keep-setid', ctx, '-o', `type=local,dest=${out}`], {
      env: env(sandboxed),
    });
    expect(r.code).toBe(0);
    expect(mode(join(out, 'bin', 'suid'))).toBe(0o4755);
    expect(mode(join(out, 'bin', 'sgid'))).toBe(0o2755);
  });
});

describe('the reference', () => {
  buildxTest(
    `docker buildx keeps the bits on the same input (the difference is deliberate)${buildxWhy}`,
    () => {
      const out = join(dir, 'buildx');
      const r = spawnSync(
        rig.KTL_RIG_DOCKER_CLI ?? 'docker',
        ['-H', dockerHost ?? '', 'buildx', 'build', '-o', `type=local,dest=${out}`, ctx],
        {
          encoding: 'utf8',
          env: { ...process.env, DOCKER_CONFIG: rig.KTL_RIG_DOCKER_CONFIG ?? '' },
        },
      );
      expect(r.stderr).not.toMatch(/^ERROR/m);
      expect(r.status).toBe(0);
      expect(mode(join(out, 'bin', 'suid'))).toBe(0o4755);
      expect(mode(join(out, 'bin', 'sgid'))).toBe(0o2755);
    },
  );
});
