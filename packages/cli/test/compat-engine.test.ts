/**
 * The old-engine compatibility target (scripts/rig-compat.sh: Debian bookworm's Docker 20.10,
 * BuildKit v0.8, graphdriver image store): what that engine supports works, on the host and in
 * the sandbox, and what it does not is refused before the build with the engine named.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
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
const MULTI = 'linux/amd64,linux/arm64';
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

  compatTest(
    `a multi-platform local export works (a directory per platform); the metadata file is buildx's for this engine (no history API: no provenance)${why}`,
    () => {
      const ctx = join(dir, `multi-${mode.replace(/ /g, '-')}`);
      mkdirSync(ctx, { recursive: true });
      writeFileSync(
        join(ctx, 'Dockerfile'),
        'FROM --platform=$BUILDPLATFORM 127.0.0.1:5000/ktl/busybox:latest AS b\nARG TARGETPLATFORM\nRUN echo $TARGETPLATFORM > /p\nFROM scratch\nCOPY --from=b /p /p\n',
      );
      const out = join(ctx, 'out');
      const meta = join(ctx, 'meta.json');
      const r = run(
        ['--platform', MULTI, '-o', `type=local,dest=${out}`, '--metadata-file', meta, ctx],
        modeEnv,
      );
      expect(r.code).toBe(0);
      expect(readFileSync(join(out, 'linux_amd64', 'p'), 'utf8')).toBe('linux/amd64\n');
      expect(readFileSync(join(out, 'linux_arm64', 'p'), 'utf8')).toBe('linux/arm64\n');
      const m = JSON.parse(readFileSync(meta, 'utf8')) as Record<string, string>;
      expect(Object.keys(m)).toEqual(['buildx.build.ref']);
      expect(m['buildx.build.ref']).toMatch(/^ktl\/docker\/[0-9a-z]{25}$/);
    },
    120_000,
  );

  compatTest(
    `multi-platform images, attestations and platform-split=false are refused before the build, naming the engine (exit 2)${why}`,
    () => {
      const engine = `this engine (Docker ${cfg.KTL_RIG_COMPAT_VERSION}, API ${cfg.KTL_RIG_COMPAT_API})`;
      const cases: Array<[string[], string]> = [
        [
          ['--platform', MULTI, '-t', 'ktl-compat-multi:1', '--load'],
          `${engine} keeps images in a graphdriver store, whose moby exporter cannot store a multi-platform image (--platform ${MULTI})`,
        ],
        [
          ['--platform', MULTI, '-t', '127.0.0.1:5000/ktltest/compat-multi:1', '--push'],
          `${engine} keeps images in a graphdriver store, whose moby exporter cannot push a multi-platform image`,
        ],
        [
          ['--provenance', 'mode=max', '-o', join(dir, 'prov')],
          `${engine} keeps images in a graphdriver store and cannot make attestations`,
        ],
        [
          ['--platform', MULTI, '-o', `type=local,dest=${join(dir, 'merge')},platform-split=false`],
          `${engine} ignores platform-split=false and would write a directory per platform`,
        ],
      ];
      for (const [args, message] of cases) {
        const r = run([hello, ...args], modeEnv);
        expect({ args, code: r.code }).toEqual({ args, code: 2 });
        expect(r.stderr).toContain(message);
        expect(r.stderr).toMatch(/^hint: /m);
        expect(r.stderr).not.toMatch(/^#\d/m); // nothing was built
      }
      // Nothing was exported (in the sandbox the outer ktl makes the destination before the
      // jail starts, which is before the builder is known; it stays empty).
      const merged = join(dir, 'merge');
      expect(existsSync(merged) ? readdirSync(merged) : []).toEqual([]);
    },
    120_000,
  );
});
