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
import { closeSync, openSync, readSync } from 'node:fs';
import { type Packet, Packet as PacketMsg, Packet_PacketType as T } from '../gen/fsutil/types/wire';
import { canRequestData } from './fsstat';
import {
  GRPC_INVALID_ARGUMENT,
  GRPC_NOT_FOUND,
  type GrpcCall,
  GrpcStatusError,
  type Handler,
} from './grpc-server';
import { walkContext } from './walk';

const CHUNK = 32 * 1024;

export interface SyncProgress {
  readonly dirName: string;
  readonly files: number;
  readonly bytes: number;
}

export interface FileSyncOptions {
  onDone?: ((p: SyncProgress) => void) | undefined;
}

function encode(p: Partial<Packet>): Uint8Array {
  return PacketMsg.encode(PacketMsg.fromPartial(p)).finish();
}

async function sendFile(call: GrpcCall, id: number, abs: string): Promise<number> {
  let sent = 0;
  let fd: number | undefined;
  try {
    fd = openSync(abs, 'r');
  } catch {
    // Like fsutil: a file that cannot be opened is sent as empty; the daemon sees size mismatch.
  }
  if (fd !== undefined) {
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        const n = readSync(fd, buf, 0, CHUNK, null);
        if (n === 0) break;
        await call.send(encode({ type: T.PACKET_DATA, ID: id, data: buf.subarray(0, n) }));
        sent += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  await call.send(encode({ type: T.PACKET_DATA, ID: id }));
  return sent;
}

export function diffCopySender(
  dirs: ReadonlyMap<string, string>,
  opts: FileSyncOptions = {},
): Handler {
  return async (call) => {
    const dirName = call.metadata('dir-name')[0] ?? '';
    const root = dirs.get(dirName);
    if (root === undefined) {
      throw new GrpcStatusError(GRPC_NOT_FOUND, `no access allowed to dir "${dirName}"`);
    }
    const requestable = new Map<number, string>();
    const queue: number[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let files = 0;
    let bytes = 0;

    // Serves REQs one after another while the listing goes on.
    const server = (async () => {
      for (;;) {
        const id = queue.shift();
        if (id === undefined) {
          if (finished) return;
          await new Promise<void>((r) => {
            wake = r;
          });
          continue;
        }
        const abs = requestable.get(id)!;
        requestable.delete(id);
        bytes += await sendFile(call, id, abs);
        files++;
      }
    })();
    const stopServer = () => {
      finished = true;
      wake?.();
    };

    const lister = (async () => {
      let id = 0;
      try {
        for (const e of walkContext(root, {
          includePatterns: call.metadata('include-patterns'),
          excludePatterns: call.metadata('exclude-patterns'),
          followPaths: call.metadata('followpaths'),
        })) {
          if (canRequestData(e.stat.mode)) requestable.set(id, e.abs);
          id++;
          await call.send(encode({ type: T.PACKET_STAT, stat: e.stat }));
        }
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        await call.send(encode({ type: T.PACKET_ERR, data: Buffer.from(msg) })).catch(() => {});
        throw err;
      }
      await call.send(encode({ type: T.PACKET_STAT }));
    })();
    // Listing errors surface through `lister`; don't let it reject unobserved meanwhile.
    lister.catch(() => {});

    try {
      for await (const raw of call.messages()) {
        const p = PacketMsg.decode(raw);
        if (p.type === T.PACKET_REQ) {
          if (!requestable.has(p.ID) || queue.includes(p.ID)) {
            throw new GrpcStatusError(GRPC_INVALID_ARGUMENT, `invalid file id ${p.ID}`);
          }
          queue.push(p.ID);
          wake?.();
        } else if (p.type === T.PACKET_ERR) {
          throw new Error(`error from receiver: ${Buffer.from(p.data).toString('utf8')}`);
        } else if (p.type === T.PACKET_FIN) {
          await lister;
          stopServer();
          await server;
          await call.send(encode({ type: T.PACKET_FIN }));
          opts.onDone?.({ dirName, files, bytes });
          return;
        }
      }
      throw new Error('daemon closed the transfer without FIN');
    } finally {
      stopServer();
    }
  };
}
