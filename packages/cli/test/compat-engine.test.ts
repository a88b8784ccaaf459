/**
 * The old-engine compatibility target (scripts/rig-compat.sh: Debian bookworm's Docker 20.10,
 * BuildKit v0.8, graphdriver image store): what that engine supports works, on the host and in
 * the sandbox, and what it does not is refused before the build with the engine named.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { ktl, readEnvFile, repoRoot } from './helpers';

const envFile = '/var/lib/ktl-rig/env-compat';
const cfg = readEnvFile(envFile);
const host = cfg.KTL_RIG_COMPAT_DOCKER_HOST;
const ready = host !== undefined && existsSync(host.replace('unix://', ''));
const compatTest = ready ? test : test.skip;
const why = ready
  ? ''
  : ` [skipped: the Docker 20.10 compatibility engine is not up (${envFile}); run scripts/rig-compat.sh up]`;

const dir = mkdtempSync(join(tmpdir(), 'ktl-compat-'));
const made: string[] = [];
const docker = (...args: string[]) =>
  spawnSync(cfg.KTL_RIG_COMPAT_DOCKER_CLI ?? 'docker', ['-H', host ?? '', ...args], {
    encoding: 'utf8',
  });
afterAll(() => {
  if (made.length > 0) docker('image', 'rm', '-f', ...made);
  rmSync(dir, { recursive: true, force: true });
});
const hello = join(repoRoot, 'testdata', 'build', 'hello');
const modes: [string, Record<string, string>][] = [
  ['on the host', { KTL_SANDBOX_DISABLE: '1' }],
  ['in the sandbox', { KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' }],
];
const run = (args: string[], extra: Record<string, string>) =>
  ktl(['build', ...args], {
    env: { DOCKER_HOST: host ?? '', BUILDKIT_HOST: '', ...extra },
  });

describe.each(modes)('Docker 20.10 (BuildKit v0.8, graphdriver) %s', (mode, modeEnv) => {
  compatTest(
    `a local export and --load (through the engine's moby exporter) work${why}`,
    () => {
      const out = join(dir, `out-${mode.replace(/ /g, '-')}`);
      const r = run([hello, '-o', `type=local,dest=${out}`], modeEnv);
      expect(r.code).toBe(0);
      expect(readFileSync(join(out, 'built.txt'), 'utf8')).toContain(
        'hello from the ktl sandbox demo',
      );
      const name = `ktl-compat-${mode.replace(/ /g, '-')}:1`;
      made.push(name);
      const l = run([hello, '-t', name, '--load'], modeEnv);
      expect(l.code).toBe(0);
      expect(docker('image', 'inspect', '--format', '{{.Id}}', name).status).toBe(0);
    },
    120_000,
  );

  compatTest(
    `a failing step: exit 4 with the step and its exit code (BuildKit v0.8 sends no source lines)${why}`,
    () => {
      const ctx = join(dir, `fail-${mode.replace(/ /g, '-')}`);
      mkdirSync(ctx, { recursive: true });
      writeFileSync(
        join(ctx, 'Dockerfile'),
        `FROM 127.0.0.1:5000/ktl/busybox:latest\nRUN echo about to fail && exit 7\n`,
      );
      const r = run([ctx, '--no-cache', '--progress', 'plain'], modeEnv);
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/exit code: 7/);
      expect(r.stderr).toMatch(
        /^ktl: build failed at step \[2\/2\] RUN echo about to fail && exit 7.*exit code 7$/m,
      );
    },
    120_000,
  );

  compatTest(
    `what the engine lacks is refused before the build, naming the engine: oci/docker archives, several outputs${why}`,
    () => {
      const oci = run([hello, '-o', `type=oci,dest=${join(dir, 'x.tar')}`], modeEnv);
      expect(oci.code).toBe(2);
      expect(oci.stderr).toContain(
        `this engine (Docker ${cfg.KTL_RIG_COMPAT_VERSION}, API ${cfg.KTL_RIG_COMPAT_API}) keeps images in a graphdriver store, which has no oci exporter`,
      );
      expect(oci.stderr).not.toMatch(/^#\d/m); // nothing was built
      const two = run(
        [hello, '-o', join(dir, 'a'), '-o', `type=tar,dest=${join(dir, 'b.tar')}`],
        modeEnv,
      );
      expect(two.code).toBe(2);
      expect(two.stderr).toContain(
        `this Docker engine (API ${cfg.KTL_RIG_COMPAT_API}) exports one output per build`,
      );
    },
    120_000,
  );
});
