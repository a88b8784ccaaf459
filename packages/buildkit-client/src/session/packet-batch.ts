/**
 * fsutil Packets written straight into large buffers that hold many length-prefixed gRPC
 * messages, flushed with one stream write each. A context upload is tens of thousands of
 * small messages (one STAT per entry, two DATA per small file); encoding each through the
 * generic protobuf writer and writing it on its own cost more CPU than the daemon's side of
 * the transfer, on machines where both share the same cores. File data is read from disk
 * directly into its place in the buffer, so it is copied once.
 *
 * Wire format (fsutil/types/wire.proto, stat.proto): Packet{type=1 varint, stat=2 message,
 * ID=3 varint, data=4 bytes}; Stat{path=1, mode=2, uid=3, gid=4, size=5, modTime=6 (int64,
 * two's complement varint when negative), linkname=7, devmajor=8, devminor=9, xattrs=10 map}.
 * Zero values are left out, as Go's encoder does.
 */
import { readSync } from 'node:fs';
import type { Stat } from '../gen/fsutil/types/stat';

/** Flush when a batch holds this much. */
export const BATCH_BYTES = 256 * 1024;
/** Largest file data per DATA packet (fsutil's own sender uses 32 KiB). */
export const DATA_CHUNK = 128 * 1024;

const PACKET_DATA = 2;
const PACKET_FIN = 3;
const PACKET_ERR = 4;

