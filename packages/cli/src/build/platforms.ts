/**
 * `--platform` values and what a builder can do with several of them.
 *
 * Values are normalized the way containerd's platform parser does (and so buildx, which sends
 * the normalized form): `linux/x86_64` is `linux/amd64`, `linux/arm64/v8` is `linux/arm64`,
 * `linux/arm` is `linux/arm/v7`. Two spellings of one platform are one platform.
 *
 * A multi-platform build makes one result per platform. What each engine can do with that:
 * - local and tar exports: a directory per platform (`linux_amd64/`, ...) on every engine;
 *   `platform-split=false` (local) merges them instead, from BuildKit v0.12 (Docker 25, API
 *   1.44) on; older builders ignore the option and split anyway, so it is refused there.
 * - images (--load, --push, type=image, type=oci): an image index, with the containerd image
 *   store or buildkitd. A graphdriver engine's moby exporter stores one image per build and
 *   fails at export time ("exporting multiple references to image store is currently
 *   unsupported"): refused before the build.
 * - docker archives (type=docker): the docker image format has no manifest list; refused on
 *   every engine, as buildx does. Attestations make an index too, so the same holds for them.
 * Building for a platform other than the builder's own needs emulation (qemu/binfmt) only for
 * RUN steps that execute the target's binaries; ktl leaves that to the builder.
 */
import {
  apiAtLeast,
  type BuildkitConnection,
  BuildkitError,
  describeEngine,
  engineVersions,
  imageStoreKind,
} from '@ktl/buildkit-client';
import type { BuildOptions } from './options';
import type { OutputSpec } from './output-spec';
import { BuildUsageError } from './usage-error';

const SHAPE = /^[A-Za-z0-9_]+\/[A-Za-z0-9_-]+(\/[A-Za-z0-9_.]+)?$/;

function normalizeArch(arch: string, variant: string): [string, string] {
  switch (arch) {
    case 'i386':
      return ['386', ''];
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return ['amd64', variant === 'v1' ? '' : variant];
    case 'aarch64':
    case 'arm64':
      if (['8', 'v8', 'v8.0'].includes(variant)) return ['arm64', ''];
      if (['9', '9.0', 'v9.0'].includes(variant)) return ['arm64', 'v9'];
      return ['arm64', variant];
    case 'armhf':
      return ['arm', 'v7'];
    case 'armel':
      return ['arm', 'v6'];
    case 'arm':
      if (variant === '' || variant === '7') return ['arm', 'v7'];
      if (['5', '6', '8'].includes(variant)) return ['arm', `v${variant}`];
      return ['arm', variant];
    default:
      return [arch, variant];
  }
}

/** One `--platform` value, normalized; throws a BuildUsageError naming the value. */
export function normalizePlatform(value: string): string {
  const v = value.trim();
  if (v === 'local') return v;
  if (!SHAPE.test(v)) {
    throw new BuildUsageError(
      '--platform',
      value,
      'expected OS/ARCH[/VARIANT]',
      'e.g. --platform linux/amd64,linux/arm64',
    );
  }
  const [os, arch, variant] = v.toLowerCase().split('/') as [string, string, string | undefined];
  const [a, va] = normalizeArch(arch, variant ?? '');
  return [os === 'macos' ? 'darwin' : os, a, va].filter((x) => x !== '').join('/');
}

