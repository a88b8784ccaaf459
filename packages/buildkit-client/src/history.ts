/**
 * The builder's build history (Control.ListenBuildHistory) and its content store (containerd's
 * Content.Read, served by BuildKit on the same gRPC endpoint, read-only): after a build, the
 * record names the attestations the daemon made for each result, as blobs in that store. This
 * is how buildx fills `buildx.build.provenance` in its metadata file; ktl does the same, from
 * the process that sent the Solve (in a sandboxed build, the outer ktl: the jail's gateway
 * refuses both calls).
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { BuildkitError } from './errors';
import {
  type ContentClient,
  ContentClient as ContentClientCtor,
  ReadContentRequest,
  type ReadContentResponse,
} from './gen/containerd/services/content/v1/content';
import {
  type BuildHistoryEvent,
  type BuildHistoryRecord,
  BuildHistoryRequest,
  type BuildResultInfo,
  type Descriptor,
} from './gen/moby/buildkit/v1/control';
import type { BuildkitConnection } from './transport/connect';
import { fromGrpc } from './transport/grpc-errors';

export type { BuildHistoryRecord, BuildResultInfo, Descriptor };

/** The stored record of build `ref` (undefined when the builder kept none). */
export function buildRecord(
  conn: Pick<BuildkitConnection, 'control'>,
  ref: string,
  timeoutMs = 15_000,
): Promise<BuildHistoryRecord | undefined> {
  return new Promise((resolve, reject) => {
    const call = conn.control.listenBuildHistory(
      BuildHistoryRequest.fromPartial({ Ref: ref, EarlyExit: true }),
      new Metadata(),
      { deadline: new Date(Date.now() + timeoutMs) },
    );
    let record: BuildHistoryRecord | undefined;
    call.on('data', (ev: BuildHistoryEvent) => {
      if (ev.record?.Ref === ref) record = ev.record;
    });
    call.on('end', () => resolve(record));
    call.on('error', (e) => reject(fromGrpc('ListenBuildHistory', e)));
  });
}

const clients = new WeakMap<object, ContentClient>();

/** A Content client on the connection's own channel (same transport, same upgrade proxy). */
function contentClient(conn: Pick<BuildkitConnection, 'control'>): ContentClient {
  let c = clients.get(conn.control);
  if (!c) {
    // The address and credentials are not used: the channel is the Control client's.
    c = new ContentClientCtor('unused', credentials.createInsecure(), {
      channelOverride: conn.control.getChannel(),
    });
    clients.set(conn.control, c);
  }
  return c;
}

/**
 * One blob of the builder's content store. Refuses to read more than `maxBytes` and checks
 * the size the descriptor announced: the caller parses what comes back.
 */
export function readBlob(
  conn: Pick<BuildkitConnection, 'control'>,
  desc: Pick<Descriptor, 'digest' | 'size'>,
  maxBytes = 16 * 1024 * 1024,
  timeoutMs = 15_000,
): Promise<Buffer> {
  if (desc.size > BigInt(maxBytes)) {
    return Promise.reject(
      new BuildkitError(`blob ${desc.digest} is ${desc.size} bytes, more than ${maxBytes}`, {
        code: 'E_GRPC',
      }),
    );
  }
  return new Promise((resolve, reject) => {
    const call = contentClient(conn).read(
      ReadContentRequest.fromPartial({ digest: desc.digest }),
      new Metadata(),
      { deadline: new Date(Date.now() + timeoutMs) },
    );
    const parts: Buffer[] = [];
    let size = 0;
    call.on('data', (r: ReadContentResponse) => {
      size += r.data.length;
      if (size > maxBytes) {
        call.cancel();
        return;
      }
      parts.push(Buffer.from(r.data));
    });
    call.on('end', () => {
      const blob = Buffer.concat(parts);
      if (BigInt(blob.length) !== desc.size) {
        reject(
          new BuildkitError(
            `blob ${desc.digest}: read ${blob.length} bytes, the descriptor says ${desc.size}`,
            { code: 'E_GRPC' },
          ),
        );
      } else resolve(blob);
    });
    call.on('error', (e) => reject(fromGrpc('Content.Read', e)));
  });
}

/** How much of the provenance goes into the metadata file (buildx's BUILDX_METADATA_PROVENANCE). */
export type ProvenanceMetadataMode = 'min' | 'max' | 'disabled';

const SLSA_PREFIX = 'https://slsa.dev/provenance/';

/** The provenance attestation among a result's, as buildx picks it. */
export function provenanceDescriptor(res: BuildResultInfo): Descriptor | undefined {
  return res.Attestations.find(
    (a) =>
      a.mediaType === 'application/vnd.in-toto+json' &&
      (a.annotations['in-toto.io/predicate-type'] ?? '').startsWith(SLSA_PREFIX),
  );
}

/** JSON as Go's encoding/json writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped. */
export function goJson(v: unknown): string {
  return JSON.stringify(v).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * A provenance predicate as it goes into the metadata file: `min` leaves out `buildConfig`
 * (the build's LLB) and `metadata` (timestamps, reproducibility flags); a builder without an
 * id is left out. Base64 of the JSON, as buildx writes it.
 */
export function encodeProvenance(predicate: Buffer, mode: 'min' | 'max'): string {
  let pred: Record<string, unknown>;
  try {
    pred = JSON.parse(predicate.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new BuildkitError(`provenance from the builder is not JSON: ${(e as Error).message}`, {
      code: 'E_GRPC',
    });
  }
  if (pred === null || typeof pred !== 'object' || Array.isArray(pred)) {
    throw new BuildkitError('provenance from the builder is not a JSON object', { code: 'E_GRPC' });
  }
  const builder = pred.builder as { id?: unknown } | undefined;
  if (builder !== undefined && (builder === null || !builder.id)) delete pred.builder;
  if (mode === 'min') {
    delete pred.buildConfig;
    delete pred.metadata;
  }
  return Buffer.from(goJson(pred)).toString('base64');
}

/**
 * The `buildx.build.provenance` entries for build `ref`: one key for a single-platform result,
 * `buildx.build.provenance/<platform>` per platform otherwise; none when the build made no
 * provenance attestation (or the builder keeps no history).
 */
export async function provenanceMetadata(
  conn: Pick<BuildkitConnection, 'control'>,
  ref: string,
  mode: ProvenanceMetadataMode = 'min',
): Promise<Record<string, string>> {
  if (mode === 'disabled') return {};
  const record = await buildRecord(conn, ref);
  if (!record) return {};
  const out: Record<string, string> = {};
  const perPlatform = Object.entries(record.Results);
  const wanted: Array<[string, BuildResultInfo]> =
    perPlatform.length > 0
      ? perPlatform.map(([p, r]) => [`buildx.build.provenance/${p}`, r])
      : record.Result
        ? [['buildx.build.provenance', record.Result]]
        : [];
  await Promise.all(
    wanted.map(async ([key, res]) => {
      const desc = provenanceDescriptor(res);
      if (desc) out[key] = encodeProvenance(await readBlob(conn, desc), mode);
    }),
  );
  return out;
}
