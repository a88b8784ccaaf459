/**
 * What the old-engine compatibility target (scripts/rig-compat.sh: Debian bookworm's Docker
 * 20.10, BuildKit v0.8, graphdriver image store) cannot do is refused before anything is
 * built, on the host and in the sandbox: exit 2, the engine named by version, what to do
 * instead. (What it can do runs in the integration suites, per engine: build.test.ts,
 * build-cache.test.ts, build-ssh.test.ts, build-sandbox.test.ts and the buildkit-client
 * *.int.test.ts; each case skipped there names the limit refused here.)
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { gate, testEngines } from '../../buildkit-client/test/engines';
import { ktl, repoRoot } from './helpers';
import { craftedCache } from './oci-cache-fixture';

const compat = (await testEngines()).find((e) => e.id === 'compat')!;
const bwrap = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).stdout.trim();
const dir = mkdtempSync(join(tmpdir(), 'ktl-compat-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hello = join(repoRoot, 'testdata', 'build', 'hello');
const engine = `Docker ${compat.version}, API ${compat.api}`;
const registry = compat.registry;

/** Every file under `d` (the sandboxed build makes an export's directory to bind it). */
const filesUnder = (d: string): string[] =>
  !existsSync(d)
    ? []
    : readdirSync(d, { recursive: true, encoding: 'utf8' }).filter(
        (p) => !statSync(join(d, p)).isDirectory(),
      );

