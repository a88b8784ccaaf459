/**
 * The old-engine compatibility target (scripts/rig-compat.sh: Debian bookworm's Docker 20.10,
 * BuildKit v0.8, graphdriver image store): what that engine supports works, on the host and in
 * the sandbox, and what it does not is refused before the build with the engine named.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
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

/**
 * A local cache directory as an exporter writes one (OCI layout: index.json tagged `latest`
 * naming a cache manifest, whose one entry is a cache config), with no cache records.
 */
function craftedCache(d: string): string {
  mkdirSync(join(d, 'blobs', 'sha256'), { recursive: true });
  const put = (data: string) => {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    writeFileSync(join(d, 'blobs', 'sha256', digest.slice(7)), data);
    return { digest, size: Buffer.byteLength(data) };
  };
  const config = put(JSON.stringify({ layers: [], records: [] }));
  const index = 'application/vnd.oci.image.index.v1+json';
  const manifest = put(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: index,
      manifests: [{ mediaType: 'application/vnd.buildkit.cacheconfig.v0', ...config }],
    }),
  );
  writeFileSync(join(d, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(d, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: index,
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    }),
  );
  return d;
}
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
    `cache export other than inline is refused before the build, naming the engine: local, registry${why}`,
    () => {
      const dest = join(dir, `local-cache-${mode.replace(/ /g, '-')}`);
      const local = run([hello, '--cache-to', `type=local,dest=${dest}`], modeEnv);
      expect(local.code).toBe(2);
      expect(local.stderr).toContain(
        `ERROR: this engine (Docker ${cfg.KTL_RIG_COMPAT_VERSION}, API ${cfg.KTL_RIG_COMPAT_API}) keeps images in a graphdriver store, whose BuildKit exports only inline cache: --cache-to type=local is not available there`,
      );
      expect(local.stderr).toContain('--cache-from type=local works on this engine');
      expect(local.stderr).not.toMatch(/^#\d/m); // nothing was built
      const registry = run(
        [hello, '--cache-to', 'type=registry,ref=127.0.0.1:5000/ktltest/compat:cache'],
        modeEnv,
      );
      expect(registry.code).toBe(2);
      expect(registry.stderr).toContain('--cache-to type=registry is not available there');
      expect(registry.stderr).not.toMatch(/^#\d/m);
    },
    120_000,
  );

  compatTest(
    `--cache-from type=local: BuildKit v0.8 reads the cache manifest through the session's content store${why}`,
    () => {
      // No engine here writes a cache BuildKit v0.8's keys would match (this one exports none,
      // and v0.13's keys differ), so this proves the import path, not a hit: the daemon finds the
      // manifest and its cache config in the directory and reads them through ktl.
      const src = craftedCache(join(dir, `crafted-${mode.replace(/ /g, '-')}`));
      const before = readFileSync(join(src, 'index.json'), 'utf8');
      const r = run(
        [hello, '--progress', 'plain', '--cache-from', `type=local,src=${src}`],
        modeEnv,
      );
      expect(r.code).toBe(0);
      const v = /^#(\d+) importing cache manifest from local:\S+$/m.exec(r.stderr)?.[1];
      expect(v).toBeDefined();
      expect(r.stderr).toMatch(new RegExp(`^#${v} DONE`, 'm'));
      expect(r.stderr).not.toMatch(new RegExp(`^#${v} ERROR`, 'm'));
      expect(readFileSync(join(src, 'index.json'), 'utf8')).toBe(before);
    },
    120_000,
  );
});
