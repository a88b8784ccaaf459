/**
 * FileSend.DiffCopy, receiving side: the daemon pushes exporter output to us. The same method
 * carries two formats, chosen by the exporter (`buildkit-attachable-exporter-id` header is the
 * index into SolveRequest.Exporters):
 * - `local`: fsutil packets; we are the receiver (REQ the files we want, FIN when done);
 * - `tar`, `oci`, `docker`: raw archive bytes in BytesMessage.data until the daemon closes.
 *
 * Paths come from the build, i.e. from whatever the Dockerfile produced, so they are treated
 * as hostile: each must be a clean relative path whose parent is a directory created by this
 * transfer (or the destination itself), so a symlink in the export can never redirect a later
 * write outside `dest`. Owners are not applied (files belong to the user running the build).
 */

import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  futimesSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Stat } from '../gen/fsutil/types/stat';
import { type Packet, Packet as PacketMsg, Packet_PacketType as T } from '../gen/fsutil/types/wire';
import { BytesMessage } from '../gen/moby/filesync/v1/filesync';
import { nodeCrypto } from '../lazy-node';
import {
  canRequestData,
  isDirMode,
  isSymlinkMode,
  MODE_CHAR_DEVICE,
  MODE_DEVICE,
  MODE_NAMED_PIPE,
  posixPermBits,
} from './fsstat';
import {
  GRPC_INVALID_ARGUMENT,
  GRPC_NOT_FOUND,
  type GrpcCall,
  GrpcStatusError,
  type Handler,
} from './grpc-server';
import { cleanPath } from './patterns';

export type ExportTarget =
  /**
   * `keepSetid`: regular files keep setuid/setgid bits (stripped by default). `onWarning`
   * hears of what the export holds that is not written (device nodes).
   */
  | {
      readonly kind: 'dir';
      readonly dest: string;
      readonly keepSetid?: boolean;
      readonly onWarning?: ((message: string) => void) | undefined;
    }
  | { readonly kind: 'file'; readonly path: string };

function encode(p: Partial<Packet>): Uint8Array {
  return PacketMsg.encode(PacketMsg.fromPartial(p)).finish();
}

function unsafe(path: string, why: string): GrpcStatusError {
  return new GrpcStatusError(
    GRPC_INVALID_ARGUMENT,
    `refusing exported path ${JSON.stringify(path)}: ${why}`,
  );
}

/** Checks a path from the daemon; returns it unchanged when acceptable. */
export function checkExportPath(p: string): string {
  if (p === '' || p.includes('\0')) throw unsafe(p, 'empty or contains NUL');
  if (p.startsWith('/')) throw unsafe(p, 'absolute');
  if (cleanPath(p) !== p || p === '.') throw unsafe(p, 'not a clean relative path');
  if (p === '..' || p.startsWith('../')) throw unsafe(p, 'escapes the destination');
  return p;
}

/**
 * A time for Node's utimes: seconds as a double, which libuv cuts to whole microseconds
 * (uv__fs_to_timespec) after converting back to nanoseconds. Half a microsecond over the
 * wanted one, so that the double's rounding never lands below it: the time set is the
 * nanosecond time cut to the microsecond, the finest Node can set.
 */
const toSeconds = (ns: bigint): number => {
  const us = (ns % 1_000_000_000n) / 1000n;
  return Number(ns / 1_000_000_000n) + (Number(us) * 1000 + 500) / 1e9;
};
/** S_ISUID | S_ISGID. */
const SET_ID_BITS = 0o6000;

/** A name next to `final` for writing it before it appears under its own name. */
const partialName = (final: string): string =>
  join(
    dirname(final),
    `.${basename(final)}.ktl-partial-${process.pid}-${nodeCrypto().randomBytes(4).toString('hex')}`,
  );

/** A regular file of a local export whose data is still coming. */
interface OpenFile {
  /** Held open only while among the most recently written (MAX_HELD_FILES). */
  fd: number | undefined;
  readonly path: string;
  readonly final: string;
  readonly rel: string;
  readonly stat: Stat;
}

