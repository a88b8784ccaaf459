/**
 * runBuild(): one `ktl build` from validated options to an outcome, with no oclif and no
 * process globals, so the sandbox wrapper can call it inside the jail and tests can call it
 * in-process. Expected failures (no builder, failed step, ...) come back as an outcome with
 * an exit code; it only throws on bugs.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  type BuildkitConnection,
  BuildkitError,
  type CredentialStore,
  checkMultipleExporters,
  connect,
  createRenderer,
  describeFailure,
  type FailureReport,
  formatFailure,
  loadDockerConfig,
  type ProgressRenderer,
  parseImageName,
  provenanceMetadata,
  pushThroughEngine,
  type StatusResponse,
  sanitizeText,
  solveDockerfile,
} from '@ktl/buildkit-client';
import { managedCandidates, START_HINT } from '../builder/managed';
import { mark } from '../timing';
import { DEFAULT_PROVENANCE } from './attest';
import { warnRootfulRisk } from './builder-warning';
import { checkEngineSupport } from './engine-support';
import { ExitCode, type ExitCodeValue } from './exit-codes';
import { buildRef, formatMetadata, writeFileAtomic } from './metadata';
import type { BuildOptions } from './options';
import { splitEnginePushes, toCacheSpecs, toExportSpecs } from './outputs';
import { canAttest, checkPlatformSupport } from './platforms';
import { readSecrets } from './secrets';
import { BuildUsageError } from './usage-error';

/**
 * The abort reason for a build stopped because another part of ktl ended it (the sandboxed
 * half exited, or its runtime failed) and reports why itself: no "build cancelled" line.
 */
export class EndedElsewhere extends Error {
  override name = 'EndedElsewhere';
}

export interface BuildIO {
  /** Where the image id goes (`-q`). */
  readonly stdout: (text: string) => void;
  /** Progress, warnings and errors. */
  readonly stderr: (text: string) => void;
  /** Read for `-f -`. */
  readonly stdin?: NodeJS.ReadableStream | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborting cancels the build on the builder. */
  readonly signal?: AbortSignal | undefined;
  /** The terminal's size now, for `--progress tty` (COLUMNS/LINES in the options win). */
  readonly terminalSize?:
    | (() => { columns?: number | undefined; rows?: number | undefined })
    | undefined;
  /** Replaces `connect`: tests, and the sandboxed build (the connection that found the builder). */
  readonly connect?: typeof connect | undefined;
  /**
   * The build session is served by another process (the sandboxed half of ktl) under this
   * id: this side sends the Solve and renders progress, and never reads the context, the
   * Dockerfile, secrets or credentials itself.
   */
  readonly externalSession?: { readonly id: string } | undefined;
  /**
   * Directories pinned before the build (sandboxed: the --iidfile and --metadata-file
   * directories, by the path on the command line): those files are written through the
   * descriptor, never by a path the build could have rerouted with a link.
   */
  readonly outerDirs?: ReadonlyMap<string, number> | undefined;
}

export interface BuildOutcome {
  readonly ok: boolean;
  readonly exitCode: ExitCodeValue;
  readonly canceled: boolean;
  readonly durationMs: number;
  /** The builder used, once connected. */
  readonly builder: string | undefined;
  /** The image's id (`docker image ls`' IMAGE ID), when an image was made. */
  readonly imageId: string | undefined;
  readonly exporterResponse: Readonly<Record<string, string>>;
  readonly error:
    | {
        /** A BuildkitError code, `E_USAGE` or `E_OUTPUT`. */
        readonly code: string;
        readonly message: string;
        readonly hint: string | undefined;
        /** For a failed build: step, Dockerfile location, last logs, exit code. */
        readonly failure: FailureReport | undefined;
      }
    | undefined;
}

const CODE_EXIT: Record<string, ExitCodeValue> = {
  E_USAGE: ExitCode.USAGE,
  E_BAD_ADDRESS: ExitCode.USAGE,
  // The command line asks for something this builder cannot do (e.g. several outputs).
  E_UNSUPPORTED: ExitCode.USAGE,
  E_NO_BUILDER: ExitCode.NO_BUILDER,
  E_CONNECT: ExitCode.NO_BUILDER,
  E_TLS: ExitCode.TLS,
  E_BAD_OPTION: ExitCode.USAGE,
  E_UPGRADE: ExitCode.NO_BUILDER,
  E_SOLVE: ExitCode.BUILD_FAILED,
  E_EXPORT: ExitCode.OUTPUT_FAILED,
  E_OUTPUT: ExitCode.OUTPUT_FAILED,
  E_SESSION: ExitCode.BUILDER_ERROR,
  E_GRPC: ExitCode.BUILDER_ERROR,
  E_INTERNAL: ExitCode.INTERNAL,
};

