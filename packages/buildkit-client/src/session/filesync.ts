/**
 * FileSync.DiffCopy, sending side: the daemon asks for a directory we registered by name
 * (`dir-name` header: `context`, `dockerfile`, ...), with filters in headers, and we run
 * fsutil's sender protocol on the stream:
 *
 *   we:     STAT… (one per entry, then a STAT with no stat = end of listing)
 *   daemon: REQ id (for the plain files it wants), at any time during or after the listing
 *   we:     DATA id chunk… then an empty DATA id (= end of that file)
 *   daemon: FIN            we: FIN, then end the call with OK
 *
 * IDs are positions in the STAT sequence counting every entry (dirs and links too); only
 * plain files may be requested. Requests are served while the listing is still being sent, so
 * a daemon that stops reading STATs until it gets data cannot deadlock us.
 */
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { Packet as PacketMsg, Packet_PacketType as T } from '../gen/fsutil/types/wire';
import { canRequestData } from './fsstat';
import {
  GRPC_INVALID_ARGUMENT,
  GRPC_NOT_FOUND,
  type GrpcCall,
  GrpcStatusError,
  type Handler,
} from './grpc-server';
import { DATA_CHUNK, PacketBatch } from './packet-batch';
import {
  ContextWalker,
  contextChangedError,
  openedAt,
  unreadableError,
  type WalkOptions,
} from './walk';

/** Listing entries encoded between two chances to read the daemon's requests. */
const LIST_SLICE = 512;

export interface SyncProgress {
  readonly dirName: string;
  readonly files: number;
  readonly bytes: number;
}

export interface FileSyncOptions {
  onDone?: ((p: SyncProgress) => void) | undefined;
  /** How the walker looks entries up (WalkOptions.lookup). */
  lookup?: WalkOptions['lookup'];
}

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

/**
 * Appends file `id` to the batch: DATA packets read straight from disk, then the empty DATA
 * that ends it. Sends at most the size the listing announced (a file growing meanwhile is cut
 * there, like a tar of it would be). A file that is gone, or that cannot be read, fails the
 * transfer naming it, where fsutil would send it empty: an image built from a context must
 * not hold an empty file in place of one it could not read.
 *
 * The file read must be the one listed: opened without following a symlink at its name, with
 * the device and inode the listing saw, and (Linux) still at the path it was listed at, as the
 * kernel has the file opened (O_NOFOLLOW guards the last component only: a directory on the
 * way swapped for a link to a directory with a file of that name is seen there). A context
 * swapped under ktl between listing and reading (a file replaced by a link to something
 * outside the context, by a FIFO, by another file; a directory on its path replaced by a link)
 * fails the transfer instead of sending whatever is there now.
 */
async function addFile(
  batch: PacketBatch,
  flush: () => Promise<void>,
  id: number,
  file: RequestableFile,
): Promise<number> {
  const { abs, size } = file;
  let fd: number;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw changedError(file, 'it is a symbolic link now');
    if (code === 'ENOENT' || code === 'ENOTDIR') throw changedError(file, 'it is gone');
    // fsutil sends such a file empty and the build goes on with a file that is not the one
    // in the context: refused instead, naming it.
    if (code === 'EACCES' || code === 'EPERM') throw unreadableError(file.rel, 'read');
    throw e;
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile() || st.dev !== file.dev || st.ino !== file.ino)
      throw changedError(file, st.isFile() ? 'another file is there now' : 'it is not a file now');
    const at = openedAt(fd);
    if (at !== undefined && at !== abs)
      throw changedError(file, 'a directory on the way to it was swapped or moved');
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  let off = 0;
  try {
    while (off < size) {
      const got = batch.data(id, fd, off, Math.min(DATA_CHUNK, size - off));
      if (got === 0) break;
      off += got;
      if (batch.full) await flush();
    }
  } finally {
    closeSync(fd);
  }
  batch.endOfFile(id);
  if (batch.full) await flush();
  return off;
}

