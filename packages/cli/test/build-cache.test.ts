/**
 * `ktl build --cache-to / --cache-from` end to end against each engine (buildkit-client/test/
 * engines.ts) and the rig's registry, on the host and in the sandbox (on the compatibility
 * engine in the sandbox only). Each test proves a cache HIT after the builder's own cache of
 * the expensive step is gone: the step's cache record is pruned by id (only that record; the
 * engines are shared), then the rebuild must show the step CACHED, must not run it (its echo
 * is not in the log) and must produce the very same random stamp the first build wrote.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import {
  type Feature,
  gate,
  type TestEngine,
  testEngines,
} from '../../buildkit-client/test/engines';
import {
  expectRebuiltFromCache,
  expectStamp,
  pruneStep,
  ran,
  stampContext as stampIn,
  stampOf,
} from './cache-steps';
import { ktl } from './helpers';

const engines = await testEngines();
const dir = mkdtempSync(join(tmpdir(), 'ktl-cache-'));
// `buildx du --verbose` on a long-lived rig lists megabytes (Node's default cap is 1 MiB).
const docker = (e: TestEngine, ...args: string[]) =>
  spawnSync(e.dockerCli, ['-H', e.dockerHost, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
const pushed: Array<[TestEngine, string]> = [];
afterAll(() => {
  for (const [e, image] of pushed) docker(e, 'image', 'rm', '-f', image);
  rmSync(dir, { recursive: true, force: true });
});

const noAuth = join(dir, 'docker-config');
mkdirSync(noAuth);
const uniq = () => randomBytes(6).toString('hex');
const runOn = (e: TestEngine) => (args: string[], extra: Record<string, string>) =>
  ktl(['build', ...args], {
    env: {
      DOCKER_HOST: e.dockerHost,
      KTL_SANDBOX_DISABLE: '1',
      BUILDKIT_HOST: '',
      DOCKER_CONFIG: noAuth,
      ...extra,
    },
  });

const bwrap = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).stdout.trim();
const modes: Array<[string, Record<string, string>, string]> = [
  ['on the host', { KTL_SANDBOX_DISABLE: '1' }, ''],
  [
    'in the sandbox',
    { KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' },
    bwrap ? '' : ' [skipped: bwrap is not installed]',
  ],
];
const BANNER = /^Running ktl build inside the sandbox \(/m;

/**
 * A file of the top layer of an image in the rig's registry, read over its HTTP API (schema 2
 * or OCI manifest, or the linux/amd64 one of an index), no engine involved.
 */
async function fileInPushedImage(image: string, file: string): Promise<string> {
  const at = image.indexOf('/');
  const host = image.slice(0, at);
  const [repo, tag] = image.slice(at + 1).split(':') as [string, string];
  const accept = [
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.oci.image.index.v1+json',
  ].join(', ');
  type Manifest = {
    layers?: { digest: string }[];
    manifests?: { digest: string; platform?: { os?: string; architecture?: string } }[];
  };
  const get = async (ref: string) =>
    (await (
      await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { headers: { Accept: accept } })
    ).json()) as Manifest;
  let m = await get(tag);
  if (m.manifests) {
    const amd64 = m.manifests.find(
      (x) => x.platform?.os === 'linux' && x.platform.architecture === 'amd64',
    );
    expect(amd64).toBeDefined();
    m = await get(amd64!.digest);
  }
  const top = m.layers?.at(-1);
  expect(top).toBeDefined();
  const blob = Buffer.from(
    await (await fetch(`http://${host}/v2/${repo}/blobs/${top!.digest}`)).arrayBuffer(),
  );
  const x = spawnSync('tar', ['-xzOf', '-', file], { input: blob, encoding: 'utf8' });
  expect(x.status).toBe(0);
  return x.stdout;
}

describe.each(
  engines.flatMap((e) =>
    modes
      .filter(([m]) => e.id === 'rig' || m === 'in the sandbox')
      .map(([m, env, noMode]) => [e.label, m, e, env, noMode] as const),
  ),
)('ktl build --cache-to/--cache-from on %s %s', (_l, mode, engine, modeEnv, noMode) => {
  const run = runOn(engine);
  const registry = engine.registry;
  /** The engine's gate, then the sandbox runtime's. */
  const gated = (...needs: Feature[]) => {
    const g = gate(engine, ...needs);
    return g.why === '' && noMode !== '' ? { test: test.skip, why: noMode } : g;
  };
  const reg = gated('registry-cache-export');
  const any = gated();

  reg.test(
    `registry cache, mode=max: a rebuild without the local cache reuses the step${reg.why}`,
    () => {
      const token = `tok-${uniq()}`;
      const ctx = stampIn(dir, engines[0]!.baseImage, token);
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

      pruneStep((...a: string[]) => docker(engine, ...a), token);

      expectRebuiltFromCache(
        (a) => run(a, modeEnv),
        ctx,
        `type=registry,ref=${ref}`,
        join(dir, `out-${token}-2`),
        token,
        stampOf(out1),
      );
    },
    180_000,
  );

  any.test(
    `inline cache in a pushed image, imported with --cache-from type=registry,ref=IMAGE${any.why}`,
    async () => {
      const token = `tok-${uniq()}`;
      const ctx = stampIn(dir, engines[0]!.baseImage, token);
      const image = `${registry}/ktltest/inline:${token}`;
      pushed.push([engine, image]);
      // The push is the build's one output (engines before Docker 26 export only one).
      const r1 = run(
        [ctx, '--progress', 'plain', '-t', image, '--push', '--cache-to', 'type=inline'],
        modeEnv,
      );
      expect(r1.code).toBe(0);
      expect(ran(r1.stderr, token)).toBe(true);
      // The image exporter pushes (containerd store); a graphdriver engine, afterwards.
      expect(r1.stderr).toMatch(/^#\d+ (pushing manifest for |pushing \S+ with docker$)/m);
      const stamp = expectStamp(await fileInPushedImage(image, 'stamp'));

      // The engine keeps the pushed image, which holds on to the step's snapshot: drop it
      // there (the registry keeps its copy), then the record itself.
      expect(docker(engine, 'image', 'rm', '-f', image).status).toBe(0);
      pruneStep((...a: string[]) => docker(engine, ...a), token);

      expectRebuiltFromCache(
        (a) => run(a, modeEnv),
        ctx,
        image,
        join(dir, `out-${token}-2`),
        token,
        stamp,
      );
    },
    180_000,
  );
});
