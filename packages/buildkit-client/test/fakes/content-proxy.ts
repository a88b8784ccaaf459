/**
 * A stand-in for the daemon's side of the content service: a gRPC client (grpc-js, on the
 * generated ContentClient) that calls the session's content store the way containerd's proxy
 * store does when BuildKit's local cache exporter and importer use it:
 * - a write is STAT (ref, total, expected) -> WRITE chunks at increasing offsets -> COMMIT
 *   (total, offset, expected), one response per request;
 * - ReaderAt is Info for the size, then Read(digest, offset, len) collecting exactly len bytes.
 * Only for tests: the real client is the daemon.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  ContentClient,
  type InfoResponse,
  WriteAction,
  WriteContentRequest,
  type WriteContentResponse,
} from '../../src/gen/containerd/services/content/v1/content';
import { STORE_ID_HEADER } from '../../src/session/content-service';

export function contentClient(socketPath: string): ContentClient {
  return new ContentClient(`unix:${socketPath}`, credentials.createInsecure());
}

export function storeMetadata(storeId: string | undefined): Metadata {
  const md = new Metadata();
  if (storeId !== undefined) md.set(STORE_ID_HEADER, storeId);
  return md;
}

/** A failed call's code and message. */
export interface CallFailure {
  readonly code: number;
  readonly details: string;
}

export function failure(e: unknown): CallFailure {
  const s = e as ServiceError;
  return { code: s.code, details: s.details };
}

export function info(c: ContentClient, storeId: string | undefined, digest: string) {
  return new Promise<InfoResponse>((res, rej) =>
    c.info({ digest }, storeMetadata(storeId), (err, r) => (err ? rej(err) : res(r))),
  );
}

/** Read(digest, offset, size): all chunks, concatenated, with the offsets the server sent. */
export function read(
  c: ContentClient,
  storeId: string,
  digest: string,
  offset = 0,
  size = 0,
): Promise<{ data: Buffer; offsets: bigint[] }> {
  return new Promise((res, rej) => {
    const chunks: Buffer[] = [];
    const offsets: bigint[] = [];
    const s = c.read(
      { digest, offset: BigInt(offset), size: BigInt(size) },
      storeMetadata(storeId),
    );
    s.on('data', (m: { offset: bigint; data: Uint8Array }) => {
      offsets.push(m.offset);
      chunks.push(Buffer.from(m.data));
    });
    s.on('error', rej);
    s.on('end', () => res({ data: Buffer.concat(chunks), offsets }));
  });
}

/** One Write stream driven request by request, as containerd's remote writer does. */
export class RemoteWriter {
  private readonly stream;
  private readonly responses: WriteContentResponse[] = [];
  private error: ServiceError | undefined;
  private wake: (() => void) | undefined;
  ended = false;

  constructor(c: ContentClient, storeId: string) {
    this.stream = c.write(storeMetadata(storeId));
    this.stream.on('data', (m: WriteContentResponse) => {
      this.responses.push(m);
      this.wake?.();
    });
    this.stream.on('error', (e: ServiceError) => {
      this.error = e;
      this.wake?.();
    });
    this.stream.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  /** Sends one request and waits for its response (or the call's error). */
  async send(req: Partial<WriteContentRequest>): Promise<WriteContentResponse> {
    this.stream.write(WriteContentRequest.fromPartial(req));
    for (;;) {
      const r = this.responses.shift();
      if (r) return r;
      if (this.error) throw this.error;
      if (this.ended) throw new Error('write stream ended without a response');
      await new Promise<void>((w) => {
        this.wake = w;
      });
    }
  }

  cancel(): void {
    this.stream.cancel();
  }

  close(): void {
    this.stream.end();
  }
}

/**
 * content.WriteBlob through the proxy: negotiate with STAT, write in chunks, commit. Resolves
 * to 'exists' when the store answers ALREADY_EXISTS (the writer's "skip").
 */
export async function writeBlob(
  c: ContentClient,
  storeId: string,
  ref: string,
  data: Buffer,
  expected: string,
  chunk = 1 << 20,
): Promise<'written' | 'exists'> {
  const w = new RemoteWriter(c, storeId);
  try {
    const st = await w.send({
      action: WriteAction.STAT,
      ref,
      total: BigInt(data.length),
      expected,
    });
    let offset = Number(st.offset);
    while (offset < data.length) {
      const part = data.subarray(offset, offset + chunk);
      const r = await w.send({ action: WriteAction.WRITE, offset: BigInt(offset), data: part });
      if (Number(r.offset) - offset !== part.length) throw new Error('short write');
      offset = Number(r.offset);
    }
    const r = await w.send({
      action: WriteAction.COMMIT,
      total: BigInt(data.length),
      offset: BigInt(offset),
      expected,
    });
    if (r.digest !== expected) throw new Error(`unexpected digest: ${r.digest} != ${expected}`);
    return 'written';
  } catch (e) {
    if ((e as ServiceError).code === 6) return 'exists';
    throw e;
  } finally {
    w.close();
  }
}