interface RequestableFile {
  readonly rel: string;
  readonly abs: string;
  readonly size: number;
  readonly dev: bigint;
  readonly ino: bigint;
}

function changedError(file: RequestableFile, why: string): Error {
  return contextChangedError(file.rel, why);
}

export function diffCopySender(
  dirs: ReadonlyMap<string, string>,
  opts: FileSyncOptions = {},
): Handler {
  return async (call: GrpcCall) => {
    const dirName = call.metadata('dir-name')[0] ?? '';
    const root = dirs.get(dirName);
    if (root === undefined) {
      throw new GrpcStatusError(GRPC_NOT_FOUND, `no access allowed to dir "${dirName}"`);
    }
    const requestable = new Map<number, RequestableFile>();
    const queued = new Set<number>();
    const queue: number[] = [];
    let finReceived = false;
    let failure: unknown;
    let wake: (() => void) | undefined;
    const poke = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };

    // The daemon's side: REQs (at any time, also while we still list), then FIN.
    const reader = (async () => {
      try {
        for await (const raw of call.messages()) {
          const p = PacketMsg.decode(raw);
          if (p.type === T.PACKET_REQ) {
            if (!requestable.has(p.ID) || queued.has(p.ID)) {
              throw new GrpcStatusError(GRPC_INVALID_ARGUMENT, `invalid file id ${p.ID}`);
            }
            queued.add(p.ID);
            queue.push(p.ID);
          } else if (p.type === T.PACKET_ERR) {
            throw new Error(`error from receiver: ${Buffer.from(p.data).toString('utf8')}`);
          } else if (p.type === T.PACKET_FIN) {
            finReceived = true;
            return;
          }
          poke();
        }
        throw new Error('daemon closed the transfer without FIN');
      } catch (e) {
        failure ??= e;
      } finally {
        poke();
      }
    })();

    const batch = new PacketBatch();
    const flush = async () => {
      if (batch.size > 0) await call.sendFramed(batch.take());
    };
    const walker = new ContextWalker(root, {
      includePatterns: call.metadata('include-patterns'),
      excludePatterns: call.metadata('exclude-patterns'),
      followPaths: call.metadata('followpaths'),
      lookup: opts.lookup,
    });
    let listing = true;
    let nextId = 0;
    let files = 0;
    let bytes = 0;
    try {
      for (;;) {
        if (failure !== undefined) throw failure;
        // Requested files first: the daemon is waiting for them.
        for (let fid = queue.shift(); fid !== undefined; fid = queue.shift()) {
          const f = requestable.get(fid)!;
          requestable.delete(fid);
          bytes += await addFile(batch, flush, fid, f);
          files++;
        }
        if (listing) {
          try {
            const entries = walker.next(LIST_SLICE);
            for (const e of entries) {
              const st = e.stat;
              // IDs count every entry; only plain files (not hardlinks) may be requested.
              if (canRequestData(st.mode)) {
                requestable.set(nextId, {
                  rel: st.path,
                  abs: e.abs,
                  size: Number(st.size),
                  dev: e.dev,
                  ino: e.ino,
                });
              }
              nextId++;
              batch.stat(st);
            }
            if (walker.done) {
              batch.stat(undefined); // end of listing
              listing = false;
            }
          } catch (err) {
            batch.err(err instanceof Error ? err.message : String(err));
            await flush().catch(() => {});
            throw err;
          }
          if (batch.full || !listing) await flush();
          // Let the daemon's requests in between slices of the listing.
          await nextTurn();
          continue;
        }
        if (queue.length > 0) continue;
        await flush();
        // Requests may have arrived while the flush waited for the stream to drain.
        if (queue.length > 0) continue;
        if (finReceived) {
          batch.fin();
          await flush();
          await reader;
          opts.onDone?.({ dirName, files, bytes });
          return;
        }
        if (failure === undefined) {
          await new Promise<void>((r) => {
            wake = r;
          });
        }
      }
    } finally {
      walker.close(); // a transfer that failed or was cancelled mid-listing
      poke();
    }
  };
}
