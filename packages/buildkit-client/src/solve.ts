/**
 * solve(): one Dockerfile build on a connected builder, with the context and Dockerfile
 * served from local directories through a session, and outputs exported to us.
 */

import { basename, dirname, resolve } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import type { CredentialStore } from './auth/docker-config';
import { BuildkitError } from './errors';
import {
  type CacheOptionsEntry,
  type Exporter,
  SolveRequest,
  type SolveResponse,
  StatusRequest,
  type StatusResponse,
} from './gen/moby/buildkit/v1/control';
import {
  localCacheStoreId,
  type PinnedDirectory,
  pinDirectory,
  recordLocalCacheExport,
  resolveLocalCacheImport,
} from './local-cache';
import type { AuthAnswerer } from './session/auth-service';
import type { ContentStoreSpec } from './session/content-service';
import { type ExportTarget, exportWriteFailed } from './session/filesend';
import type { SyncProgress } from './session/filesync';
import { parseDigest } from './session/oci-store';
import { BuildSession, newSessionId, type SessionOptions } from './session/session';
import {
  entitlementsFor,
  type FrontendOptions,
  frontendAttrs,
  namedContextDirs,
} from './solve-attrs';
import type { BuildkitConnection } from './transport/connect';
import { errorDetails, fromGrpc, isServiceError } from './transport/grpc-errors';

export type ExportSpec =
  /**
   * Files of the result, written under `dest` (merged into what is there). Regular files lose
   * their setuid and setgid bits unless `keepSetid` (a build must not be able to drop a
   * set-id binary owned by the caller, or by root, into the caller's tree).
   */
  | {
      readonly type: 'local';
      readonly dest: string;
      readonly attrs?: Readonly<Record<string, string>>;
      readonly keepSetid?: boolean;
    }
  /** A tar of the result's files, or an OCI / docker image archive, written to `dest`. */
  | {
      readonly type: 'tar' | 'oci' | 'docker';
      readonly dest: string;
      readonly attrs?: Readonly<Record<string, string>>;
    }
  /**
   * Stored in the builder (and pushed with `push: 'true'`); nothing comes back to us. `moby`
   * is the Docker engine's own exporter (graphdriver engines have no `image` exporter).
   */
  | { readonly type: 'image' | 'moby'; readonly attrs: Readonly<Record<string, string>> }
  /** Any other exporter the daemon knows, sent as given. */
  | {
      readonly type: 'custom';
      readonly name: string;
      readonly attrs: Readonly<Record<string, string>>;
    };

/**
 * A cache to import from or export to (buildx's `--cache-from` / `--cache-to`), attrs as buildx
 * sends them:
 * - `registry` (`ref`, and for exports `mode`, `image-manifest`, `oci-mediatypes`, ...);
 * - `inline`, exports only: the cache metadata rides in the exported image's config;
 * - `local`: an OCI layout directory on this machine (`src` to import, `dest` to export, plus
 *   `tag`, and `digest` for imports), which the daemon reads and writes through a content
 *   store the session serves. The manifest to import is looked up in `src/index.json` by tag
 *   (default `latest`) unless `digest` names it; after an export `dest/index.json` records it.
 */
export interface CacheSpec {
  readonly type: string;
  readonly attrs?: Readonly<Record<string, string>> | undefined;
}

export interface DockerfileBuildOptions extends FrontendOptions {
  readonly contextDir: string;
  /** Default `<contextDir>/Dockerfile`; may be outside the context. */
  readonly dockerfile?: string | undefined;
  readonly exports?: readonly ExportSpec[] | undefined;
  /** Caches whose records the build may reuse (`--cache-from`). */
  readonly cacheImports?: readonly CacheSpec[] | undefined;
  /** Where the build's cache records go (`--cache-to`). */
  readonly cacheExports?: readonly CacheSpec[] | undefined;
  /** Things the caller should tell the user (a `--cache-from` directory with no cache yet). */
  readonly onWarning?: ((message: string) => void) | undefined;
  readonly secrets?: Readonly<Record<string, Uint8Array>> | undefined;
  /**
   * SSH agents for `RUN --mount=type=ssh[,id=ID]`: id → path of the agent's unix socket
   * (buildx's `--ssh default=$SSH_AUTH_SOCK`). The build may list keys and sign, nothing else.
   */
  readonly ssh?: Readonly<Record<string, string>> | undefined;
  /**
   * Registry credentials for pulls and pushes (e.g. `loadDockerConfig()`), or an answerer the
   * session's Auth calls go to (a sandboxed client's relay to the ktl outside).
   */
  readonly auth?: CredentialStore | AuthAnswerer | undefined;
  /** Entitlements beyond what the options imply (`network.host` comes with network: host). */
  readonly entitlements?: readonly string[] | undefined;
  readonly onStatus?: ((s: StatusResponse) => void) | undefined;
  readonly onSync?: ((p: SyncProgress) => void) | undefined;
  /** How the context is looked up while it is listed (WalkOptions.lookup; default `proc`). */
  readonly contextLookup?: 'proc' | 'cwd' | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Build id (default random); Control.Status and build history use it. */
  readonly ref?: string | undefined;
  /**
   * The session is served elsewhere (e.g. by a sandboxed process, with `serveDockerfileSession`
   * and the same options) under this id: the Solve only names it. Secrets, ssh, auth and
   * export targets are then that process's business.
   */
  readonly externalSession?: { readonly id: string } | undefined;
}

