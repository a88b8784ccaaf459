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
import { closeSync, openSync } from 'node:fs';
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
import { walkContext } from './walk';

/** Listing entries encoded between two chances to read the daemon's requests. */
const LIST_SLICE = 512;

export interface SyncProgress {
  readonly dirName: string;
  readonly files: number;
  readonly bytes: number;
}

export interface FileSyncOptions {
  onDone?: ((p: SyncProgress) => void) | undefined;
}

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

/**
 * Appends file `id` to the batch: DATA packets read straight from disk, then the empty DATA
 * that ends it. Sends at most the size the listing announced (a file growing meanwhile is cut
 * there, like a tar of it would be); a file that cannot be opened is sent empty, as fsutil does.
 */
async function addFile(
  batch: PacketBatch,
  flush: () => Promise<void>,
  id: number,
  abs: string,
  size: number,
): Promise<number> {
  let fd: number | undefined;
  try {
    fd = openSync(abs, 'r');
  } catch {
    // fsutil too: the receiver then sees a short file.
  }
  let off = 0;
  if (fd !== undefined) {
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
  }
  batch.endOfFile(id);
  if (batch.full) await flush();
  return off;
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
    const requestable = new Map<number, { abs: string; size: number }>();
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
    const walker = walkContext(root, {
      includePatterns: call.metadata('include-patterns'),
      excludePatterns: call.metadata('exclude-patterns'),
      followPaths: call.metadata('followpaths'),
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
          bytes += await addFile(batch, flush, fid, f.abs, f.size);
          files++;
        }
        if (listing) {
          try {
            for (let k = 0; k < LIST_SLICE; k++) {
              const r = walker.next();
              if (r.done) {
                batch.stat(undefined); // end of listing
                listing = false;
                break;
              }
              const st = r.value.stat;
              // IDs count every entry; only plain files (not hardlinks) may be requested.
              if (canRequestData(st.mode)) {
                requestable.set(nextId, { abs: r.value.abs, size: Number(st.size) });
              }
              nextId++;
              batch.stat(st);
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
      poke();
    }
  };
}