const modes: Array<[string, Record<string, string>, string]> = [
  ['on the host', { KTL_SANDBOX_DISABLE: '1' }, ''],
  [
    'in the sandbox',
    { KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' },
    bwrap ? '' : ' [skipped: bwrap is not installed]',
  ],
];

/** The command line asking for what the engine lacks, and the start of ktl's refusal. */
const MULTI = 'linux/amd64,linux/arm64';

const refusals: Array<[string, (out: string) => string[], string]> = [
  [
    'a multi-platform image loaded into the engine',
    () => ['--platform', MULTI, '-t', 'ktl-compat-multi:1', '--load'],
    `ERROR: this engine (${engine}) keeps images in a graphdriver store, whose moby exporter cannot store a multi-platform image (--platform ${MULTI})`,
  ],
  [
    'a multi-platform image pushed',
    () => ['--platform', MULTI, '-t', `${registry}/ktltest/compat-multi:1`, '--push'],
    `ERROR: this engine (${engine}) keeps images in a graphdriver store, whose moby exporter cannot push a multi-platform image`,
  ],
  [
    'attestations (--provenance)',
    (out) => ['--provenance', 'mode=max', '-o', join(out, 'prov')],
    `ERROR: this engine (${engine}) keeps images in a graphdriver store and cannot make attestations`,
  ],
  [
    'a merged multi-platform local export (platform-split=false)',
    (out) => [
      '--platform',
      MULTI,
      '-o',
      `type=local,dest=${join(out, 'merge')},platform-split=false`,
    ],
    `ERROR: this engine (${engine}) ignores platform-split=false and would write a directory per platform`,
  ],
  [
    'an oci image archive',
    (out) => ['-o', `type=oci,dest=${join(out, 'image.tar')}`],
    `ERROR: this engine (${engine}) keeps images in a graphdriver store, which has no oci exporter\nhint: use --load and \`docker save\``,
  ],
  [
    'a docker image archive',
    (out) => ['-t', 'x:1', '-o', `type=docker,dest=${join(out, 'image.tar')}`],
    `ERROR: this engine (${engine}) keeps images in a graphdriver store, which has no docker exporter\n`,
  ],
  [
    'several outputs',
    (out) => ['-o', join(out, 'files'), '-o', `type=tar,dest=${join(out, 'files.tar')}`],
    `ERROR: this engine (${engine}) exports one output per build; several need Docker 26+ (API 1.45)\nhint: give one -o/--load/--push`,
  ],
  [
    'a registry cache export',
    (out) => [
      '-o',
      join(out, 'files'),
      '--cache-to',
      `type=registry,ref=${registry}/ktltest/compat-cache:x,mode=max`,
    ],
    `ERROR: this engine (${engine}) keeps images in a graphdriver store, whose builder exports cache only inline: --cache-to type=registry is not available there\nhint: use --cache-to type=inline with --push`,
  ],
  [
    'a local cache export',
    (out) => ['-o', join(out, 'files'), '--cache-to', `type=local,dest=${join(out, 'cache')}`],
    `ERROR: this engine (${engine}) keeps images in a graphdriver store, whose builder exports cache only inline: --cache-to type=local is not available there\nhint: use --cache-to type=inline with --push`,
  ],
  [
    'a named context (--build-context)',
    (out) => ['-o', join(out, 'files'), '--build-context', `extra=${hello}`],
    `ERROR: this engine (${engine}) has a Dockerfile frontend without named contexts: --build-context extra=... would be ignored (and COPY --from=extra look for an image of that name); they need Docker 23+ (API 1.42)\n`,
  ],
];

describe.each(modes)(
  'on Docker 20.10 (compat) %s, refused up front with the engine named',
  (mode, modeEnv, noMode) => {
    const g = gate(compat);
    const t = g.why === '' && noMode !== '' ? test.skip : g.test;
    const why = g.why || noMode;
    t.each(refusals)(`%s: exit 2, nothing built or written${why}`, (name, args, message) => {
      const out = join(dir, `${mode}-${name}`.replace(/\W+/g, '-'));
      const r = ktl(['build', hello, ...args(out)], {
        env: { DOCKER_HOST: compat.dockerHost, BUILDKIT_HOST: '', ...modeEnv },
      });
      expect(r.stderr).toContain(message);
      expect(r.code).toBe(2);
      expect(r.stderr).not.toMatch(/^#\d/m); // no build step started
      expect(filesUnder(out)).toEqual([]);
    });
  },
);

describe.each(modes)('on Docker 20.10 (compat) %s, what it can do', (mode, modeEnv, noMode) => {
  const g = gate(compat);
  const t = g.why === '' && noMode !== '' ? test.skip : g.test;
  const why = g.why || noMode;
  t(
    `a multi-platform local export works (a directory per platform); the metadata file is buildx's for this engine (no history API: no provenance)${why}`,
    () => {
      const ctx = join(dir, `multi-${mode.replace(/\W+/g, '-')}`);
      mkdirSync(ctx, { recursive: true });
      writeFileSync(
        join(ctx, 'Dockerfile'),
        `FROM --platform=$BUILDPLATFORM ${compat.baseImage} AS b\nARG TARGETPLATFORM\nRUN echo $TARGETPLATFORM > /p\nFROM scratch\nCOPY --from=b /p /p\n`,
      );
      const out = join(ctx, 'out');
      const meta = join(ctx, 'meta.json');
      const r = ktl(
        [
          'build',
          '--platform',
          MULTI,
          '-o',
          `type=local,dest=${out}`,
          '--metadata-file',
          meta,
          ctx,
        ],
        { env: { DOCKER_HOST: compat.dockerHost, BUILDKIT_HOST: '', ...modeEnv } },
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
  (compat.buildx ? t : test.skip)(
    `--push through the engine: the metadata file reads as buildx's for the same push (the registry's manifest digest; the image id as config digest), byte for byte but the build ref${why || (compat.buildx ? '' : ' [skipped: KTL_RIG_BUILDX missing]')}`,
    () => {
      const tag = `push-meta-${mode.replace(/\W+/g, '-')}`;
      const ctx = join(dir, tag);
      mkdirSync(ctx, { recursive: true });
      writeFileSync(join(ctx, 'Dockerfile'), `FROM ${compat.baseImage}\nRUN echo ${tag} > /x\n`);
      const repo = `${registry}/ktltest/compat-meta`;
      const meta = join(ctx, 'meta.json');
      const r = ktl(['build', '-t', `${repo}:${tag}`, '--push', '--metadata-file', meta, ctx], {
        env: { DOCKER_HOST: compat.dockerHost, BUILDKIT_HOST: '', ...modeEnv },
      });
      expect(r.code).toBe(0);
      const bxMeta = join(ctx, 'meta-buildx.json');
      const bx = spawnSync(
        compat.buildx!,
        ['build', '-t', `${repo}:${tag}-buildx`, '--push', '--metadata-file', bxMeta, ctx],
        {
          env: {
            ...process.env,
            DOCKER_HOST: compat.dockerHost,
            DOCKER_CONFIG: compat.dockerConfig ?? '',
          },
          encoding: 'utf8',
          timeout: 120_000,
        },
      );
      expect(bx.status).toBe(0);
      const refLine = /"buildx\.build\.ref": "[^"]*"/;
      const ours = readFileSync(meta, 'utf8');
      expect(ours.replace(refLine, '')).toBe(readFileSync(bxMeta, 'utf8').replace(refLine, ''));
      const m = JSON.parse(ours) as Record<string, string>;
      expect(Object.keys(m)).toEqual([
        'buildx.build.ref',
        'containerimage.config.digest',
        'containerimage.digest',
      ]);
      expect(m['containerimage.digest']).not.toBe(m['containerimage.config.digest']);
    },
    120_000,
  );
  t(
    `--cache-from type=local: BuildKit v0.8 reads the cache manifest through the session's content store${why}`,
    () => {
      // No engine here writes a cache BuildKit v0.8's keys would match (this one exports none,
      // and v0.13's keys differ), so this proves the import path, not a hit: the daemon finds
      // the manifest and its cache config in the directory and reads them through ktl.
      const src = craftedCache(join(dir, `crafted-${mode.replace(/\W+/g, '-')}`));
      const before = readFileSync(join(src, 'index.json'), 'utf8');
      const r = ktl(
        ['build', hello, '--progress', 'plain', '--cache-from', `type=local,src=${src}`],
        {
          env: { DOCKER_HOST: compat.dockerHost, BUILDKIT_HOST: '', ...modeEnv },
        },
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
