/**
 * From `ktl build`'s outputs to the exporters the connected builder has. Images go to the
 * builder's own store: on a Docker engine that is the engine's image store (`--load`), through
 * the `image` exporter with the containerd store or `moby` on a graphdriver engine.
 */
import {
  type BuildkitConnection,
  BuildkitError,
  type CacheSpec,
  describeEngine,
  type ExportSpec,
  imageExporterName,
  imageStoreKind,
  isLoopbackRegistry,
  parseImageName,
} from '@ktl/buildkit-client';
import type { BuildOptions } from './options';
import type { OutputSpec } from './output-spec';
import { BuildUsageError } from './usage-error';

type ImageOutput = Extract<OutputSpec, { type: 'image' }>;

function imageAttrs(o: ImageOutput): Record<string, string> {
  const attrs: Record<string, string> = {};
  if (o.names.length > 0) attrs.name = o.names.join(',');
  if (o.push) {
    attrs.push = 'true';
    // Loopback registries speak plain HTTP; nothing between us and them to protect against.
    if (o.names.every((n) => isLoopbackRegistry(parseImageName(n).domain))) {
      attrs['registry.insecure'] = 'true';
    }
  }
  attrs['oci-mediatypes'] = 'true';
  return { ...attrs, ...o.attrs };
}

/**
 * The exporters for the outputs, in their order (FileSend targets are matched by index).
 * Without `conn` (a process that only serves the session), image outputs keep the `image`
 * name: only their position matters there.
 */
export async function toExportSpecs(
  o: BuildOptions,
  conn?: BuildkitConnection,
): Promise<ExportSpec[]> {
  const images = o.outputs.filter((x): x is ImageOutput => x.type === 'image');
  let exporter: 'image' | 'moby' = 'image';
  const archives = o.outputs.filter((x) => x.type === 'oci' || x.type === 'docker');
  if (archives.length > 0 && conn?.address.startsWith('docker://')) {
    const kind = imageStoreKind(conn.address, await conn.listWorkers());
    if (kind === 'docker-graphdriver') {
      // Refused before the build, not after it: the engine would only fail at export time.
      throw new BuildkitError(
        `this engine (${await describeEngine(conn.address, conn.tls)}) keeps images in a graphdriver store, which has no ${archives[0]!.type} exporter`,
        {
          code: 'E_UNSUPPORTED',
          hint: 'use --load and `docker save`, or -o type=tar for the files; or an engine with the containerd image store (Docker 24+ with "containerd-snapshotter")',
        },
      );
    }
  }
  if (images.length > 0 && conn) {
    const kind = imageStoreKind(conn.address, await conn.listWorkers());
    if (kind === 'buildkitd' && images.some((x) => x.load)) {
      throw new BuildUsageError(
        '--load',
        undefined,
        `${conn.address} is buildkitd, which has no engine image store to load into`,
        'use -o type=docker,dest=image.tar and `docker load -i image.tar`, or --push',
      );
    }
    exporter = imageExporterName(kind);
  }
  return o.outputs.map((x): ExportSpec => {
    switch (x.type) {
      case 'local':
        return { type: 'local', dest: x.dest, attrs: x.attrs, keepSetid: o.keepSetid };
      case 'tar':
        return { type: 'tar', dest: x.dest, attrs: x.attrs };
      case 'oci':
      case 'docker': {
        // Name the archive's image after -t, so `docker load` tags it.
        const name = o.tags.length > 0 && !x.attrs.name ? { name: o.tags.join(',') } : {};
        return { type: x.type, dest: x.dest, attrs: { ...name, ...x.attrs } };
      }
      case 'image':
        return { type: exporter, attrs: imageAttrs(x) };
      default:
        // cacheonly: parseBuildOptions leaves it out of `outputs`.
        throw new Error(`no exporter for output type ${x.type}`);
    }
  });
}

/**
 * The `moby` exporter (a graphdriver engine's) stores the image and ignores `push=true`: those
 * names are pushed afterwards through the engine's API (pushThroughEngine), as buildx does
 * with its docker driver. Returns the exporters as sent, without push attributes, and the
 * names to push, in order.
 */
export function splitEnginePushes(specs: readonly ExportSpec[]): {
  exports: ExportSpec[];
  pushes: string[];
} {
  const pushes: string[] = [];
  const exports = specs.map((x): ExportSpec => {
    if (x.type !== 'moby' || x.attrs.push !== 'true') return x;
    const { push: _p, 'registry.insecure': _i, ...attrs } = x.attrs;
    pushes.push(...(attrs.name ?? '').split(',').filter((n) => n !== ''));
    return { type: 'moby', attrs };
  });
  return { exports, pushes };
}

/**
 * Registry caches as the daemon gets them: a loopback registry speaks plain HTTP, as for image
 * pushes (`registry.insecure`, which the registry cache importer and exporter both read).
 */
export function toCacheSpecs(caches: readonly CacheSpec[]): CacheSpec[] {
  return caches.map((c) => {
    const ref = c.attrs?.ref;
    if (c.type !== 'registry' || ref === undefined) return c;
    const insecure = isLoopbackRegistry(parseImageName(ref).domain);
    return insecure ? { type: c.type, attrs: { ...c.attrs, 'registry.insecure': 'true' } } : c;
  });
}
