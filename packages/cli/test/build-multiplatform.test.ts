/**
 * Multi-platform builds end to end, judged against `docker buildx build` (0.13) on the same
 * engine (the rig's Docker 26.1, containerd image store), on the host and in the sandbox:
 * local exports file by file, tar exports byte for byte, the pushed image index, and the
 * metadata file's keys, shapes and values. No RUN step executes a foreign binary (there is no
 * emulation here): each stage runs on the build platform and writes what the target is.
 * The Docker 20.10 engine's refusals are in compat-engine.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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
import { comparable, snapshot } from '../../buildkit-client/test/tree-snapshot';
import { ktl, readEnvFile } from './helpers';

const rig = readEnvFile();
const dockerHost = rig.KTL_RIG_DOCKER_HOST;
const base = rig.KTL_RIG_BASE_IMAGE;
const registry = rig.KTL_RIG_REGISTRY;
const buildxBin = rig.KTL_RIG_BUILDX;
const ready =
  dockerHost !== undefined &&
  existsSync(dockerHost.replace('unix://', '')) &&
  base !== undefined &&
  registry !== undefined &&
  buildxBin !== undefined &&
  existsSync(buildxBin);
const rigTest = ready ? test : test.skip;
const why = ready
  ? ''
  : ' [skipped: the BuildKit rig (with docker-buildx) is not up; run scripts/rig.sh up]';
const bwrap = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).stdout.trim();
const modes: [string, Record<string, string>, typeof test | typeof test.skip, string][] = [
  ['on the host', { KTL_SANDBOX_DISABLE: '1' }, rigTest, why],
  [
    'in the sandbox',
    { KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' },
    bwrap ? rigTest : test.skip,
    why || (bwrap ? '' : ' [skipped: bwrap is not installed]'),
  ],
];

const dir = mkdtempSync(join(tmpdir(), 'ktl-multi-'));
const noAuth = join(dir, 'docker-config');
mkdirSync(noAuth);
const made: string[] = [];
const docker = (...args: string[]) =>
  spawnSync(rig.KTL_RIG_DOCKER_CLI ?? 'docker', ['-H', dockerHost ?? '', ...args], {
    encoding: 'utf8',
  });
afterAll(() => {
  if (made.length > 0) docker('image', 'rm', '-f', ...made);
  rmSync(dir, { recursive: true, force: true });
});
const uniq = () => randomBytes(4).toString('hex');
const PLATFORMS = 'linux/amd64,linux/arm64';

function context(name: string, dockerfile: string[]): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'Dockerfile'), [...dockerfile, ''].join('\n'));
  return d;
}
/** The brief's build: one file, /p, holding the target platform. */
const platformFile = () =>
  context('p', [
    `FROM --platform=$BUILDPLATFORM ${base} AS b`,
    'ARG TARGETPLATFORM',
    'RUN echo $TARGETPLATFORM > /p',
    'FROM scratch',
    'COPY --from=b /p /p',
  ]);

const run = (args: string[], extra: Record<string, string>) =>
  ktl(['build', ...args], {
    env: { DOCKER_HOST: dockerHost ?? '', BUILDKIT_HOST: '', DOCKER_CONFIG: noAuth, ...extra },
  });

function buildx(args: string[]): string {
  const r = spawnSync(buildxBin!, ['build', '--progress=plain', ...args], {
    env: {
      ...process.env,
      DOCKER_HOST: dockerHost,
      DOCKER_CONFIG: rig.KTL_RIG_DOCKER_CONFIG ?? noAuth,
    },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`buildx failed (${r.status}): ${r.stderr}`);
  return r.stderr;
}

type Meta = Record<string, unknown>;
const readMeta = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Meta;
const REF = /^[^/]+\/[^/]+\/[0-9a-z]{25}$/;
const withoutProvenance = (m: Meta) =>
  Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('buildx.build.provenance')));