function varintLen(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function int64Len(v: bigint): number {
  let u = BigInt.asUintN(64, v);
  let n = 1;
  while (u >= 0x80n) {
    u >>= 7n;
    n++;
  }
  return n;
}

/** A growable byte sink with protobuf primitives; `buf` may be replaced when it grows. */
class Sink {
  pos = 0;
  constructor(public buf: Buffer) {}

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }
  varint(v: number): void {
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }
  int64(v: bigint): void {
    let u = BigInt.asUintN(64, v);
    while (u >= 0x80n) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

interface StatParts {
  path: Buffer;
  linkname: Buffer;
  xattrs: Array<[Buffer, Uint8Array, number]>;
  len: number;
}

function statParts(s: Stat): StatParts {
  const path = Buffer.from(s.path, 'utf8');
  const linkname = Buffer.from(s.linkname, 'utf8');
  let len = 0;
  if (path.length) len += 1 + varintLen(path.length) + path.length;
  if (s.mode) len += 1 + varintLen(s.mode);
  if (s.uid) len += 1 + varintLen(s.uid);
  if (s.gid) len += 1 + varintLen(s.gid);
  if (s.size) len += 1 + int64Len(s.size);
  if (s.modTime) len += 1 + int64Len(s.modTime);
  if (linkname.length) len += 1 + varintLen(linkname.length) + linkname.length;
  if (s.devmajor) len += 1 + int64Len(s.devmajor);
  if (s.devminor) len += 1 + int64Len(s.devminor);
  const xattrs: StatParts['xattrs'] = [];
  for (const [k, v] of Object.entries(s.xattrs)) {
    const key = Buffer.from(k, 'utf8');
    // Empty key or value left out of the entry, as for any proto3 field.
    const entry =
      (key.length ? 1 + varintLen(key.length) + key.length : 0) +
      (v.length ? 1 + varintLen(v.length) + v.length : 0);
    xattrs.push([key, v, entry]);
    len += 1 + varintLen(entry) + entry;
  }
  return { path, linkname, xattrs, len };
}

function writeStat(o: Sink, s: Stat, p: StatParts): void {
  if (p.path.length) {
    o.byte(0x0a);
    o.varint(p.path.length);
    o.bytes(p.path);
  }
  if (s.mode) {
    o.byte(0x10);
    o.varint(s.mode);
  }
  if (s.uid) {
    o.byte(0x18);
    o.varint(s.uid);
  }
  if (s.gid) {
    o.byte(0x20);
    o.varint(s.gid);
  }
  if (s.size) {
    o.byte(0x28);
    o.int64(s.size);
  }
  if (s.modTime) {
    o.byte(0x30);
    o.int64(s.modTime);
  }
  if (p.linkname.length) {
    o.byte(0x3a);
    o.varint(p.linkname.length);
    o.bytes(p.linkname);
  }
  if (s.devmajor) {
    o.byte(0x40);
    o.int64(s.devmajor);
  }
  if (s.devminor) {
    o.byte(0x48);
    o.int64(s.devminor);
  }
  for (const [key, v, entry] of p.xattrs) {
    o.byte(0x52);
    o.varint(entry);
    if (key.length) {
      o.byte(0x0a);
      o.varint(key.length);
      o.bytes(key);
    }
    if (v.length) {
      o.byte(0x12);
      o.varint(v.length);
      o.bytes(v);
    }
  }
}

/** Packets for one DiffCopy call, batched; `take()` hands over the bytes to write. */
export class PacketBatch {
  private sink = new Sink(Buffer.allocUnsafe(BATCH_BYTES + 1024));

  get size(): number {
    return this.sink.pos;
  }

  get full(): boolean {
    return this.sink.pos >= BATCH_BYTES;
  }

  /** The batched bytes (whole gRPC messages); the batch starts over with a fresh buffer. */
  take(): Buffer {
    const out = this.sink.buf.subarray(0, this.sink.pos);
    this.sink = new Sink(Buffer.allocUnsafe(BATCH_BYTES + 1024));
    return out;
  }

  private header(msgLen: number): void {
    this.sink.ensure(5 + msgLen);
    const b = this.sink.buf;
    b[this.sink.pos] = 0;
    b.writeUInt32BE(msgLen, this.sink.pos + 1);
    this.sink.pos += 5;
  }

  /** STAT with a stat (a listing entry), or without (end of listing). */
  stat(s: Stat | undefined): void {
    if (!s) {
      this.header(0); // type 0 with no fields: an empty message
      return;
    }
    const parts = statParts(s);
    this.header(1 + varintLen(parts.len) + parts.len);
    this.sink.byte(0x12);
    this.sink.varint(parts.len);
    writeStat(this.sink, s, parts);
  }

  private simple(type: number, id: number, data?: Uint8Array): void {
    const dlen = data?.length ?? 0;
    const len = 2 + (id ? 1 + varintLen(id) : 0) + (dlen ? 1 + varintLen(dlen) + dlen : 0);
    this.header(len);
    const o = this.sink;
    o.byte(0x08);
    o.byte(type);
    if (id) {
      o.byte(0x18);
      o.varint(id);
    }
    if (data && dlen) {
      o.byte(0x22);
      o.varint(dlen);
      o.bytes(data);
    }
  }

  /** An empty DATA: the end of file `id`. */
  endOfFile(id: number): void {
    this.simple(PACKET_DATA, id);
  }

  fin(): void {
    this.simple(PACKET_FIN, 0);
  }

  err(message: string): void {
    this.simple(PACKET_ERR, 0, Buffer.from(message, 'utf8'));
  }

  /**
   * One DATA packet with up to `want` bytes of `fd` at `position`, read straight into the
   * batch. Returns the bytes read (0 at end of file, and then nothing is added).
   */
  data(id: number, fd: number, position: number, want: number): number {
    const head = (n: number) => 2 + (id ? 1 + varintLen(id) : 0) + 1 + varintLen(n);
    const h = head(want);
    this.sink.ensure(5 + h + want);
    const start = this.sink.pos;
    const at = start + 5 + h;
    const got = readSync(fd, this.sink.buf, at, want, position);
    if (got === 0) return 0;
    const gh = head(got);
    // A short read can shorten the length varint: move the data up against its header.
    if (gh !== h) this.sink.buf.copyWithin(start + 5 + gh, at, at + got);
    this.header(gh + got);
    const o = this.sink;
    o.byte(0x08);
    o.byte(PACKET_DATA);
    if (id) {
      o.byte(0x18);
      o.varint(id);
    }
    o.byte(0x22);
    o.varint(got);
    o.pos += got;
    return got;
  }
}
