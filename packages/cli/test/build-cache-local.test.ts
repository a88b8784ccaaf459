/**
 * `ktl build --cache-to / --cache-from type=local` end to end against the rig's engine, on the
 * host and in the sandbox: an OCI layout directory the session serves to the daemon as a
 * content store (registry and inline caches, per engine: build-cache.test.ts). Each test proves a cache HIT after the builder's own cache of
 * the expensive step is gone: the step's cache record is pruned by id (only that record; the
 * rig is shared), then the rebuild must show the step CACHED, must not run it (its echo is not
 * in the log) and must produce the very same random stamp the first build wrote.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import {
  cachedStep,
  expectRebuiltFromCache,
  pruneStep,
  ran,
  stampContext as stampIn,
  stampOf,
} from './cache-steps';
import { ktl, readEnvFile } from './helpers';
import { craftedCache, REF_NAME } from './oci-cache-fixture';

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
    // `buildx du --verbose` on a long-lived rig lists megabytes (Node's default cap is 1 MiB).
    maxBuffer: 64 * 1024 * 1024,
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

interface Manifest {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/**
 * Checks an OCI layout a local cache export wrote: `oci-layout`, an index whose `latest` entry
 * names a manifest in the store, every blob hashing to its name, every blob the manifest names
 * present with its size, and no temporary file left behind. Returns the manifest's digest.
 */
function checkLayout(cache: string): { latest: string; blobs: number } {
  expect(JSON.parse(readFileSync(join(cache, 'oci-layout'), 'utf8'))).toEqual({
    imageLayoutVersion: '1.0.0',
  });
  const blobs = join(cache, 'blobs', 'sha256');
  const names = readdirSync(blobs);
  for (const name of names) {
    const data = readFileSync(join(blobs, name));
    expect(`sha256:${createHash('sha256').update(data).digest('hex')}`).toBe(`sha256:${name}`);
  }
  const idx = JSON.parse(readFileSync(join(cache, 'index.json'), 'utf8'));
  expect(idx.schemaVersion).toBe(2);
  const latest = (idx.manifests as Manifest[]).filter(
    (m) => m.annotations?.[REF_NAME] === 'latest',
  );
  expect(latest).toHaveLength(1);
  const top = latest[0]!;
  const manifest = JSON.parse(readFileSync(join(blobs, top.digest.slice(7)), 'utf8'));
  expect(statSync(join(blobs, top.digest.slice(7))).size).toBe(top.size);
  const refs: Manifest[] = [
    ...(manifest.manifests ?? []),
    ...(manifest.layers ?? []),
    ...(manifest.config ? [manifest.config] : []),
  ];
  expect(refs.some((r) => r.mediaType === 'application/vnd.buildkit.cacheconfig.v0')).toBe(true);
  for (const r of refs) expect(statSync(join(blobs, r.digest.slice(7))).size).toBe(r.size);
  const ingest = join(cache, 'ingest');
  expect(existsSync(ingest) ? readdirSync(ingest) : []).toEqual([]);
  expect(readdirSync(cache).filter((n) => n.startsWith('.'))).toEqual([]);
  return { latest: top.digest, blobs: names.length };
}

/** Every file under `d` with its size and modification time (to see that nothing changed). */
function snapshot(d: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string) => {
    for (const n of readdirSync(p)) {
      const st = lstatSync(join(p, n));
      if (st.isDirectory()) walk(join(p, n), `${rel}${n}/`);
      else out[`${rel}${n}`] = `${st.size}:${st.mtimeMs}`;
    }
  };
  walk(d, '');
  return out;
}

const buildx = existsSync(rig.KTL_RIG_BUILDX ?? '/usr/libexec/docker/cli-plugins/docker-buildx');
const buildxWhy = buildx ? '' : ' [skipped: docker buildx is not installed]';

