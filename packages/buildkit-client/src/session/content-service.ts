/**
 * containerd's content service (`containerd.services.content.v1.Content`) served on the build
 * session, over OCI layout directories: what BuildKit's `local` cache exporter writes into and
 * its importer reads from. Each call names its store in the `buildkit-attachable-store-id`
 * header (`local:<dir>` for a local cache, the directory exactly as sent in the cache attrs).
 *
 * Protocol as the daemon's content proxy speaks it (containerd's proxy store client):
 * - Info(digest) -> size and times; NOT_FOUND when absent.
 * - Read(digest, offset, size) -> a stream of chunks; size 0 means to the end. Go's ReaderAt
 *   over it asks for exactly the bytes it wants and stops reading when it has them.
 * - Write: a bidi stream of request/response pairs. The first request names the write (`ref`)
 *   and may announce the expected digest and total; an announced digest that is already
 *   stored ends the call with ALREADY_EXISTS, which the writer takes as "skip this blob".
 *   WRITE appends at `offset` (0 after data starts over), COMMIT verifies and ends the call.
 * Listing, deleting and labels are not needed by the cache and are refused.
 */
import {
  AbortRequest,
  Info,
  InfoRequest,
  InfoResponse,
  ReadContentRequest,
  ReadContentResponse,
  Status,
  StatusRequest,
  StatusResponse,
  WriteAction,
  WriteContentRequest,
  WriteContentResponse,
} from '../gen/containerd/services/content/v1/content';
import { Empty } from '../gen/google/protobuf/empty';
import {
  GRPC_ALREADY_EXISTS,
  GRPC_FAILED_PRECONDITION,
  GRPC_INVALID_ARGUMENT,
  GRPC_NOT_FOUND,
  GRPC_OUT_OF_RANGE,
  GRPC_PERMISSION_DENIED,
  GRPC_UNIMPLEMENTED,
  type GrpcCall,
  GrpcStatusError,
  type Handler,
} from './grpc-server';
import { type BlobWrite, OciLayoutStore, parseDigest } from './oci-store';

/** The request header naming the store a call is about (BuildKit session/content). */
export const STORE_ID_HEADER = 'buildkit-attachable-store-id';
export const CONTENT_SERVICE = '/containerd.services.content.v1.Content/';
/** Largest chunk of a Read answer (the daemon accepts messages up to 4 MiB). */
const READ_CHUNK = 1 << 20;

export interface ContentStoreSpec {
  readonly dir: string;
  /** Whether the daemon may write blobs (cache export) or only read them (cache import). */
  readonly writable: boolean;
}

/** Protocol answers the daemon expects and handles itself: not failures of the session. */
export function isExpectedContentAnswer(method: string, err: unknown): boolean {
  return (
    method.startsWith(CONTENT_SERVICE) &&
    err instanceof GrpcStatusError &&
    (err.code === GRPC_ALREADY_EXISTS || err.code === GRPC_NOT_FOUND)
  );
}

async function single(call: GrpcCall): Promise<Buffer> {
  let last: Buffer | undefined;
  for await (const m of call.messages()) last = m;
  if (last === undefined) throw new GrpcStatusError(GRPC_INVALID_ARGUMENT, 'no request message');
  return last;
}