/**
 * Partial files held open at once, at most. The daemon is sent a REQ for each file as its
 * STAT arrives and sends the data later, a few files at a time: a descriptor for every file
 * requested and not yet complete ran into the open-file limit (the sandbox's 4096) on large
 * exports. The others are opened again when their data comes.
 */
const MAX_HELD_FILES = 64;
const PARTIAL_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW;

/**
 * A FIFO at `abs` (whose directory this transfer made) with permission bits `perm`. Node has
 * no mknod: coreutils' mkfifo makes it, given the path as an argument (no shell), mode 0600
 * until the chmod that follows (mkfifo's -m would be cut by the umask).
 */
function makeFifo(abs: string, perm: number): void {
  const r = spawnSync('mkfifo', ['-m', '600', '--', abs], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(
      `cannot create the FIFO ${abs}: ${r.error ? r.error.message : r.stderr.trim() || `mkfifo exited ${r.status}`}`,
    );
  chmodSync(abs, perm);
}

/**
 * Writes a `local` export. Each file is written under a temporary name in its directory and
 * renamed into place once complete, so no reader ever sees a half-written file under its real
 * name, and a failed export leaves no partial files behind.
 */
class LocalReceiver {
  private readonly dirs = new Set<string>(['.']);
  /** Regular files of this export: relative path -> where its inode is now (partial or final). */
  private readonly regular = new Map<string, string>();
  /** Requested files whose data has not all come: by file id. */
  private readonly open = new Map<number, OpenFile>();
  /** The ids of those holding a descriptor now, least recently written first. */
  private readonly held = new Set<number>();
  private readonly dirTimes: Array<{ abs: string; stat: Stat }> = [];
  private listingDone = false;
  private id = 0;

  constructor(
    private readonly dest: string,
    private readonly call: GrpcCall,
    private readonly keepSetid = false,
    private readonly onWarning?: (message: string) => void,
  ) {}

  private abs(rel: string): string {
    return join(this.dest, rel);
  }

  /** Removes whatever non-directory is in the way (merging into an existing dest). */
  private clear(rel: string, keepDir: boolean): void {
    let st: ReturnType<typeof lstatSync> | undefined;
    try {
      st = lstatSync(this.abs(rel));
    } catch {
      return;
    }
    if (keepDir && st.isDirectory()) return;
    rmSync(this.abs(rel), { recursive: true, force: true });
  }

  private clearDir(rel: string): void {
    try {
      if (lstatSync(this.abs(rel)).isDirectory())
        rmSync(this.abs(rel), { recursive: true, force: true });
    } catch {}
  }

  async onStat(stat: Stat): Promise<void> {
    const id = this.id++;
    const rel = checkExportPath(stat.path);
    const parent = rel.includes('/') ? dirname(rel) : '.';
    if (!this.dirs.has(parent)) throw unsafe(rel, 'parent is not a directory of this export');
    const abs = this.abs(rel);
    const mode = stat.mode;
    if (isDirMode(mode)) {
      this.clear(rel, true);
      try {
        mkdirSync(abs, { mode: 0o700 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      this.dirs.add(rel);
      this.dirTimes.push({ abs, stat });
    } else if (isSymlinkMode(mode)) {
      this.clear(rel, false);
      symlinkSync(stat.linkname, abs);
      lutimesSync(abs, toSeconds(stat.modTime), toSeconds(stat.modTime));
    } else if (canRequestData(mode)) {
      if (stat.linkname !== '') {
        this.clear(rel, false);
        const target = checkExportPath(stat.linkname);
        const at = this.regular.get(target);
        if (at === undefined) throw unsafe(rel, `hardlink to unknown path ${target}`);
        // The same inode, whether its data is still arriving (partial name) or complete.
        linkSync(at, abs);
        return;
      }
      // An existing file or link is replaced by the rename; only a directory must go first.
      this.clearDir(rel);
      const partial = partialName(abs);
      const fd = openSync(partial, PARTIAL_FLAGS | constants.O_CREAT | constants.O_EXCL, 0o600);
      this.regular.set(rel, partial);
      const f: OpenFile = { fd, path: partial, final: abs, rel, stat };
      this.open.set(id, f);
      this.hold(id);
      await this.call.send(encode({ type: T.PACKET_REQ, ID: id }));
    } else if (mode & MODE_NAMED_PIPE) {
      this.clear(rel, false);
      makeFifo(abs, posixPermBits(mode) & (this.keepSetid ? 0o7777 : ~SET_ID_BITS));
      utimesSync(abs, toSeconds(stat.modTime), toSeconds(stat.modTime));
    } else if (mode & MODE_DEVICE) {
      // Unlike buildx (which, as root, makes them): a device node a build chose, in the
      // caller's tree, is raw access to that device for whoever its mode lets in.
      const kind = mode & MODE_CHAR_DEVICE ? 'character' : 'block';
      this.onWarning?.(
        `${rel}: the export holds a ${kind} device node (${stat.devmajor}:${stat.devminor}); not created in ${this.dest}: ktl writes no device nodes into a local export`,
      );
    }
  }

  /** File `id` holds its descriptor, as the most recent; the least recent beyond the cap
   * give theirs up. */
  private hold(id: number): void {
    this.held.delete(id);
    this.held.add(id);
    while (this.held.size > MAX_HELD_FILES) {
      const oldest = this.held.values().next().value as number;
      this.held.delete(oldest);
      const o = this.open.get(oldest)!;
      closeSync(o.fd!);
      o.fd = undefined;
    }
  }

  /** A descriptor on `f`'s partial file: the one it holds, or the file opened again. */
  private fdOf(id: number, f: OpenFile): number {
    // Reopened by the name this transfer created it under, in a directory this transfer made.
    f.fd ??= openSync(f.path, PARTIAL_FLAGS);
    this.hold(id);
    return f.fd;
  }

  onData(p: Packet): void {
    const f = this.open.get(p.ID);
    if (!f) throw new GrpcStatusError(GRPC_INVALID_ARGUMENT, `invalid file request ${p.ID}`);
    const fd = this.fdOf(p.ID, f);
    if (p.data.length > 0) {
      writeSync(fd, p.data);
      return;
    }
    const bits = posixPermBits(f.stat.mode);
    fchmodSync(fd, this.keepSetid ? bits : bits & ~SET_ID_BITS);
    futimesSync(fd, toSeconds(f.stat.modTime), toSeconds(f.stat.modTime));
    this.held.delete(p.ID);
    f.fd = undefined;
    closeSync(fd);
    renameSync(f.path, f.final);
    this.regular.set(f.rel, f.final);
    this.open.delete(p.ID);
  }

  /** Finish once the listing ended and every requested file arrived. */
  get complete(): boolean {
    return this.listingDone && this.open.size === 0;
  }

  endListing(): void {
    this.listingDone = true;
  }

  finalize(): void {
    // Directory modes and times last: writing children changes a directory's mtime, and a
    // read-only mode would stop us writing into it.
    for (const { abs, stat } of this.dirTimes.reverse()) {
      chmodSync(abs, posixPermBits(stat.mode));
      utimesSync(abs, toSeconds(stat.modTime), toSeconds(stat.modTime));
    }
  }

  abort(): void {
    for (const f of this.open.values()) {
      if (f.fd !== undefined) closeSync(f.fd);
      rmSync(f.path, { force: true });
    }
    this.open.clear();
    this.held.clear();
  }
}

async function receiveLocal(
  call: GrpcCall,
  dest: string,
  keepSetid: boolean,
  onWarning: ((message: string) => void) | undefined,
): Promise<void> {
  mkdirSync(dest, { recursive: true });
  const r = new LocalReceiver(dest, call, keepSetid, onWarning);
  let finSent = false;
  try {
    for await (const raw of call.messages()) {
      const p = PacketMsg.decode(raw);
      switch (p.type) {
        case T.PACKET_STAT:
          if (p.stat === undefined) r.endListing();
          else await r.onStat(p.stat);
          break;
        case T.PACKET_DATA:
          r.onData(p);
          break;
        case T.PACKET_ERR:
          throw new SenderError(`error from sender: ${Buffer.from(p.data).toString('utf8')}`);
        case T.PACKET_FIN:
          // The sender's answer to our FIN: nothing more will come.
          return;
      }
      if (r.complete && !finSent) {
        r.finalize();
        finSent = true;
        await call.send(encode({ type: T.PACKET_FIN }));
      }
    }
    if (!finSent) throw new SenderError('daemon ended the export before it was complete');
  } catch (err) {
    r.abort();
    const raw = err instanceof Error ? err.message : String(err);
    // Ours to write and not written (a full disk, the open-file limit, a path refused): said
    // so in words the build's client recognises in the daemon's error (exportWriteFailed).
    const msg =
      err instanceof SenderError ? raw : `${exportFailed(`local export to ${dest}`)}${raw}`;
    await call.send(encode({ type: T.PACKET_ERR, data: Buffer.from(msg) })).catch(() => {});
    if (err instanceof SenderError) throw err;
    throw err instanceof GrpcStatusError
      ? new GrpcStatusError(err.code, msg)
      : new Error(msg, { cause: err });
  }
}

/** The daemon's side of an export failed or ended it: not a failure to write here. */
class SenderError extends Error {}

const WRITE_FAILED = ' could not be written: ';
const exportFailed = (what: string) => `the ${what}${WRITE_FAILED}`;

/**
 * Whether a build's error is an export that this client could not write on its machine
 * (ENOSPC, EMFILE, a refused path), also as the daemon passes it on from a session served by
 * another process: the build itself succeeded.
 */
export function exportWriteFailed(message: string): boolean {
  return /the (local|file) export to .+ could not be written: /.test(message);
}

/** A `tar` (or oci/docker archive) export: written under a partial name, renamed when whole. */
async function receiveFile(call: GrpcCall, path: string): Promise<void> {
  /** What failed here, on this machine (not the daemon's stream). */
  const ours = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new Error(`${exportFailed(`file export to ${path}`)}${(e as Error).message}`, {
        cause: e,
      });
    }
  };
  const partial = partialName(path);
  const fd = ours(() => {
    mkdirSync(dirname(path), { recursive: true });
    return openSync(
      partial,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o644,
    );
  });
  let ok = false;
  try {
    for await (const raw of call.messages()) {
      const chunk = BytesMessage.decode(raw).data;
      ours(() => {
        for (let off = 0; off < chunk.length; )
          off += writeSync(fd, chunk, off, chunk.length - off);
      });
    }
    ok = true;
  } finally {
    let placed = false;
    try {
      ours(() => closeSync(fd));
      if (ok) {
        ours(() => renameSync(partial, path));
        placed = true;
      }
    } finally {
      if (!placed) rmSync(partial, { force: true });
    }
  }
}

/**
 * One `local` transfer at a time per destination. A multi-platform build exports each platform
 * in a transfer of its own, all at once, into the same destination (each into its
 * `linux_<arch>/` subdirectory, or all into the top with platform-split=false). Each transfer
 * only writes below directories it created itself, but two at once in one tree could race:
 * one replaces a directory with a symlink just after the other checked it, and the other's
 * next file would be written through the link, outside the destination. In turn they cannot.
 */
const localQueues = new Map<string, Promise<void>>();

function oneAtATime(dest: string, work: () => Promise<void>): Promise<void> {
  const before = localQueues.get(dest) ?? Promise.resolve();
  const mine = before.then(work, work);
  const tail = mine.catch(() => {});
  localQueues.set(dest, tail);
  void tail.then(() => {
    if (localQueues.get(dest) === tail) localQueues.delete(dest);
  });
  return mine;
}

/** FileSend.DiffCopy, dispatching on the exporter index to the matching target. */
export function fileSendReceiver(targets: readonly (ExportTarget | undefined)[]): Handler {
  return async (call) => {
    const raw = call.metadata('buildkit-attachable-exporter-id')[0];
    const index = raw === undefined ? 0 : Number.parseInt(raw, 10);
    const target = targets[Number.isNaN(index) ? 0 : index];
    if (!target) throw new GrpcStatusError(GRPC_NOT_FOUND, `exporter ${raw ?? 0} not found`);
    if (target.kind === 'dir') {
      const dest = resolve(target.dest);
      await oneAtATime(dest, () =>
        receiveLocal(call, dest, target.keepSetid === true, target.onWarning),
      );
    } else await receiveFile(call, target.path);
  };
}