export interface SolveResult {
  readonly ref: string;
  /** What the exporters reported, e.g. `containerimage.digest`. */
  readonly exporterResponse: Readonly<Record<string, string>>;
}

/** gRPC UNAVAILABLE: grpc-js's code for a connection that broke under the call. */
const GRPC_UNAVAILABLE = 14;

function solveError(e: unknown): BuildkitError {
  const err = fromGrpc('build', e, 'E_SOLVE');
  if (!isServiceError(e)) return err;
  if (e.code === GRPC_UNAVAILABLE)
    // The builder went away mid-build (killed, restarted, its socket gone): not the build's
    // failure. BuildKit itself answers a build's errors as UNKNOWN, never UNAVAILABLE.
    return new BuildkitError(`the connection to the builder broke during the build: ${e.details}`, {
      code: 'E_GRPC',
      grpcCode: e.code,
      cause: e,
      hint: 'the builder was stopped or restarted, or its socket went away; run the build again once it is back',
    });
  // The last line of BuildKit's message is the useful one; details add the failing step.
  const message = e.details || err.message;
  const details = errorDetails(e);
  return new BuildkitError(message, {
    // An export this client (or the one serving the session) could not write: the build
    // itself succeeded.
    code: exportWriteFailed(message) ? 'E_EXPORT' : 'E_SOLVE',
    grpcCode: e.code,
    cause: e,
    details,
    hint: details.length > 0 ? undefined : err.hint,
  });
}

/**
 * SolveRequest.Cache, plus the `cache-imports` frontend attribute: the Dockerfile frontend
 * only imports what that JSON list names (the daemon does not hand it Cache.Imports). A local
 * import gets its manifest digest from its directory's index.json here; one whose directory
 * has no cache yet is left out with a warning (as buildx does).
 */
export function cacheOptions(opts: Pick<DockerfileBuildOptions, 'cacheImports' | 'cacheExports'>): {
  exports: CacheOptionsEntry[];
  imports: CacheOptionsEntry[];
  frontendAttrs: Record<string, string>;
  warnings: string[];
} {
  const warnings: string[] = [];
  const entry = (what: string, c: CacheSpec): CacheOptionsEntry | undefined => {
    const attrs = { ...(c.attrs ?? {}) };
    if (c.type === 'local') {
      const key = what === 'cache import' ? 'src' : 'dest';
      const dir = attrs[key];
      if (!dir) {
        throw new BuildkitError(`${what} type=local needs ${key}=DIR`, {
          code: 'E_UNSUPPORTED',
          hint: `e.g. type=local,${key}=/tmp/buildcache`,
        });
      }
      attrs[key] = resolve(dir);
      if (what === 'cache import' && !attrs.digest) {
        const found = resolveLocalCacheImport(attrs.src!, attrs.tag || 'latest');
        if (!found.found) {
          warnings.push(
            `local cache import at ${attrs.src} not found (${found.reason}); building without it`,
          );
          return undefined;
        }
        attrs.digest = found.digest;
      }
      if (attrs.digest && !parseDigest(attrs.digest)) {
        throw new BuildkitError(`${what} type=local: digest=${attrs.digest} is not a digest`, {
          code: 'E_UNSUPPORTED',
          hint: "e.g. digest=sha256:<64 hex digits>, as in the cache directory's index.json",
        });
      }
    }
    if (c.type === 'registry' && !attrs.ref) {
      throw new BuildkitError(`${what} type=registry needs ref=`, {
        code: 'E_UNSUPPORTED',
        hint: 'e.g. type=registry,ref=registry.example.com/app:buildcache',
      });
    }
    if (c.type === 'inline' && what === 'cache import') {
      throw new BuildkitError('cache import type=inline does not exist', {
        code: 'E_UNSUPPORTED',
        hint: 'import an inline cache from its image with type=registry,ref=IMAGE',
      });
    }
    return { Type: c.type, Attrs: attrs };
  };
  const present = (e: CacheOptionsEntry | undefined): e is CacheOptionsEntry => e !== undefined;
  const exports = (opts.cacheExports ?? []).map((c) => entry('cache export', c)).filter(present);
  const imports = (opts.cacheImports ?? []).map((c) => entry('cache import', c)).filter(present);
  // The daemon answers a build with one `cache.manifest`, whichever exporter wrote it last:
  // with a second exporter beside a local one, DEST's index could name another's manifest.
  const manifestExports = exports.filter((e) => e.Type !== 'inline');
  if (manifestExports.some((e) => e.Type === 'local') && manifestExports.length > 1) {
    throw new BuildkitError(
      'a local cache export cannot be combined with another cache export (registry or local) in one build',
      {
        code: 'E_UNSUPPORTED',
        hint: "the builder reports one cache manifest per build, which the local directory's index.json must name; export the other cache in a second (cached) build",
      },
    );
  }
  return {
    exports,
    imports,
    frontendAttrs:
      imports.length > 0
        ? {
            'cache-imports': JSON.stringify(imports.map((i) => ({ Type: i.Type, Attrs: i.Attrs }))),
          }
        : {},
    warnings,
  };
}