/** The gRPC handlers, by full method path, for the given stores (by store id). */
export function contentHandlers(
  stores: ReadonlyMap<string, ContentStoreSpec>,
): Map<string, Handler> {
  const opened = new Map<string, OciLayoutStore>();
  const choose = (call: GrpcCall): OciLayoutStore => {
    const id = call.metadata(STORE_ID_HEADER)[0];
    if (id === undefined) {
      throw new GrpcStatusError(
        GRPC_INVALID_ARGUMENT,
        `request lacks metadata "${STORE_ID_HEADER}"`,
      );
    }
    const spec = stores.get(id);
    if (!spec) throw new GrpcStatusError(GRPC_NOT_FOUND, `unknown store ${id}`);
    let s = opened.get(id);
    if (!s) {
      s = OciLayoutStore.open(spec.dir, { writable: spec.writable });
      opened.set(id, s);
    }
    return s;
  };

  const h = new Map<string, Handler>();
  h.set(`${CONTENT_SERVICE}Info`, async (call) => {
    const req = InfoRequest.decode(await single(call));
    const info = await choose(call).info(req.digest);
    const msg = Info.fromPartial({
      digest: info.digest,
      size: BigInt(info.size),
      createdAt: info.modified,
      updatedAt: info.modified,
    });
    await call.send(InfoResponse.encode({ info: msg }).finish());
  });

  h.set(`${CONTENT_SERVICE}Read`, async (call) => {
    const req = ReadContentRequest.decode(await single(call));
    const store = choose(call);
    const info = await store.info(req.digest);
    const offset = req.offset < 0n ? 0 : Number(req.offset);
    if (offset > info.size) {
      throw new GrpcStatusError(
        GRPC_OUT_OF_RANGE,
        `read past object length ${info.size} bytes (offset ${offset})`,
      );
    }
    let size = Number(req.size);
    if (size <= 0 || offset + size > info.size) size = info.size - offset;
    for await (const c of store.read(req.digest, offset, size, READ_CHUNK)) {
      if (call.signal.aborted) return;
      await call.send(
        ReadContentResponse.encode({ offset: BigInt(c.offset), data: c.data }).finish(),
      );
    }
  });

  h.set(`${CONTENT_SERVICE}Write`, async (call) => writeBlob(call, choose));

  h.set(`${CONTENT_SERVICE}Status`, async (call) => {
    const req = StatusRequest.decode(await single(call));
    const w = choose(call).activeWrite(req.ref);
    if (!w) {
      throw new GrpcStatusError(GRPC_NOT_FOUND, `could not get status for ref "${req.ref}"`);
    }
    await call.send(StatusResponse.encode({ status: statusOf(w) }).finish());
  });

  h.set(`${CONTENT_SERVICE}Abort`, async (call) => {
    const req = AbortRequest.decode(await single(call));
    const w = choose(call).activeWrite(req.ref);
    if (!w) throw new GrpcStatusError(GRPC_NOT_FOUND, `no write named "${req.ref}"`);
    await w.abort();
    await call.send(Empty.encode({}).finish());
  });

  h.set(`${CONTENT_SERVICE}Delete`, async (call) => {
    await single(call);
    choose(call);
    throw new GrpcStatusError(
      GRPC_PERMISSION_DENIED,
      'ktl does not let the builder delete from a cache directory',
    );
  });

  h.set(`${CONTENT_SERVICE}Update`, async (call) => {
    await single(call);
    choose(call);
    throw new GrpcStatusError(
      GRPC_FAILED_PRECONDITION,
      'update not supported: a local cache directory keeps no labels',
    );
  });

  for (const m of ['List', 'ListStatuses']) {
    h.set(`${CONTENT_SERVICE}${m}`, async (call) => {
      await single(call);
      throw new GrpcStatusError(GRPC_UNIMPLEMENTED, `${m} is not implemented by ktl`);
    });
  }
  return h;
}

function statusOf(w: BlobWrite): Status {
  return Status.fromPartial({
    startedAt: w.startedAt,
    updatedAt: w.updatedAt,
    ref: w.ref,
    offset: BigInt(w.offset),
    total: BigInt(w.total),
    expected: w.expected,
  });
}

async function writeBlob(call: GrpcCall, choose: (c: GrpcCall) => OciLayoutStore): Promise<void> {
  let w: BlobWrite | undefined;
  let store: OciLayoutStore | undefined;
  let committed = false;
  try {
    for await (const raw of call.messages()) {
      const req = WriteContentRequest.decode(raw);
      if (!w) {
        if (req.ref === '') {
          throw new GrpcStatusError(GRPC_INVALID_ARGUMENT, 'first message must have a reference');
        }
        store = choose(call);
        w = await store.beginWrite(req.ref, req.expected, Number(req.total));
      }
      if (req.expected !== '') {
        const d = parseDigest(req.expected);
        if (!d) {
          throw new GrpcStatusError(GRPC_INVALID_ARGUMENT, `${req.expected} is not a digest`);
        }
        w.expected = d.text;
        await store!.checkAbsent(d);
      }
      if (req.total > 0n) w.total = Number(req.total);
      const res: Partial<WriteContentResponse> = { action: req.action, offset: BigInt(w.offset) };
      switch (req.action) {
        case WriteAction.STAT:
          res.digest = w.digest();
          res.startedAt = w.startedAt;
          res.updatedAt = w.updatedAt;
          res.total = BigInt(w.total);
          break;
        case WriteAction.WRITE:
        case WriteAction.COMMIT: {
          const at = Number(req.offset);
          if (at > 0 && at !== w.offset) {
            throw new GrpcStatusError(
              GRPC_OUT_OF_RANGE,
              `write @${at} must occur at current offset ${w.offset}`,
            );
          }
          if (at === 0 && w.offset > 0) await w.reset();
          if (req.data.length > 0) await w.append(req.data);
          if (req.action === WriteAction.COMMIT) {
            await w.commit(w.total, w.expected);
            committed = true;
          }
          res.offset = BigInt(w.offset);
          res.digest = w.digest();
          break;
        }
        default:
          throw new GrpcStatusError(GRPC_INVALID_ARGUMENT, `unknown write action ${req.action}`);
      }
      await call.send(WriteContentResponse.encode(WriteContentResponse.fromPartial(res)).finish());
      if (committed) return;
    }
  } finally {
    // Ended, failed or cancelled before COMMIT: nothing of it stays behind.
    if (w && !committed) await w.abort();
  }
}