describe.each(modes)('multi-platform ktl build %s', (mode, modeEnv, modeTest, modeWhy) => {
  const tag = mode.replace(/ /g, '-');

  modeTest(
    `--platform repeated: a local export has a directory per platform and a tar export the same, as buildx's; the metadata file has buildx's keys${modeWhy}`,
    () => {
      const ctx = platformFile();
      const ours = join(dir, `local-ktl-${tag}`);
      const tarOurs = join(dir, `ktl-${tag}.tar`);
      const meta = join(dir, `meta-${tag}`, 'local.json'); // its directory does not exist yet
      // Repeated flags, and the context after them (docker's flag style).
      const r = run(
        [
          '--platform',
          'linux/amd64',
          '--platform',
          'linux/arm64',
          '-o',
          `type=local,dest=${ours}`,
          '--metadata-file',
          meta,
          ctx,
        ],
        modeEnv,
      );
      expect(r.stderr).not.toContain('ERROR');
      expect(r.code).toBe(0);
      const theirs = join(dir, `local-buildx-${tag}`);
      buildx(['--platform', PLATFORMS, '-o', `type=local,dest=${theirs}`, ctx]);
      expect(comparable(snapshot(ours))).toEqual(comparable(snapshot(theirs)));
      expect([...snapshot(ours).keys()]).toEqual([
        'linux_amd64',
        'linux_amd64/p',
        'linux_arm64',
        'linux_arm64/p',
      ]);
      expect(readFileSync(join(ours, 'linux_arm64', 'p'), 'utf8')).toBe('linux/arm64\n');
      expect(
        readdirSync(ours, { recursive: true }).filter((n) => /ktl-partial/.test(String(n))),
      ).toEqual([]);

      expect(
        run(['--platform', PLATFORMS, '-o', `type=tar,dest=${tarOurs}`, ctx], modeEnv).code,
      ).toBe(0);
      const tarTheirs = join(dir, `buildx-${tag}.tar`);
      buildx(['--platform', PLATFORMS, '-o', `type=tar,dest=${tarTheirs}`, ctx]);
      expect(readFileSync(tarOurs).equals(readFileSync(tarTheirs))).toBe(true);

      // buildx 0.13 writes only the ref for a local export; buildx 0.14+ (and ktl) add the
      // provenance the builder recorded, per platform.
      const m = readMeta(meta);
      expect(Object.keys(m).sort()).toEqual([
        'buildx.build.provenance/linux/amd64',
        'buildx.build.provenance/linux/arm64',
        'buildx.build.ref',
      ]);
      expect(m['buildx.build.ref']).toMatch(REF);
      for (const p of ['amd64', 'arm64']) {
        const prov = m[`buildx.build.provenance/linux/${p}`] as Meta;
        expect(prov.buildType).toBe('https://mobyproject.org/buildkit@v1');
        // min: the build's LLB and its timing stay out.
        expect(Object.keys(prov).sort()).toEqual(['buildType', 'invocation', 'materials']);
        expect(JSON.stringify(prov.materials)).toContain('ktl/busybox');
      }
    },
    180_000,
  );

  modeTest(
    `platform-split=false merges the platforms as buildx does; a path both have fails the export (exit 4) and leaves nothing partial${modeWhy}`,
    () => {
      const ctx = context(`merge-${tag}`, [
        `FROM --platform=$BUILDPLATFORM ${base} AS b`,
        'ARG TARGETPLATFORM TARGETARCH',
        'RUN mkdir -p /out/d && echo $TARGETPLATFORM > /out/d/$TARGETARCH',
        'FROM scratch',
        'COPY --from=b /out/ /',
      ]);
      const ours = join(dir, `merged-ktl-${tag}`);
      const r = run(
        ['--platform', PLATFORMS, '-o', `type=local,dest=${ours},platform-split=false`, ctx],
        modeEnv,
      );
      expect(r.code).toBe(0);
      const theirs = join(dir, `merged-buildx-${tag}`);
      buildx([
        '--platform',
        PLATFORMS,
        '-o',
        `type=local,dest=${theirs},platform-split=false`,
        ctx,
      ]);
      expect(comparable(snapshot(ours))).toEqual(comparable(snapshot(theirs)));
      expect([...snapshot(ours).keys()]).toEqual(['d', 'd/amd64', 'd/arm64']);

      const clash = join(dir, `clash-${tag}`);
      const c = run(
        [
          '--platform',
          PLATFORMS,
          '-o',
          `type=local,dest=${clash},platform-split=false`,
          platformFile(),
        ],
        modeEnv,
      );
      expect(c.code).toBe(4);
      expect(c.stderr).toMatch(
        /cannot overwrite p from linux\/(amd|arm)64 with .* split option is disabled/,
      );
      // Nothing partial; in the sandbox the directory ktl made for the bind goes too when empty.
      const left = existsSync(clash) ? readdirSync(clash, { recursive: true }) : [];
      expect(left.filter((n) => /ktl-partial/.test(String(n)))).toEqual([]);
    },
    180_000,
  );

  modeTest(
    `a pushed multi-platform image is an index of both platforms; its metadata matches buildx's for the same image${modeWhy}`,
    async () => {
      const ctx = platformFile();
      const repo = `ktltest/multi-${tag}`;
      const ref = `${registry}/${repo}:${uniq()}`;
      const meta = join(dir, `push-${tag}.json`);
      // As buildx's below: no provenance attestation (each makes one by default).
      const r = run(
        [
          '--provenance=false',
          '--platform',
          PLATFORMS,
          '-t',
          ref,
          '--push',
          '--metadata-file',
          meta,
          ctx,
        ],
        modeEnv,
      );
      expect(r.stderr).not.toContain('ERROR');
      expect(r.code).toBe(0);
      const res = await fetch(`http://${registry}/v2/${repo}/manifests/${ref.split(':').pop()}`, {
        headers: {
          accept:
            'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json',
        },
      });
      expect(res.status).toBe(200);
      const index = (await res.json()) as {
        mediaType: string;
        manifests: Array<{ platform?: { os: string; architecture: string } }>;
      };
      expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
      expect(
        index.manifests.map((x) => `${x.platform?.os}/${x.platform?.architecture}`).sort(),
      ).toEqual(['linux/amd64', 'linux/arm64']);
      const m = readMeta(meta);
      expect(m['containerimage.digest']).toBe(res.headers.get('docker-content-digest'));
      expect(m['image.name']).toBe(ref);
      expect(m['containerimage.descriptor']).toEqual({
        mediaType: 'application/vnd.oci.image.index.v1+json',
        digest: m['containerimage.digest'],
        size: Number(res.headers.get('content-length')),
      });

      // The same image from buildx, as an OCI archive (buildx's own pushes through the docker
      // driver go through `docker push`, with Docker media types): the same digest, and the
      // same keys but the image name.
      const bxMeta = join(dir, `push-buildx-${tag}.json`);
      buildx([
        '--provenance=false',
        '--platform',
        PLATFORMS,
        '-o',
        `type=oci,dest=${join(dir, `bx-${tag}.oci`)}`,
        '--metadata-file',
        bxMeta,
        ctx,
      ]);
      const bx = readMeta(bxMeta);
      expect(bx['containerimage.digest']).toBe(m['containerimage.digest']);
      expect(Object.keys(withoutProvenance(m)).sort()).toEqual(
        [...Object.keys(bx), 'image.name'].sort(),
      );
      const { annotations: _created, ...bxDesc } = bx['containerimage.descriptor'] as Meta;
      expect(bxDesc).toEqual(m['containerimage.descriptor']);
    },
    180_000,
  );

  modeTest(
    `--provenance mode=max: a provenance.json per platform in the local export, as buildx writes; the metadata file's provenance is the one the build made${modeWhy}`,
    () => {
      const ctx = platformFile();
      const ours = join(dir, `prov-ktl-${tag}`);
      const meta = join(dir, `prov-${tag}.json`);
      const r = run(
        [
          '--provenance',
          'mode=max',
          '--platform',
          PLATFORMS,
          '-o',
          ours,
          '--metadata-file',
          meta,
          ctx,
        ],
        { ...modeEnv, BUILDX_METADATA_PROVENANCE: 'max' },
      );
      expect(r.code).toBe(0);
      const theirs = join(dir, `prov-buildx-${tag}`);
      buildx([
        '--provenance=mode=max',
        '--platform',
        PLATFORMS,
        '-o',
        `type=local,dest=${theirs}`,
        ctx,
      ]);
      expect([...snapshot(ours).keys()]).toEqual([...snapshot(theirs).keys()]);
      expect([...snapshot(ours).keys()]).toContain('linux_arm64/provenance.json');
      const m = readMeta(meta);
      for (const p of ['amd64', 'arm64']) {
        const exported = JSON.parse(
          readFileSync(join(ours, `linux_${p}`, 'provenance.json'), 'utf8'),
        ) as { predicateType: string; predicate: Meta };
        const bxExported = JSON.parse(
          readFileSync(join(theirs, `linux_${p}`, 'provenance.json'), 'utf8'),
        ) as { predicateType: string; predicate: Meta };
        expect(exported.predicateType).toBe(bxExported.predicateType);
        expect(Object.keys(exported.predicate)).toEqual(Object.keys(bxExported.predicate));
        const recorded = m[`buildx.build.provenance/linux/${p}`] as Meta;
        // max: the whole predicate, the same build (invocation id, LLB, inputs) as exported.
        expect(Object.keys(recorded).sort()).toEqual(
          ['buildConfig', 'buildType', 'invocation', 'materials', 'metadata'].sort(),
        );
        expect(recorded.materials).toEqual(exported.predicate.materials);
        expect(recorded.buildConfig).toEqual(exported.predicate.buildConfig);
        expect((recorded.metadata as Meta).buildInvocationID).toBe(
          (exported.predicate.metadata as Meta).buildInvocationID,
        );
      }
    },
    180_000,
  );

  modeTest(
    `--load of a multi-platform image: the engine has it; the metadata file reads as buildx's, byte for byte but the build ref${modeWhy}`,
    () => {
      const ctx = platformFile();
      const name = `ktl-multi-load-${tag}-${uniq()}:1`;
      made.push(name);
      const loaded = join(dir, `load-${tag}.json`);
      const r = run(
        ['--platform', PLATFORMS, '-t', name, '--load', '--metadata-file', loaded, ctx],
        modeEnv,
      );
      expect(r.code).toBe(0);
      const digest = readMeta(loaded)['containerimage.digest'];
      expect(docker('image', 'inspect', '--format', '{{.Id}}', name).stdout.trim()).toBe(digest);

      // buildx's --load (the engine's moby exporter) writes Docker media types; ktl's writes
      // OCI ones unless told otherwise. Told, the two clients make the same image and file.
      const meta = join(dir, `load-docker-types-${tag}.json`);
      const d = run(
        [
          '--provenance=false',
          '--platform',
          PLATFORMS,
          '-o',
          `type=image,name=${name},oci-mediatypes=false`,
          '--metadata-file',
          meta,
          ctx,
        ],
        { ...modeEnv, BUILDX_METADATA_PROVENANCE: 'disabled' },
      );
      expect(d.code).toBe(0);
      const bxMeta = join(dir, `load-buildx-${tag}.json`);
      buildx([
        '--provenance=false',
        '--platform',
        PLATFORMS,
        '-t',
        name,
        '--load',
        '--metadata-file',
        bxMeta,
        ctx,
      ]);
      const ours = readFileSync(meta, 'utf8');
      const theirs = readFileSync(bxMeta, 'utf8');
      const refLine = /"buildx\.build\.ref": "[^"]*"/;
      expect(ours).toMatch(refLine);
      expect(ours.replace(refLine, '')).toBe(theirs.replace(refLine, ''));
      expect(ours).toContain(
        '"mediaType": "application/vnd.docker.distribution.manifest.list.v2+json"',
      );
    },
    180_000,
  );
});

describe('multi-platform refusals on the rig', () => {
  rigTest(
    `a docker archive of several platforms is refused before anything is built (exit 2)${why}`,
    () => {
      const r = run(
        ['--platform', PLATFORMS, '-o', `type=docker,dest=${join(dir, 'd.tar')}`, platformFile()],
        { KTL_SANDBOX_DISABLE: '1' },
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        'the docker image format holds one image, not a multi-platform index (--platform linux/amd64,linux/arm64)',
      );
      expect(r.stderr).toContain('hint: use -o type=oci,dest=FILE');
      expect(r.stderr).not.toMatch(/^#\d/m);
      expect(existsSync(join(dir, 'd.tar'))).toBe(false);
    },
    60_000,
  );
});