/** JSON lines of the raw Status stream (`--progress rawjson`); bytes base64, int64 as text. */
function rawJsonRenderer(write: (s: string) => void): ProgressRenderer {
  const r = createRenderer('quiet', write);
  const rep = (_k: string, v: unknown) =>
    v instanceof Uint8Array
      ? { $bytes: Buffer.from(v).toString('base64') }
      : typeof v === 'bigint'
        ? { $bigint: String(v) }
        : v;
  return {
    tracker: r.tracker,
    update(s: StatusResponse) {
      r.update(s);
      write(`${JSON.stringify(s, rep)}\n`);
    },
    end() {},
  };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks);
}

export async function runBuild(o: BuildOptions, io: BuildIO): Promise<BuildOutcome> {
  const t0 = Date.now();
  const renderer =
    o.progress === 'rawjson'
      ? rawJsonRenderer(io.stderr)
      : createRenderer(o.progress, io.stderr, {
          color: !o.terminal.noColor,
          columns: () => o.terminal.columns ?? io.terminalSize?.().columns,
          rows: () => o.terminal.rows ?? io.terminalSize?.().rows,
        });
  let conn: BuildkitConnection | undefined;
  let tmp: string | undefined;
  const outcome = (
    exitCode: ExitCodeValue,
    rest: Partial<Pick<BuildOutcome, 'imageId' | 'exporterResponse' | 'error'>> = {},
  ): BuildOutcome => ({
    ok: exitCode === ExitCode.OK,
    exitCode,
    canceled: exitCode === ExitCode.INTERRUPTED,
    durationMs: Date.now() - t0,
    builder: conn?.address,
    imageId: rest.imageId,
    exporterResponse: rest.exporterResponse ?? {},
    error: rest.error,
  });

  try {
    const external = io.externalSession;
    const secrets = external ? {} : readSecrets(o, io.env);
    let dockerfile = o.dockerfile;
    if (dockerfile === '-' && external) {
      // Read and served by the session's process; only the file name matters here.
      dockerfile = join(tmpdir(), 'ktl-stdin', 'Dockerfile');
    } else if (dockerfile === '-') {
      if (!io.stdin)
        throw new BuildUsageError('--file', '-', 'no stdin to read the Dockerfile from');
      // The Dockerfile is served from a directory of its own, like buildx does for stdin.
      tmp = mkdtempSync(join(tmpdir(), 'ktl-dockerfile-'));
      dockerfile = join(tmp, 'Dockerfile');
      writeFileSync(dockerfile, await readAll(io.stdin));
    }
    let auth: CredentialStore | undefined;
    try {
      if (!external) auth = loadDockerConfig({ env: io.env });
    } catch (e) {
      io.stderr(`WARNING: ${(e as Error).message}; registry requests go unauthenticated\n`);
    }

    conn = await (io.connect ?? connect)(o.builder, {
      env: io.env,
      preferred: managedCandidates(io.env),
      tlsFlags: o.builderTls,
      context: o.dockerContext,
    });
    mark('build: connected');
    await warnRootfulRisk(o, conn.address, io.stderr, conn.tls);
    const { exports, pushes } = splitEnginePushes(await toExportSpecs(o, conn));
    await checkMultipleExporters(conn, exports.length, conn.tls);
    await checkEngineSupport(o, conn);
    await checkPlatformSupport(o, conn);
    mark('build: solving');
    if (o.progress === 'plain') io.stderr(`#0 building with ${conn.address}\n\n`);
    if (exports.length === 0 && !o.cacheOnly) {
      io.stderr(
        'WARNING: no output given: the result stays in the build cache only. ' +
          'Use --load (into the engine), --push, or -o type=local,dest=DIR.\n',
      );
    }
    const res = await solveDockerfile(conn, {
      contextDir: o.contextDir,
      dockerfile,
      buildArgs: o.buildArgs,
      target: o.target,
      platforms: o.platforms,
      attests:
        o.defaultProvenance && (await canAttest(conn))
          ? { ...o.attests, provenance: DEFAULT_PROVENANCE }
          : o.attests,
      labels: o.labels,
      noCache: o.noCache,
      pull: o.pull,
      network: o.network,
      entitlements: o.allow,
      addHosts: o.addHosts,
      namedContexts: o.buildContexts,
      // ktl is a process of its own and names every path absolutely: the context walker may
      // look entries up relative to the directory it holds open (WalkOptions.lookup).
      contextLookup: 'cwd',
      secrets,
      ssh: o.ssh,
      auth,
      exports,
      cacheImports: toCacheSpecs(o.cacheFrom),
      cacheExports: toCacheSpecs(o.cacheTo),
      onWarning: (m) => io.stderr(`WARNING: ${m}\n`),
      onStatus: (s) => renderer.update(s),
      signal: io.signal,
      ...(external ? { externalSession: external } : {}),
    });
    mark('build: solved');
    let pushedDigest: string | undefined;
    if (pushes.length > 0) {
      // Credentials are read out here, on the host, also for a sandboxed build (the jailed
      // half has only what the registries of the build itself need).
      const creds = auth ?? loadPushCredentials(io);
      for (const name of pushes) {
        const host = parseImageName(name).domain;
        const pushed = await pushThroughEngine(conn.address, name, {
          credentials: await creds?.get(host),
          onStatus: (s) => renderer.update(s),
          signal: io.signal,
          tls: conn.tls,
        });
        pushedDigest ??= pushed.digest;
      }
      mark('build: pushed');
    }
    renderer.end();
    const r = res.exporterResponse;
    // What `docker image ls` shows as IMAGE ID: the manifest/index digest with the containerd
    // store, the config digest with the moby exporter (which reports it as containerimage.digest).
    const imageId = r['containerimage.digest'] ?? r['containerimage.config.digest'];
    try {
      const pinned = (f: string) => io.outerDirs?.get(dirname(f));
      if (o.iidfile && imageId) writeFileAtomic(o.iidfile, imageId, pinned(o.iidfile));
      if (o.metadataFile) {
        const provenance = await recordedProvenance(conn, res.ref, o);
        const meta = {
          ...r,
          // Pushed through the engine (a graphdriver engine's moby exporter, which reports the
          // image id as containerimage.digest): the digest is the registry's manifest digest,
          // and the image id is the config digest, as buildx writes them for the docker driver.
          ...(pushedDigest
            ? {
                'containerimage.config.digest':
                  r['containerimage.config.digest'] ?? r['containerimage.digest'] ?? '',
                'containerimage.digest': pushedDigest,
              }
            : {}),
          'buildx.build.ref': buildRef(conn.address, res.ref),
          ...provenance,
        };
        writeFileAtomic(o.metadataFile, formatMetadata(meta), pinned(o.metadataFile));
      }
    } catch (e) {
      const message = `build succeeded but writing an output failed: ${(e as Error).message}`;
      io.stderr(`ERROR: ${message}\n`);
      return outcome(ExitCode.OUTPUT_FAILED, {
        imageId,
        exporterResponse: r,
        error: { code: 'E_OUTPUT', message, hint: undefined, failure: undefined },
      });
    }
    if (o.printImageId && imageId) io.stdout(`${imageId}\n`);
    return outcome(ExitCode.OK, { imageId, exporterResponse: r });
  } catch (e) {
    renderer.end();
    return failed(e, renderer, io, outcome, o.progress === 'tty', io.externalSession !== undefined);
  } finally {
    await conn?.close().catch(() => {});
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

function loadPushCredentials(io: BuildIO): CredentialStore | undefined {
  try {
    return loadDockerConfig({ env: io.env });
  } catch (e) {
    io.stderr(`WARNING: ${(e as Error).message}; the push goes unauthenticated\n`);
    return undefined;
  }
}

/**
 * The provenance the builder recorded for the build, for the metadata file. A builder without
 * the history API (BuildKit before v0.11, Docker 20.10/23) has none to give: nothing is added,
 * as buildx does.
 */
async function recordedProvenance(
  conn: BuildkitConnection,
  ref: string,
  o: BuildOptions,
): Promise<Record<string, string>> {
  try {
    return await provenanceMetadata(conn, ref, o.metadataProvenance);
  } catch (e) {
    if (BuildkitError.is(e) && e.grpcCode === 12 /* UNIMPLEMENTED */) return {};
    throw new Error(
      `reading the build's provenance from the builder's history: ${(e as Error).message}`,
    );
  }
}

/** The session's refusal of a context file it may not read (walk.ts unreadableError). */
const UNREADABLE = /of the build context cannot be (read|listed) \(permission denied\)/;
const UNREADABLE_HINT =
  'the sandbox reads the context with privileges over your own user and group ids only (as root: over root:root files); a file of another user that only that user may read stays unreadable in there (buildx run as root reads it): make it readable (chmod o+r), leave it out with .dockerignore, or build it unsandboxed (KTL_SANDBOX_DISABLE=1)';

function failed(
  e: unknown,
  renderer: ProgressRenderer,
  io: BuildIO,
  outcome: (c: ExitCodeValue, rest: Pick<BuildOutcome, 'error'>) => BuildOutcome,
  tty: boolean,
  sandboxed: boolean,
): BuildOutcome {
  if (e instanceof BuildUsageError) {
    io.stderr(`ERROR: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
    return outcome(ExitCode.USAGE, {
      error: { code: 'E_USAGE', message: e.message, hint: e.hint, failure: undefined },
    });
  }
  const err = BuildkitError.from(e);
  if (io.signal?.aborted) {
    // Stopped because something else ended the build (it reports its own error), or by the user.
    if (!(io.signal.reason instanceof EndedElsewhere)) io.stderr('ERROR: build cancelled\n');
    return outcome(ExitCode.INTERRUPTED, {
      error: { code: err.code, message: 'build cancelled', hint: undefined, failure: undefined },
    });
  }
  let failure: FailureReport | undefined;
  if (err.code === 'E_SOLVE' || err.code === 'E_EXPORT') {
    failure = describeFailure(err, renderer.tracker);
    // On a terminal the step's logs lose their escape sequences, as in the frames above.
    io.stderr(tty ? sanitizeText(formatFailure(failure)) : formatFailure(failure));
    io.stderr(`ERROR: failed to solve: ${err.message}\n`);
    if (failure.step !== undefined) {
      const where = failure.source
        ? ` (${failure.source.filename}:${failure.source.startLine})`
        : '';
      const exit = failure.exitCode === undefined ? '' : `, exit code ${failure.exitCode}`;
      io.stderr(`ktl: build failed at step ${failure.step}${where}${exit}\n`);
    }
    // BuildKit's own words when the session serves no ssh agent at all.
    const ssh = /no SSH key "([^"]*)" forwarded from the client/.exec(err.message);
    if (ssh) {
      const id = ssh[1] || 'default';
      io.stderr(
        `hint: forward an ssh agent with --ssh ${id}=SOCKET${id === 'default' ? ' (or --ssh default for $SSH_AUTH_SOCK)' : ` (or --ssh ${id} for $SSH_AUTH_SOCK)`}\n`,
      );
    }
    if (sandboxed && UNREADABLE.test(err.message)) io.stderr(`hint: ${UNREADABLE_HINT}\n`);
    // A secret the Dockerfile requires that the command line did not give (BuildKit v0.13:
    // `secret npmrc: not found`; v0.8: `secret npmrc not found: not found`).
    const secret = /secret ([^\s:]+):? not found/.exec(err.message);
    if (secret) {
      io.stderr(
        `hint: the Dockerfile needs secret "${secret[1]}": pass it with --secret id=${secret[1]},src=FILE or --secret id=${secret[1]},env=VAR\n`,
      );
    }
  } else {
    io.stderr(`ERROR: ${err.message}\n`);
    if (err.hint && !err.message.includes(err.hint)) io.stderr(`hint: ${err.hint}\n`);
    if (err.code === 'E_NO_BUILDER') io.stderr(`hint: ${START_HINT}\n`);
    if (err.code === 'E_INTERNAL' && err.cause instanceof Error && err.cause.stack) {
      io.stderr(`${err.cause.stack}\n`);
    }
  }
  return outcome(CODE_EXIT[err.code] ?? ExitCode.INTERNAL, {
    error: { code: err.code, message: err.message, hint: err.hint, failure },
  });
}
