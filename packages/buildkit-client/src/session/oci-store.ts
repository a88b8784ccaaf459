/**
 * A content store on disk in the OCI image layout (`blobs/<alg>/<hex>`), as the `local` cache
 * uses it: the daemon writes cache blobs into it and reads them back through the session.
 *
 * The directory is the user's, but what is inside it is not to be trusted: a cache restored
 * from CI storage or checked into a repository may hold symlinks (`blobs/sha256/<hex>` ->
 * `~/.ssh/id_ed25519`, `blobs` -> `/etc`), hard links, FIFOs or files whose bytes do not match
 * their name. So only the digest picks a path (validated: no `..`, no `/`), each directory on
 * the way must be a real directory (a symlink is refused, never followed), a blob is opened
 * with O_NOFOLLOW and must be a regular file with one link, and its bytes are hashed before
 * the first byte is served. New blobs are written under a random name in `ingest/` (same
 * filesystem), verified against the expected size and digest, made read-only and renamed into
 * place, so a reader never sees half a blob and a failed write leaves nothing under a digest.
 *
 * What this does not cover: another local user racing us on the same directory (swapping a
 * checked directory for a symlink between the check and the open); Node has no openat().
 */
import type { Hash } from 'node:crypto';
import { constants, mkdirSync, realpathSync, type Stats, statSync } from 'node:fs';
import { type FileHandle, lstat, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeCrypto } from '../lazy-node';
import {
  GRPC_ALREADY_EXISTS,
  GRPC_FAILED_PRECONDITION,
  GRPC_INVALID_ARGUMENT,
  GRPC_NOT_FOUND,
  GRPC_PERMISSION_DENIED,
  GRPC_UNAVAILABLE,
  GrpcStatusError,
} from './grpc-server';

/** Digest algorithms go-digest knows, with their hex length. */
const ALGORITHMS: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

export interface Digest {
  readonly algorithm: 'sha256' | 'sha384' | 'sha512';
  readonly hex: string;
  /** `algorithm:hex`. */
  readonly text: string;
}

/** Parses `sha256:<64 lowercase hex>` (or sha384/sha512); anything else is undefined. */
export function parseDigest(text: string): Digest | undefined {
  const m = /^(sha256|sha384|sha512):([a-f0-9]+)$/.exec(text);
  if (!m || m[2]!.length !== ALGORITHMS[m[1]!]) return undefined;
  return { algorithm: m[1] as Digest['algorithm'], hex: m[2]!, text };
}

function mustDigest(text: string): Digest {
  const d = parseDigest(text);
  if (!d) {
    throw new GrpcStatusError(
      GRPC_INVALID_ARGUMENT,
      `${JSON.stringify(text.slice(0, 200))} is not a digest (expected sha256:<64 hex digits>)`,
    );
  }
  return d;
}

export interface BlobInfo {
  readonly digest: string;
  readonly size: number;
  readonly modified: Date;
}

/** A write under way: bytes go to a temporary file until commit verifies them. */
export interface BlobWrite {
  readonly ref: string;
  readonly startedAt: Date;
  readonly updatedAt: Date;
  /** Bytes written so far. */
  readonly offset: number;
  /** The size announced by the writer (0: not known). */
  total: number;
  /** The digest announced by the writer, if any. */
  expected: string;
  /** Digest of the bytes written so far. */
  digest(): string;
  append(data: Uint8Array): Promise<void>;
  /** Drops what was written (a writer that starts over at offset 0). */
  reset(): Promise<void>;
  /**
   * Verifies size (when `size` > 0) and digest (when `expected` is set), then moves the blob
   * under its digest. ALREADY_EXISTS when a blob with that digest is already there.
   */
  commit(size: number, expected: string): Promise<void>;
  /** Removes the temporary file; safe to call more than once and after commit. */
  abort(): Promise<void>;
}

const BLOB_MODE = 0o444;
const DIR_MODE = 0o755;