/**
 * The content stores local caches need on the session, by store id: each export's `dest`
 * writable, each import's `src` read-only (writable when it is also an export's `dest`).
 */
export function localCacheStores(
  opts: Pick<DockerfileBuildOptions, 'cacheImports' | 'cacheExports'>,
): Record<string, ContentStoreSpec> {
  const stores: Record<string, ContentStoreSpec> = {};
  for (const c of opts.cacheImports ?? []) {
    const dir = c.type === 'local' ? c.attrs?.src : undefined;
    if (dir) stores[localCacheStoreId(resolve(dir))] = { dir: resolve(dir), writable: false };
  }
  for (const c of opts.cacheExports ?? []) {
    const dir = c.type === 'local' ? c.attrs?.dest : undefined;
    if (dir) stores[localCacheStoreId(resolve(dir))] = { dir: resolve(dir), writable: true };
  }
  return stores;
}

/** The session a Dockerfile build needs, from its options: what solve and its server share. */
function dockerfileSession(opts: DockerfileBuildOptions) {
  const contextDir = resolve(opts.contextDir);
  const dockerfile = resolve(contextDir, opts.dockerfile ?? 'Dockerfile');
  const exports = opts.exports ?? [];
  const targets: (ExportTarget | undefined)[] = exports.map((x) =>
    x.type === 'local'
      ? {
          kind: 'dir',
          dest: resolve(x.dest),
          keepSetid: x.keepSetid === true,
          onWarning: opts.onWarning,
        }
      : x.type === 'tar' || x.type === 'oci' || x.type === 'docker'
        ? { kind: 'file', path: resolve(x.dest) }
        : undefined,
  );
  const exporters: Exporter[] = exports.map((x) => ({
    Type: x.type === 'custom' ? x.name : x.type,
    Attrs: { ...(x.attrs ?? {}) },
  }));
  const session: SessionOptions = {
    name: basename(contextDir),
    sharedKey: contextDir,
    dirs: { ...namedContextDirs(opts), context: contextDir, dockerfile: dirname(dockerfile) },
    exports: targets,
    secrets: opts.secrets,
    ssh: opts.ssh
      ? Object.fromEntries(Object.entries(opts.ssh).map(([id, p]) => [id, resolve(p)]))
      : undefined,
    auth: opts.auth,
    contentStores: localCacheStores(opts),
    onSync: opts.onSync,
    contextLookup: opts.contextLookup,
  };
  return { dockerfile, exporters, session };
}

/**
 * Serves the session of a build whose Solve another process sends (`externalSession`), from
 * the same options: the context and named contexts, the Dockerfile, secrets, ssh agents,
 * registry credentials and the local/tar exports. Resolves once attached; `done` settles when
 * the daemon's side is gone.
 */
export function serveDockerfileSession(
  conn: Pick<BuildkitConnection, 'openSessionTransport'>,
  id: string,
  opts: DockerfileBuildOptions,
  onError?: (method: string, err: unknown) => void,
): Promise<BuildSession> {
  return BuildSession.start(conn, {
    ...dockerfileSession(opts).session,
    id,
    ...(onError ? { onError } : {}),
  });
}

/** After a build: each local cache export's manifest goes into its directory's index.json. */
async function recordLocalCacheExports(
  exports: readonly CacheOptionsEntry[],
  response: Readonly<Record<string, string>>,
  pins: ReadonlyMap<string, PinnedDirectory>,
  onWarning: ((message: string) => void) | undefined,
): Promise<void> {
  for (const e of exports) {
    if (e.Type !== 'local') continue;
    const dest = e.Attrs.dest!;
    const manifest = response['cache.manifest'];
    if (!manifest) {
      // The exporter wrote nothing it could name (ignore-error=true and it failed).
      onWarning?.(
        `the builder reported no cache manifest for ${dest}; its index.json is unchanged`,
      );
      continue;
    }
    await recordLocalCacheExport(dest, e.Attrs.tag || 'latest', manifest, pins.get(dest));
  }
}

