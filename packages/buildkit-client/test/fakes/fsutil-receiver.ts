/**
 * A fake of the daemon's side of FileSync.DiffCopy: fsutil's receiver, with the checks its
 * Validator and hardlink validator apply to what a client sends. A listing this fake accepts
 * is one the daemon accepts; the messages match fsutil's so a failure reads like the real one
 * ("changes out of order", "invalid hardlink", ...).
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import type { Stat } from '../../src/gen/fsutil/types/stat';
import { Packet, Packet_PacketType as T } from '../../src/gen/fsutil/types/wire';
import { canRequestData, isDirMode } from '../../src/session/fsstat';
import { type Handler, serveGrpc } from '../../src/session/grpc-server';
import { cleanPath } from '../../src/session/patterns';

/** fsutil.ComparePath: byte order, except that '/' sorts before every other byte. */
export function comparePath(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i] === y[i]) continue;
    if ((y[i] !== 0x2f && x[i]! < y[i]!) || x[i] === 0x2f) return -1;
    return 1;
  }
  return x.length - y.length;
}

const goLess = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b)) < 0;

/** fsutil's Validator.HandleChange, for adds. */
export class FsutilValidator {
  private parents: Array<{ dir: string; last: string }> = [{ dir: '', last: '' }];
  private readonly regular = new Set<string>();

  check(stat: Stat): void {
    const p = stat.path;
    if (p !== cleanPath(p)) throw new Error(`unclean path ${p}`);
    if (p.startsWith('/')) throw new Error(`absolute path ${p}`);
    const slash = p.lastIndexOf('/');
    const dir = slash < 0 ? '' : p.slice(0, slash);
    const base = p.slice(slash + 1);
    if (dir === '..' || p.startsWith('../')) throw new Error(`escape check ${p}`);
    // The deepest recorded directory at or before `dir` in path order.
    let i = this.parents.length - 1;
    while (i > 0 && comparePath(this.parents[i]!.dir, dir) > 0) i--;
    this.parents = this.parents.slice(0, i + 1);
    const top = this.parents[this.parents.length - 1]!;
    if (dir !== top.dir || !goLess(top.last, base)) {
      throw new Error(
        `changes out of order: ${JSON.stringify(p)} ${JSON.stringify(join(top.dir, top.last))}`,
      );
    }
    top.last = base;
    if (isDirMode(stat.mode)) this.parents.push({ dir: p, last: '' });
    if (canRequestData(stat.mode)) {
      if (stat.linkname !== '') {
        if (!this.regular.has(stat.linkname))
          throw new Error(`invalid hardlink ${p} -> ${stat.linkname}`);
      } else this.regular.add(p);
    }
  }
}

export interface Received {
  readonly stats: Stat[];
  /** Contents of the plain files, by path. */
  readonly files: Map<string, Buffer>;
}

/** An HTTP/2 client standing in for the daemon, talking to a session server on a socket. */
export async function sessionPair(handlers: ReadonlyMap<string, Handler>, socketPath: string) {
  let stop: (() => void) | undefined;
  const server = net.createServer((sock) => {
    stop = serveGrpc(sock, handlers).close;
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  const client = http2.connect('http://session', {
    createConnection: () => net.connect(socketPath),
    // The daemon's Go client sends large header lists (one header per ignore pattern).
    maxHeaderListPairs: 200_000,
    maxSendHeaderBlockLength: 16 * 1024 * 1024,
  } as http2.ClientSessionOptions);
  client.on('error', () => {});
  return {
    client,
    async close() {
      client.close();
      stop?.();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * Runs one DiffCopy as the daemon's receiver: validates each STAT, requests every plain file
 * as soon as it is listed, checks sizes, sends FIN when everything arrived, expects FIN + OK.
 */
export function receive(
  client: http2.ClientHttp2Session,
  headers: Array<[string, string]>,
  hooks: {
    /** Called as a plain file's STAT arrives, before it is requested (to race the sender). */
    beforeRequest?: (stat: Stat) => void;
    /** Every DATA chunk as it arrives, also of a transfer that fails later. */
    onData?: (path: string, chunk: Buffer) => void;
  } = {},
): Promise<Received> {
  const h: Record<string, string | string[]> = {};
  for (const [k, v] of headers) {
    const cur = h[k];
    h[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  const req = client.request({
    ':method': 'POST',
    ':path': '/moby.filesync.v1.FileSync/DiffCopy',
    'content-type': 'application/grpc',
    ...h,
  });
  const send = (p: Parameters<typeof Packet.fromPartial>[0]) => {
    const m = Packet.encode(Packet.fromPartial(p)).finish();
    const f = Buffer.alloc(5 + m.length);
    f.writeUInt32BE(m.length, 1);
    f.set(m, 5);
    req.write(f);
  };
  const validator = new FsutilValidator();
  const stats: Stat[] = [];
  const files = new Map<string, Buffer>();
  const pending = new Map<number, { stat: Stat; chunks: Buffer[] }>();
  let listed = false;
  let finSent = false;
  let finReceived = false;
  return new Promise((resolve, reject) => {
    const fail = (e: unknown) => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      reject(e);
    };
    const maybeFin = () => {
      if (listed && pending.size === 0 && !finSent) {
        finSent = true;
        send({ type: T.PACKET_FIN });
      }
    };
    let buf = Buffer.alloc(0);
    req.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      try {
        while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
          const n = buf.readUInt32BE(1);
          const p = Packet.decode(buf.subarray(5, 5 + n));
          buf = buf.subarray(5 + n);
          if (p.type === T.PACKET_STAT) {
            if (!p.stat) {
              listed = true;
            } else {
              const id = stats.length; // ids count every STAT
              validator.check(p.stat);
              stats.push(p.stat);
              if (canRequestData(p.stat.mode) && p.stat.linkname === '') {
                pending.set(id, { stat: p.stat, chunks: [] });
                hooks.beforeRequest?.(p.stat);
                send({ type: T.PACKET_REQ, ID: id });
              }
            }
          } else if (p.type === T.PACKET_DATA) {
            const f = pending.get(p.ID);
            if (!f) throw new Error(`data for unrequested id ${p.ID}`);
            if (p.data.length > 0) {
              f.chunks.push(Buffer.from(p.data));
              hooks.onData?.(f.stat.path, Buffer.from(p.data));
            } else {
              const data = Buffer.concat(f.chunks);
              if (BigInt(data.length) !== f.stat.size) {
                throw new Error(
                  `size mismatch for ${f.stat.path}: ${data.length} != ${f.stat.size}`,
                );
              }
              files.set(f.stat.path, data);
              pending.delete(p.ID);
            }
          } else if (p.type === T.PACKET_FIN) {
            finReceived = true;
          } else if (p.type === T.PACKET_ERR) {
            throw new Error(`sender error: ${Buffer.from(p.data).toString()}`);
          }
          maybeFin();
        }
      } catch (e) {
        fail(e);
      }
    });
    req.on('trailers', (t) => {
      if (t['grpc-status'] !== '0') {
        reject(
          new Error(
            `grpc-status ${t['grpc-status']}: ${decodeURIComponent(String(t['grpc-message']))}`,
          ),
        );
      } else if (!finReceived) reject(new Error('OK without FIN'));
      else resolve({ stats, files });
      req.end();
    });
    req.on('response', (r) => {
      if (r['grpc-status'] !== undefined && r['grpc-status'] !== '0') {
        reject(
          new Error(
            `grpc-status ${r['grpc-status']}: ${decodeURIComponent(String(r['grpc-message']))}`,
          ),
        );
      }
    });
    req.on('error', fail);
  });
}
