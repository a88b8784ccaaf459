/**
 * The client's share of a `local` cache (buildx's `--cache-to type=local,dest=DIR` and
 * `--cache-from type=local,src=DIR`), around the content store the session serves:
 * - before an import, the cache manifest's digest is looked up in DIR's `index.json` by tag
 *   (default `latest`) and sent to the daemon in the import's `digest` attribute;
 * - after an export, the daemon reports the manifest it wrote (`cache.manifest` in the
 *   exporter response) and the client records it in DEST's `index.json` under the tag,
 *   replacing the entry that had that tag, and writes `oci-layout`.
 *
 * Both files are read without following links and written by rename from a fresh temporary
 * file, and the manifest is only recorded once its blob is in DEST with the right bytes: in a
 * sandboxed build the directory was written by the jailed process, and the process doing this
 * (outside the jail) must not be led through a link it planted. For the same reason DEST is
 * pinned before the build (`pinDirectory`): an open directory, reached afterwards through
 * `/proc/self/fd/N`, so that swapping DEST itself for a link during the build (possible when
 * its parent is writable in the jail too) cannot send these writes elsewhere.
 */
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  realpathSync,
} from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildkitError } from './errors';
import { nodeCrypto } from './lazy-node';
import { GrpcStatusError } from './session/grpc-server';
import { OciLayoutStore, parseDigest } from './session/oci-store';

/** The store id a local cache goes by on the session (BuildKit's `local:` + the directory). */
export function localCacheStoreId(dir: string): string {
  return `local:${dir}`;
}

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const MAX_INDEX_BYTES = 16 * 1024 * 1024;

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  [k: string]: unknown;
}

interface LayoutIndex {
  schemaVersion: number;
  manifests: Descriptor[];
  [k: string]: unknown;
}

function isDescriptor(v: unknown): v is Descriptor {
  if (typeof v !== 'object' || v === null) return false;
  const d = v as Record<string, unknown>;
  return (
    typeof d.digest === 'string' &&
    typeof d.size === 'number' &&
    Number.isSafeInteger(d.size) &&
    (d.mediaType === undefined || typeof d.mediaType === 'string') &&
    (d.annotations === undefined ||
      (typeof d.annotations === 'object' &&
        d.annotations !== null &&
        Object.values(d.annotations).every((x) => typeof x === 'string')))
  );
}

/**
 * `DIR/index.json`, parsed and checked; undefined when DIR or the file does not exist. A link
 * in its place, or something that is not an OCI index, is an error.
 */
export function readLayoutIndex(
  dir: string,
  opts: { pinned?: string } = {},
): LayoutIndex | undefined {
  let root: string;
  try {
    root = opts.pinned ?? realpathSync(dir);
  } catch {
    return undefined;
  }
  const path = join(root, 'index.json');
  const shown = join(dir, 'index.json');
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') {
      throw new BuildkitError(
        `${shown} is a symbolic link; ktl does not follow links in a cache directory`,
        {
          code: 'E_UNSUPPORTED',
          hint: 'use a cache directory written by ktl or buildx, or remove the link',
        },
      );
    }
    throw new BuildkitError(`cannot read ${shown}: ${(e as Error).message}`, {
      code: 'E_UNSUPPORTED',
    });
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_INDEX_BYTES) {
      throw new BuildkitError(
        `${shown} is ${st.isFile() ? `${st.size} bytes, more than an index can be` : 'not a regular file'}`,
        { code: 'E_UNSUPPORTED' },
      );
    }
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, n);
      if (r === 0) break;
      n += r;
    }
    text = buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new BuildkitError(`${shown} is not JSON: ${(e as Error).message}`, {
      code: 'E_UNSUPPORTED',
    });
  }
  const idx = parsed as Partial<LayoutIndex> | null;
  if (
    typeof idx !== 'object' ||
    idx === null ||
    (idx.manifests !== undefined &&
      (!Array.isArray(idx.manifests) || !idx.manifests.every(isDescriptor)))
  ) {
    throw new BuildkitError(`${shown} is not an OCI image index (manifests[] of descriptors)`, {
      code: 'E_UNSUPPORTED',
    });
  }
  return { ...idx, schemaVersion: idx.schemaVersion ?? 2, manifests: idx.manifests ?? [] };
}

export type LocalImport =
  | { readonly found: true; readonly digest: string }
  | { readonly found: false; readonly reason: string };

/**
 * The cache manifest to import from `src`, by tag (`latest` unless given). A missing
 * directory or index is `found: false` (buildx then builds without it, with a warning); an
 * index without the tag is an error, as in buildx.
 */
