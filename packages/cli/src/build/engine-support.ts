/**
 * What an older Docker engine cannot do, refused before anything is sent, with the engine
 * named (`Docker 20.10.24, API 1.41`). Each of these would otherwise fail late or, worse,
 * quietly do something else:
 * - a graphdriver engine's builder exports cache only inline; `--cache-to type=registry`
 *   fails after the whole build ran ("unknown cache exporter");
 * - before Docker 23 (API 1.42, Dockerfile frontend 1.4) the built-in frontend has no named
 *   contexts: `--build-context extra=DIR` is dropped and `COPY --from=extra` pulls an image
 *   called `extra` from Docker Hub instead.
 * (Image archives and several outputs are checked with the exporters: outputs.ts and
 * checkMultipleExporters.) Engines whose version is unknown are not refused.
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

/** Cache exporters a graphdriver engine has (moby's builder registers no other). */
const GRAPHDRIVER_CACHE_EXPORTERS = new Set(['inline']);

export async function checkEngineSupport(
  o: Pick<BuildOptions, 'cacheTo' | 'buildContexts'>,
  conn: BuildkitConnection,
): Promise<void> {
  if (!conn.address.startsWith('docker://')) return;
  const cache = o.cacheTo.find((c) => !GRAPHDRIVER_CACHE_EXPORTERS.has(c.type));
  if (cache && imageStoreKind(conn.address, await conn.listWorkers()) === 'docker-graphdriver') {
    throw new BuildkitError(
      `this engine (${await describeEngine(conn.address, conn.tls)}) keeps images in a graphdriver store, whose builder exports cache only inline: --cache-to type=${cache.type} is not available there`,
      {
        code: 'E_UNSUPPORTED',
        hint: 'use --cache-to type=inline with --push (import it with --cache-from IMAGE), or an engine with the containerd image store (Docker 24+ with "containerd-snapshotter"); --cache-from type=local works on this engine',
      },
    );
  }
  const named = Object.keys(o.buildContexts);
  if (named.length > 0) {
    const api = (await engineVersions(conn.address, conn.tls))?.api;
    if (api !== undefined && !apiAtLeast(api, [1, 42])) {
      throw new BuildkitError(
        `this engine (${await describeEngine(conn.address, conn.tls)}) has a Dockerfile frontend without named contexts: --build-context ${named[0]}=... would be ignored (and COPY --from=${named[0]} look for an image of that name); they need Docker 23+ (API 1.42)`,
        {
          code: 'E_UNSUPPORTED',
          hint: 'put what the build needs into the build context, or use a newer engine',
        },
      );
    }
  }
}