describe.each(modes)('ktl build --cache-to/--cache-from %s', (mode, modeEnv, modeTest) => {
  modeTest(
    `local cache, mode=max: an OCI layout whose blobs verify; after a prune, --cache-from type=local reuses the step${modeWhy(mode)}`,
    () => {
      const token = `tok-${uniq()}`;
      const ctx = stampIn(dir, base!, token);
      const cache = join(dir, `local-${token}`);
      const out1 = join(dir, `out-${token}-1`);
      const r1 = run(
        [
          ctx,
          '--progress',
          'plain',
          '--cache-to',
          `type=local,dest=${cache},mode=max`,
          '-o',
          `type=local,dest=${out1}`,
        ],
        modeEnv,
      );
      expect(r1.stderr).toMatch(mode === 'in the sandbox' ? BANNER : /^WARNING: KTL_SANDBOX/m);
      expect(r1.code).toBe(0);
      expect(ran(r1.stderr, token)).toBe(true);
      expect(r1.stderr).toMatch(/^#\d+ exporting cache to client directory$/m);
      const logged = /^#\d+ writing cache manifest (sha256:[0-9a-f]{64})/m.exec(r1.stderr)?.[1];
      expect(checkLayout(cache)).toEqual({ latest: logged, blobs: expect.any(Number) });

      pruneStep(docker, token);
      const before = snapshot(cache);

      expectRebuiltFromCache(
        (a) => run(a, modeEnv),
        ctx,
        `type=local,src=${cache}`,
        join(dir, `out-${token}-2`),
        token,
        stampOf(out1),
      );
      // An import reads the directory and writes nothing into it.
      expect(snapshot(cache)).toEqual(before);
    },
    180_000,
  );

  modeTest(
    `a hostile --cache-from directory: a blob linked to a host file is refused, not read${modeWhy(mode)}`,
    () => {
      // The link's target holds exactly the bytes its digest names: only the refusal to follow
      // links keeps them from the daemon.
      const host = join(dir, `host-${uniq()}`);
      const src = craftedCache(join(dir, `hostile-src-${uniq()}`), host);
      const r = run(
        [
          stampIn(dir, base!, `tok-${uniq()}`),
          '--progress',
          'plain',
          '--cache-from',
          `type=local,src=${src}`,
        ],
        modeEnv,
      );
      // BuildKit treats a cache import that fails as no cache: the build goes on without it.
      expect(r.code).toBe(0);
      const v = /^#(\d+) importing cache manifest from local:\S+$/m.exec(r.stderr)?.[1];
      expect(v).toBeDefined();
      expect(r.stderr).toMatch(
        new RegExp(
          `^#${v} ERROR: .*/blobs/sha256/[0-9a-f]{64} is a symbolic link; ktl serves only regular files inside the cache directory`,
          'm',
        ),
      );
    },
    120_000,
  );

  modeTest(
    `a hostile --cache-to directory: blobs/ linked out of it fails the export, nothing lands outside${modeWhy(mode)}`,
    () => {
      const outside = join(dir, `outside-${uniq()}`);
      mkdirSync(outside);
      const dest = join(dir, `hostile-dest-${uniq()}`);
      mkdirSync(dest);
      symlinkSync(outside, join(dest, 'blobs'));
      const r = run(
        [
          stampIn(dir, base!, `tok-${uniq()}`),
          '--progress',
          'plain',
          '--cache-to',
          `type=local,dest=${dest}`,
        ],
        modeEnv,
      );
      // On the host ktl sees its own refusal (an output it could not write: 5); in the sandbox
      // the refusal happens in the jail and the outer ktl sees the daemon's failed step (4).
      expect(r.code).toBe(mode === 'on the host' ? 5 : 4);
      expect(r.stderr).toContain(
        `${dest}/blobs is a symbolic link; ktl serves only regular files inside the cache directory and does not follow links out of it`,
      );
      expect(r.stderr).toMatch(/^ktl: build failed at step exporting cache to client directory$/m);
      expect(readdirSync(outside)).toEqual([]);
      expect(existsSync(join(dest, 'index.json'))).toBe(false);
    },
    120_000,
  );

  modeTest(
    `--cache-from type=local with no cache there yet: a warning, and the build goes on${modeWhy(mode)}`,
    () => {
      const ctx = stampIn(dir, base!, `tok-${uniq()}`);
      const none = join(dir, `no-cache-${uniq()}`);
      const r = run(
        [ctx, '--progress', 'plain', '--cache-from', `type=local,src=${none}`],
        modeEnv,
      );
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(
        `WARNING: local cache import at ${none} not found (${join(none, 'index.json')} does not exist); building without it`,
      );
      expect(r.stderr).not.toMatch(/importing cache manifest/);
      expect(existsSync(none)).toBe(false);
    },
    120_000,
  );
});

describe('local cache tags, digests and buildx', () => {
  const hostEnv = { KTL_SANDBOX_DISABLE: '1' };

  (ready ? test : test.skip)(
    `tag= and digest=: two builds exported into one directory under two tags, each imported by its own name${why}`,
    () => {
      const t1 = `tok-${uniq()}`;
      const t2 = `tok-${uniq()}`;
      const ctx1 = stampIn(dir, base!, t1);
      const ctx2 = stampIn(dir, base!, t2);
      const cache = join(dir, `tagged-${t1}`);
      const e1 = run(
        [ctx1, '--progress', 'plain', '--cache-to', `type=local,dest=${cache},mode=max,tag=v1`],
        hostEnv,
      );
      expect(e1.code).toBe(0);

      const missing = run(
        [ctx1, '--progress', 'plain', '--cache-from', `type=local,src=${cache}`],
        hostEnv,
      );
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain(
        `ERROR: local cache ${cache} has no manifest tagged "latest" in its index.json (tags: v1)`,
      );
      expect(missing.stderr).not.toMatch(/^#\d+ \[/m); // no step started

      // The second export goes under `latest` and keeps v1.
      const e2 = run(
        [ctx2, '--progress', 'plain', '--cache-to', `type=local,dest=${cache},mode=max`],
        hostEnv,
      );
      expect(e2.code).toBe(0);
      const idx = JSON.parse(readFileSync(join(cache, 'index.json'), 'utf8'));
      const byTag = Object.fromEntries(
        (idx.manifests as Manifest[]).map((m) => [m.annotations?.[REF_NAME], m.digest]),
      );
      expect(Object.keys(byTag).sort()).toEqual(['latest', 'v1']);
      expect(byTag.latest).not.toBe(byTag.v1);

      pruneStep(docker, t1);
      const r1 = run(
        [ctx1, '--progress', 'plain', '--cache-from', `type=local,src=${cache},tag=v1`],
        hostEnv,
      );
      expect(r1.code).toBe(0);
      expect(cachedStep(r1.stderr, t1)).toBe(true);
      expect(ran(r1.stderr, t1)).toBe(false);

      pruneStep(docker, t2);
      const r2 = run(
        [
          ctx2,
          '--progress',
          'plain',
          '--cache-from',
          `type=local,src=${cache},digest=${byTag.latest}`,
        ],
        hostEnv,
      );
      expect(r2.code).toBe(0);
      expect(cachedStep(r2.stderr, t2)).toBe(true);
      expect(ran(r2.stderr, t2)).toBe(false);
    },
    180_000,
  );

  (ready && buildx ? test : test.skip)(
    `a cache written by docker buildx is read by ktl, and ktl's by buildx${why || buildxWhy}`,
    () => {
      const token = `tok-${uniq()}`;
      const ctx = stampIn(dir, base!, token);
      const bxCache = join(dir, `bx-${token}`);
      const bx = docker(
        'buildx',
        'build',
        '--progress',
        'plain',
        '--cache-to',
        `type=local,dest=${bxCache},mode=max`,
        // Not the default image export: a dangling image would keep the step's record alive.
        '--output',
        'type=cacheonly',
        ctx,
      );
      expect(bx.status).toBe(0);
      expect(checkLayout(bxCache).latest).toMatch(/^sha256:/);

      pruneStep(docker, token);
      const k = run(
        [ctx, '--progress', 'plain', '--cache-from', `type=local,src=${bxCache}`],
        hostEnv,
      );
      expect(k.code).toBe(0);
      expect(cachedStep(k.stderr, token)).toBe(true);
      expect(ran(k.stderr, token)).toBe(false);

      const token2 = `tok-${uniq()}`;
      const ctx2 = stampIn(dir, base!, token2);
      const ktlCache = join(dir, `ktl-for-bx-${token2}`);
      expect(run([ctx2, '--cache-to', `type=local,dest=${ktlCache},mode=max`], hostEnv).code).toBe(
        0,
      );
      pruneStep(docker, token2);
      const bx2 = docker(
        'buildx',
        'build',
        '--progress',
        'plain',
        '--cache-from',
        `type=local,src=${ktlCache}`,
        '--output',
        'type=cacheonly',
        ctx2,
      );
      expect(bx2.status).toBe(0);
      expect(cachedStep(bx2.stderr, token2)).toBe(true);
      expect(ran(bx2.stderr, token2)).toBe(false);
    },
    180_000,
  );
});