/** An error for something in the store that is not what a store may hold. */
function refused(path: string, what: string): GrpcStatusError {
  return new GrpcStatusError(
    GRPC_PERMISSION_DENIED,
    `${path} ${what}; ktl serves only regular files inside the cache directory and does not follow links out of it`,
  );
}

function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (st.isDirectory()) return 'is a directory';
  if (st.isFIFO()) return 'is a FIFO';
  if (st.isSocket()) return 'is a socket';
  if (st.isBlockDevice() || st.isCharacterDevice()) return 'is a device';
  return 'is not a regular file';
}

export class OciLayoutStore {
  /** Blob digests whose bytes were checked, by `dev:ino:size:mtime` of the file checked. */
  private readonly verified = new Map<string, string>();
  private readonly writes = new Map<string, BlobWrite>();

  private constructor(
    /** The store's real path (symlinks in the path as the user typed it resolved once). */
    readonly root: string,
    readonly writable: boolean,
  ) {}

  /**
   * Opens the store at `dir`. A writable store is created when missing (like buildx does for
   * `--cache-to type=local,dest=DIR`); a read-only one must exist.
   */
  static open(dir: string, opts: { writable: boolean; pinned?: boolean }): OciLayoutStore {
    if (opts.writable) mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    let root: string;
    try {
      // A pinned directory (`/proc/self/fd/N`) is used as it is: resolving it would trade the
      // open directory for whatever its name points at now.
      root = opts.pinned ? dir : realpathSync(dir);
    } catch (e) {
      throw new GrpcStatusError(
        GRPC_NOT_FOUND,
        `cache directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
    // The root itself may be reached through a link (the user's path, or /proc/self/fd/N).
    if (!statSync(root).isDirectory()) {
      throw new GrpcStatusError(GRPC_FAILED_PRECONDITION, `${dir} is not a directory`);
    }
    return new OciLayoutStore(root, opts.writable);
  }

  /**
   * A directory inside the store (`blobs`, `blobs/sha256`, `ingest`), each step a real
   * directory; created (in a writable store) when missing.
   */
  private async dir(parts: readonly string[], create: boolean): Promise<string | undefined> {
    let p = this.root;
    for (const part of parts) {
      p = join(p, part);
      let st: Stats;
      try {
        st = await lstat(p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        if (!create) return undefined;
        try {
          mkdirSync(p, { mode: DIR_MODE });
        } catch (e2) {
          if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') throw e2;
        }
        st = await lstat(p);
      }
      if (!st.isDirectory()) throw refused(p, kindOf(st));
    }
    return p;
  }

  private blobPath(d: Digest, dir: string): string {
    return join(dir, d.hex);
  }

  /**
   * The blob's file, opened without following links, checked to be a regular file with one
   * link. NOT_FOUND when there is no entry under that digest.
   */
  private async openBlob(d: Digest): Promise<{ fh: FileHandle; st: Stats; path: string }> {
    const dir = await this.dir(['blobs', d.algorithm], false);
    const path = join(this.root, 'blobs', d.algorithm, d.hex);
    if (dir === undefined) throw notFound(d.text);
    let fh: FileHandle;
    try {
      // O_NONBLOCK: opening a FIFO planted under a digest must not hang the session.
      fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw notFound(d.text);
      if (code === 'ELOOP') throw refused(path, 'is a symbolic link');
      throw e;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw refused(path, kindOf(st));
      // A hard link shares its inode with a file elsewhere: serving it would serve that file.
      if (st.nlink > 1) throw refused(path, `has ${st.nlink} hard links`);
      return { fh, st, path };
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async info(digest: string): Promise<BlobInfo> {
    const d = mustDigest(digest);
    const { fh, st } = await this.openBlob(d);
    await fh.close();
    return { digest: d.text, size: st.size, modified: st.mtime };
  }

  /** Whether a regular file is stored under `digest` (a symlink there does not count). */
  private async has(d: Digest): Promise<boolean> {
    try {
      const st = await lstat(join(this.root, 'blobs', d.algorithm, d.hex));
      return st.isFile();
    } catch {
      return false;
    }
  }

  /**
   * Reads `[offset, offset+size)` of a blob (size clipped to the end) in chunks. The whole
   * blob is hashed first, once per file, so bytes that do not match their digest are never
   * served.
   */
  async *read(digest: string, offset: number, size: number, chunk: number) {
    const d = mustDigest(digest);
    const { fh, st, path } = await this.openBlob(d);
    try {
      await this.verify(d, fh, st, path);
      let pos = offset;
      const end = offset + size;
      while (pos < end) {
        const buf = Buffer.allocUnsafe(Math.min(chunk, end - pos));
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) {
          throw new GrpcStatusError(GRPC_FAILED_PRECONDITION, `${path} shrank while being read`);
        }
        yield { offset: pos, data: buf.subarray(0, bytesRead) };
        pos += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }

  /** Checks that the blob stored under `digest` holds the bytes the digest names. */
  async verifyBlob(digest: string): Promise<void> {
    const d = mustDigest(digest);
    const { fh, st, path } = await this.openBlob(d);
    try {
      await this.verify(d, fh, st, path);
    } finally {
      await fh.close();
    }
  }

  private async verify(d: Digest, fh: FileHandle, st: Stats, path: string): Promise<void> {
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    if (this.verified.get(key) === d.text) return;
    const h = nodeCrypto().createHash(d.algorithm);
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    const actual = `${d.algorithm}:${h.digest('hex')}`;
    if (actual !== d.text) {
      throw new GrpcStatusError(
        GRPC_FAILED_PRECONDITION,
        `${path} does not hold ${d.text} (its bytes hash to ${actual}); the cache directory is damaged or was tampered with`,
      );
    }
    this.verified.set(key, d.text);
  }

  /** The write under way for `ref`, if any. */
  activeWrite(ref: string): BlobWrite | undefined {
    return this.writes.get(ref);
  }

  activeWrites(): BlobWrite[] {
    return [...this.writes.values()];
  }

  /**
   * Starts a write named `ref`. ALREADY_EXISTS when `expected` is already stored (the writer
   * then skips the blob); UNAVAILABLE-like refusal when `ref` is being written by another call.
   */
  async beginWrite(ref: string, expected: string, total: number): Promise<BlobWrite> {
    if (!this.writable) {
      throw new GrpcStatusError(
        GRPC_PERMISSION_DENIED,
        `${this.root} is a cache source (--cache-from): ktl does not let the builder write into it`,
      );
    }
    if (expected !== '') await this.checkAbsent(mustDigest(expected));
    if (this.writes.has(ref)) {
      throw new GrpcStatusError(GRPC_UNAVAILABLE, `ref ${ref} locked: another write is under way`);
    }
    const ingest = (await this.dir(['ingest'], true))!;
    const tmp = join(ingest, `ktl-${process.pid}-${nodeCrypto().randomBytes(8).toString('hex')}`);
    const fh = await open(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o644,
    );
    const w = new TempBlobWrite(this, ref, tmp, fh, expected, total, () => this.writes.delete(ref));
    this.writes.set(ref, w);
    return w;
  }

  /** ALREADY_EXISTS when a regular file is stored under `d`. */
  async checkAbsent(d: Digest): Promise<void> {
    if (await this.has(d)) {
      throw new GrpcStatusError(GRPC_ALREADY_EXISTS, `blob with expected digest ${d.text} exists`);
    }
  }

  /** Moves a verified temporary file under its digest. */
  async place(tmp: string, d: Digest): Promise<void> {
    const dir = (await this.dir(['blobs', d.algorithm], true))!;
    const final = this.blobPath(d, dir);
    let existing: Stats | undefined;
    try {
      existing = await lstat(final);
    } catch {
      existing = undefined;
    }
    if (existing?.isFile()) {
      throw new GrpcStatusError(GRPC_ALREADY_EXISTS, `content ${d.text}: already exists`);
    }
    if (existing?.isDirectory()) throw refused(final, 'is a directory');
    // Anything else there (a symlink planted under the digest) is replaced by the real blob:
    // rename(2) swaps the name itself and never writes through a link.
    await rename(tmp, final);
  }
}

function notFound(digest: string): GrpcStatusError {
  return new GrpcStatusError(GRPC_NOT_FOUND, `content digest ${digest}: not found`);
}

class TempBlobWrite implements BlobWrite {
  readonly startedAt = new Date();
  updatedAt = new Date();
  offset = 0;
  private hash: Hash | undefined;
  /** The algorithm `hash` computes: the expected digest's when known at the first byte. */
  private hashAlgorithm: Digest['algorithm'] = 'sha256';
  private done = false;

  constructor(
    private readonly store: OciLayoutStore,
    readonly ref: string,
    private readonly tmp: string,
    private readonly fh: FileHandle,
    public expected: string,
    public total: number,
    private readonly release: () => void,
  ) {}

  private hasher(): Hash {
    if (!this.hash) {
      this.hashAlgorithm = parseDigest(this.expected)?.algorithm ?? 'sha256';
      this.hash = nodeCrypto().createHash(this.hashAlgorithm);
    }
    return this.hash;
  }

  digest(): string {
    const h = this.hasher();
    return `${this.hashAlgorithm}:${h.copy().digest('hex')}`;
  }

  async append(data: Uint8Array): Promise<void> {
    this.alive();
    let written = 0;
    while (written < data.length) {
      // Positioned: after a reset the file offset would still be at the old end.
      const { bytesWritten } = await this.fh.write(
        data,
        written,
        data.length - written,
        this.offset + written,
      );
      written += bytesWritten;
    }
    this.hasher().update(data);
    this.offset += data.length;
    this.updatedAt = new Date();
  }

  async reset(): Promise<void> {
    this.alive();
    await this.fh.truncate(0);
    this.hash = undefined;
    this.offset = 0;
    this.updatedAt = new Date();
  }

  async commit(size: number, expected: string): Promise<void> {
    this.alive();
    if (expected !== '') this.expected = expected;
    if (size > 0 && size !== this.offset) {
      await this.abort();
      throw new GrpcStatusError(
        GRPC_FAILED_PRECONDITION,
        `unexpected commit size ${this.offset}, expected ${size}`,
      );
    }
    const actual = this.digest();
    if (this.expected !== '' && actual !== this.expected) {
      await this.abort();
      throw new GrpcStatusError(
        GRPC_FAILED_PRECONDITION,
        `unexpected commit digest ${actual}, expected ${this.expected}`,
      );
    }
    const onDisk = (await this.fh.stat()).size;
    if (onDisk !== this.offset) {
      await this.abort();
      throw new GrpcStatusError(
        GRPC_FAILED_PRECONDITION,
        `write ${this.ref}: ${onDisk} bytes on disk, ${this.offset} received`,
      );
    }
    try {
      await this.fh.chmod(BLOB_MODE);
      await this.fh.sync();
      await this.fh.close();
      this.done = true;
      await this.store.place(this.tmp, parseDigest(actual)!);
    } finally {
      await this.abort();
    }
  }

  async abort(): Promise<void> {
    this.release();
    if (!this.done) {
      this.done = true;
      await this.fh.close().catch(() => {});
    }
    // After a successful rename the temporary name is gone: ENOENT is the normal case.
    await unlink(this.tmp).catch(() => {});
  }

  private alive(): void {
    if (this.done) throw new GrpcStatusError(GRPC_FAILED_PRECONDITION, `write ${this.ref} ended`);
  }
}