export function resolveLocalCacheImport(src: string, tag = 'latest'): LocalImport {
  const idx = readLayoutIndex(src);
  if (idx === undefined) {
    return { found: false, reason: `${join(src, 'index.json')} does not exist` };
  }
  const m = idx.manifests.find((x) => x.annotations?.[REF_NAME_ANNOTATION] === tag);
  if (!m) {
    const tags = idx.manifests.map((x) => x.annotations?.[REF_NAME_ANNOTATION]).filter(Boolean);
    throw new BuildkitError(
      `local cache ${src} has no manifest tagged "${tag}" in its index.json${tags.length > 0 ? ` (tags: ${tags.join(', ')})` : ''}`,
      {
        code: 'E_UNSUPPORTED',
        hint: 'name the tag the cache was exported with (tag=) or the manifest itself (digest=sha256:...)',
      },
    );
  }
  if (!parseDigest(m.digest)) {
    throw new BuildkitError(`${join(src, 'index.json')}: "${m.digest}" is not a digest`, {
      code: 'E_UNSUPPORTED',
    });
  }
  return { found: true, digest: m.digest };
}

/** A directory held open: `path` reaches it whatever its name points at later. */
export interface PinnedDirectory {
  readonly dir: string;
  /** `/proc/self/fd/N` (or the real path where /proc is not mounted). */
  readonly path: string;
  close(): void;
}

/**
 * Creates `dir` when missing (buildx does too) and holds it open. The user's path is resolved
 * here, once, before the build starts: what it names at that moment is what gets written.
 */
export function pinDirectory(dir: string): PinnedDirectory {
  let fd: number;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (e) {
    throw new BuildkitError(`local cache export to ${dir}: ${(e as Error).message}`, {
      code: 'E_EXPORT',
      cause: e,
      hint: 'dest= must be a directory you can create and write',
    });
  }
  const viaProc = `/proc/self/fd/${fd}`;
  const path = existsSync(viaProc) ? viaProc : realpathSync(dir);
  let open = true;
  return {
    dir,
    path,
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** Writes `data` to `dir/name` through a fresh temporary file and a rename. */
async function replaceFile(dir: string, name: string, data: string): Promise<void> {
  const tmp = join(
    dir,
    `.${name}.ktl-${process.pid}-${nodeCrypto().randomBytes(6).toString('hex')}`,
  );
  const fh = await open(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o644,
  );
  try {
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    await rename(tmp, join(dir, name));
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Records an exported cache manifest in `dest`'s index under `tag`, once its blob is there and
 * holds the bytes its digest names. `descriptorJson` is the exporter response's
 * `cache.manifest`.
 */
export async function recordLocalCacheExport(
  dest: string,
  tag: string,
  descriptorJson: string,
  pinned?: PinnedDirectory,
): Promise<{ digest: string }> {
  const root = pinned?.path ?? realpathSync(dest);
  // Messages name the directory as the user typed it, not /proc/self/fd/N.
  const shown = (m: string) => m.split(root).join(dest);
  const fail = (why: string, cause?: unknown) =>
    new BuildkitError(shown(`local cache export to ${dest}: ${why}`), { code: 'E_EXPORT', cause });
  let desc: unknown;
  try {
    desc = JSON.parse(descriptorJson);
  } catch (e) {
    throw fail(`the builder's cache manifest descriptor is not JSON`, e);
  }
  if (!isDescriptor(desc) || !parseDigest(desc.digest)) {
    throw fail(`the builder's cache manifest descriptor is not a descriptor: ${descriptorJson}`);
  }
  try {
    const store = OciLayoutStore.open(root, { writable: false, pinned: true });
    const info = await store.info(desc.digest);
    if (info.size !== desc.size) {
      throw fail(
        `manifest ${desc.digest} is ${info.size} bytes there, the builder said ${desc.size}`,
      );
    }
    await store.verifyBlob(desc.digest);
  } catch (e) {
    if (BuildkitError.is(e)) throw e;
    throw fail(
      `the cache manifest ${desc.digest} is not in the directory: ${e instanceof GrpcStatusError ? e.message : String(e)}`,
      e,
    );
  }
  const idx = readLayoutIndex(dest, { pinned: root }) ?? { schemaVersion: 2, manifests: [] };
  const entry: Descriptor = {
    ...desc,
    annotations: { ...(desc.annotations ?? {}), [REF_NAME_ANNOTATION]: tag },
  };
  idx.manifests = [
    ...idx.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== tag),
    entry,
  ];
  await replaceFile(root, 'oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await replaceFile(root, 'index.json', JSON.stringify(idx));
  return { digest: desc.digest };
}