export async function solveDockerfile(
  conn: BuildkitConnection,
  opts: DockerfileBuildOptions,
): Promise<SolveResult> {
  const cache = cacheOptions(opts);
  for (const w of cache.warnings) opts.onWarning?.(w);
  // Held open from before the Solve to the index update after it (see pinDirectory).
  const pins = new Map<string, PinnedDirectory>();
  try {
    for (const e of cache.exports) {
      const dest = e.Type === 'local' ? e.Attrs.dest : undefined;
      if (dest && !pins.has(dest)) pins.set(dest, pinDirectory(dest));
    }
    return await solveWithSession(conn, opts, cache, pins);
  } finally {
    for (const p of pins.values()) p.close();
  }
}

async function solveWithSession(
  conn: BuildkitConnection,
  opts: DockerfileBuildOptions,
  cache: ReturnType<typeof cacheOptions>,
  pins: ReadonlyMap<string, PinnedDirectory>,
): Promise<SolveResult> {
  const { dockerfile, exporters, session: sessionOpts } = dockerfileSession(opts);
  const ref = opts.ref ?? newSessionId();

  let sessionFailure: unknown;
  let sessionFailureMethod = '';
  const session = opts.externalSession
    ? { id: opts.externalSession.id, close: async () => {} }
    : await BuildSession.start(conn, {
        ...sessionOpts,
        onError: (m, err) => {
          if (sessionFailure === undefined) sessionFailureMethod = m;
          sessionFailure ??= err;
        },
      });

  const status = conn.control.status(StatusRequest.fromPartial({ Ref: ref }));
  const statusDone = new Promise<void>((res) => {
    status.on('data', (s: StatusResponse) => opts.onStatus?.(s));
    status.on('end', () => res());
    status.on('error', () => res()); // status is best effort; the Solve result decides
  });

  const req = SolveRequest.fromPartial({
    Ref: ref,
    Session: session.id,
    Frontend: 'dockerfile.v0',
    FrontendAttrs: { ...frontendAttrs(opts, dockerfile), ...cache.frontendAttrs },
    Entitlements: [...new Set([...entitlementsFor(opts), ...(opts.entitlements ?? [])])],
    Exporters: exporters,
    Cache: { Exports: cache.exports, Imports: cache.imports },
    // Daemons before BuildKit v0.13 only read the single deprecated exporter fields.
    ...(exporters[0]
      ? { ExporterDeprecated: exporters[0].Type, ExporterAttrsDeprecated: exporters[0].Attrs }
      : {}),
  });

  let res: SolveResponse;
  try {
    res = await new Promise<SolveResponse>((resolveSolve, reject) => {
      const call = conn.control.solve(req, new Metadata(), {}, (err, r) =>
        err ? reject(err) : resolveSolve(r),
      );
      const abort = () => call.cancel();
      if (opts.signal?.aborted) abort();
      opts.signal?.addEventListener('abort', abort, { once: true });
    });
    await Promise.race([statusDone, new Promise((r) => setTimeout(r, 2000).unref())]);
  } catch (e) {
    if (opts.signal?.aborted) {
      throw new BuildkitError('build cancelled', { code: 'E_SOLVE', cause: e });
    }
    // Let the status stream deliver the failing step's last logs before we report it.
    await Promise.race([statusDone, new Promise((r) => setTimeout(r, 1000).unref())]);
    const err = solveError(e);
    if (sessionFailure !== undefined && BuildkitError.is(err) && err.code !== 'E_GRPC') {
      // Our side broke first: writing an export (FileSend) is an export failure, the rest
      // (reading the context, secrets) fails the build.
      throw new BuildkitError(
        `${err.message} (client side: ${(sessionFailure as Error).message ?? sessionFailure})`,
        {
          code: /FileSend|content\.v1\.Content\/Write/.test(sessionFailureMethod)
            ? 'E_EXPORT'
            : 'E_SOLVE',
          grpcCode: err.grpcCode,
          details: err.details,
          cause: e,
        },
      );
    }
    throw err;
  } finally {
    status.cancel();
    await session.close();
  }
  // The session is done: every blob of the cache export has been committed by now.
  await recordLocalCacheExports(cache.exports, res.ExporterResponse, pins, opts.onWarning);
  return { ref, exporterResponse: { ...res.ExporterResponse } };
}