/** `--platform` values (repeated flags, each a comma list), normalized, duplicates dropped. */
export function parsePlatforms(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of values.flatMap((s) => s.split(','))) {
    const n = normalizePlatform(p);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

/**
 * What no builder can do, checked with the command line alone: a docker archive of several
 * platforms or with attestations (both make an image index, which that format cannot hold).
 */
export function checkPlatformOutputs(
  o: Pick<BuildOptions, 'platforms' | 'attests' | 'outputs'>,
): void {
  const multi = o.platforms.length > 1;
  const attests = Object.keys(o.attests).length > 0;
  const archive = o.outputs.find(
    (x): x is Extract<OutputSpec, { dest: string }> => x.type === 'docker',
  );
  if (archive && (multi || attests)) {
    throw new BuildUsageError(
      '--output',
      `type=docker,dest=${archive.dest}`,
      multi
        ? `the docker image format holds one image, not a multi-platform index (--platform ${o.platforms.join(',')})`
        : 'the docker image format cannot carry attestations (they make an image index)',
      'use -o type=oci,dest=FILE (docker load reads it on engines with the containerd image store)',
    );
  }
}

/** A local output merging the platforms (`platform-split=false`). */
const mergesPlatforms = (o: BuildOptions) =>
  o.outputs.some(
    (x) =>
      x.type === 'local' && /^(0|f|F|FALSE|false|False)$/.test(x.attrs['platform-split'] ?? 'true'),
  );

/**
 * Refuses, before the build, what the builder cannot do with these platforms and attestations
 * (see the module comment); passes everything else. A BuildkitError E_UNSUPPORTED (exit 2).
 */
export async function checkPlatformSupport(
  o: BuildOptions,
  conn: BuildkitConnection,
): Promise<void> {
  const multi = o.platforms.length > 1;
  const attests = Object.keys(o.attests).length > 0;
  if (!multi && !attests && !mergesPlatforms(o)) return;
  const docker = conn.address.startsWith('docker://');
  const kind = imageStoreKind(conn.address, await conn.listWorkers());
  if (kind === 'docker-graphdriver') {
    const engine = await describeEngine(conn.address, conn.tls);
    const images = o.outputs.filter((x) => x.type === 'image');
    if (multi && images.length > 0) {
      const what = images.some((x) => x.push) ? 'push' : 'store';
      throw new BuildkitError(
        `this engine (${engine}) keeps images in a graphdriver store, whose moby exporter cannot ${what} a multi-platform image (--platform ${o.platforms.join(',')})`,
        {
          code: 'E_UNSUPPORTED',
          hint: 'build one platform per run, or export the files with -o type=local|tar (a directory per platform); multi-platform images need an engine with the containerd image store (Docker 24+ with "containerd-snapshotter") or buildkitd',
        },
      );
    }
    if (attests) {
      throw new BuildkitError(
        `this engine (${engine}) keeps images in a graphdriver store and cannot make attestations (--attest / --provenance)`,
        {
          code: 'E_UNSUPPORTED',
          hint: 'drop --attest/--provenance, or use an engine with the containerd image store (Docker 24+ with "containerd-snapshotter") or buildkitd v0.11+',
        },
      );
    }
  }
  if (multi && mergesPlatforms(o)) {
    // platform-split arrived in BuildKit v0.12 (Docker 25, API 1.44); before, it is ignored.
    if (docker) {
      const api = (await engineVersions(conn.address, conn.tls))?.api;
      if (api !== undefined && !apiAtLeast(api, [1, 44])) {
        throw new BuildkitError(
          `this engine (${await describeEngine(conn.address, conn.tls)}) ignores platform-split=false and would write a directory per platform`,
          {
            code: 'E_UNSUPPORTED',
            hint: 'drop platform-split=false (the files land in linux_amd64/, linux_arm64/, ...), or use Docker 25+ (BuildKit v0.12)',
          },
        );
      }
    } else {
      const v = await conn.info().catch(() => undefined);
      const version = v?.version ?? 'before v0.11';
      const known = /^v\d/.test(version) && !/^v0\.0\.0/.test(version);
      if (v === undefined || (known && !apiAtLeast(version, [0, 12]))) {
        throw new BuildkitError(
          `this BuildKit (${version}) ignores platform-split=false and would write a directory per platform`,
          { code: 'E_UNSUPPORTED', hint: 'drop platform-split=false, or use buildkitd v0.12+' },
        );
      }
    }
  }
}

/**
 * Whether the builder makes attestations, as buildx decides it for its default provenance: a
 * Docker engine with the containerd image store (a graphdriver one cannot), a buildkitd from
 * v0.11 (the `exporter.image.attestations` capability).
 */
export async function canAttest(conn: BuildkitConnection): Promise<boolean> {
  if (imageStoreKind(conn.address, await conn.listWorkers()) === 'docker-graphdriver') return false;
  if (conn.address.startsWith('docker://')) return true;
  const v = await conn.info().catch(() => undefined);
  return v !== undefined && /^v\d/.test(v.version) && apiAtLeast(v.version, [0, 11]);
}
