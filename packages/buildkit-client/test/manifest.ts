/**
 * A manifest of a directory tree or a tar archive, entry by entry, and a diff of two of them:
 * for judging what ktl sent or exported against what `docker buildx build` did on the same
 * input. Every context and export comparison test uses these.
 *
 * An entry records what a file system or a tar can say about a file and an image would keep:
 * type, permission bits with setuid/setgid/sticky, owner, size, the SHA-256 of its content,
 * a symlink's target, its hardlink group, mtime in nanoseconds, device numbers and extended
 * attributes. A tree and a tar of the same files give the same manifest: a tar's hardlink
 * entry (typeflag 1) is the file it links to, and the group of a set of hardlinks is named
 * by the first of its paths in byte order, in both, so manifests compare without inodes.
 *
 * Extended attributes of a tree are read with Python's os.listxattr (Node has no xattr API);
 * on a machine without /usr/bin/python3 `xattrsReadable` is false and tree manifests carry no
 * xattrs (the tests that compare them say so in their names).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';

export interface ManifestEntry {
  readonly type: EntryType;
  /** Permission bits plus setuid/setgid/sticky (st_mode & 07777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Content length for files, 0 otherwise. */
  readonly size: number;
  /** SHA-256 of the content (files only). */
  readonly sha256?: string;
  /** Symlink target. */
  readonly target?: string;
  /** A file with other links in this manifest: the first path of the group (byte order). */
  readonly hardlinkGroup?: string;
  /** Nanoseconds since the epoch, as text (tar headers without PAX times: whole seconds). */
  readonly mtimeNs: string;
  /** Device numbers of char/block devices, `major:minor`. */
  readonly rdev?: string;
  /** Extended attributes, name to hex value; absent where none were read. */
  readonly xattrs?: Readonly<Record<string, string>>;
}

export type Manifest = Map<string, ManifestEntry>;

export const xattrsReadable = existsSync('/usr/bin/python3');

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

const PY_XATTRS = `
import os, sys, json
root = sys.argv[1]
out = {}
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        p = os.path.join(d, n)
        try:
            names = os.listxattr(p, follow_symlinks=False)
        except OSError:
            continue
        if names:
            out[os.path.relpath(p, root)] = {k: os.getxattr(p, k, follow_symlinks=False).hex() for k in names}
json.dump(out, sys.stdout)
`;

/** Every extended attribute under `root` (not following links), by relative path. */
export function readXattrs(root: string): Record<string, Record<string, string>> {
  if (!xattrsReadable) return {};
  const r = spawnSync('/usr/bin/python3', ['-c', PY_XATTRS, root], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`reading xattrs under ${root}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, Record<string, string>>;
}

function typeOf(st: Stats): EntryType {
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isSocket()) return 'socket';
  return 'file';
}

const major = (rdev: number) => ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~0xfff);
const minor = (rdev: number) => (rdev & 0xff) | ((rdev >> 12) & 0xfff00);

/** Names each hardlink group by its first path, once all entries are known. */
function groupLinks(m: Map<string, ManifestEntry>, keys: Map<string, string>): Manifest {
  const groups = new Map<string, string[]>();
  for (const [p, k] of keys) groups.set(k, [...(groups.get(k) ?? []), p]);
  for (const paths of groups.values()) {
    if (paths.length < 2) continue;
    const first = [...paths].sort(byteOrder)[0]!;
    for (const p of paths) m.set(p, { ...m.get(p)!, hardlinkGroup: first });
  }
  return new Map([...m].sort(([a], [b]) => byteOrder(a, b)));
}

/** The manifest of the tree under `root` (the root itself not included). */
export function treeManifest(root: string, opts: { xattrs?: boolean } = {}): Manifest {
  const out = new Map<string, ManifestEntry>();
  const inodes = new Map<string, string>();
  const xattrs = opts.xattrs === false ? {} : readXattrs(root);
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort(byteOrder)) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = join(root, r);
      const st = lstatSync(abs, { bigint: true });
      const type = typeOf(lstatSync(abs));
      const rdev = Number(st.rdev);
      const x = xattrs[r];
      out.set(r, {
        type,
        mode: Number(st.mode) & 0o7777,
        uid: Number(st.uid),
        gid: Number(st.gid),
        size: type === 'file' ? Number(st.size) : 0,
        ...(type === 'file'
          ? { sha256: createHash('sha256').update(readFileSync(abs)).digest('hex') }
          : {}),
        ...(type === 'symlink' ? { target: readlinkSync(abs) } : {}),
        mtimeNs: String(st.mtimeNs),
        ...(type === 'char' || type === 'block' ? { rdev: `${major(rdev)}:${minor(rdev)}` } : {}),
        ...(xattrsReadable && opts.xattrs !== false ? { xattrs: x ?? {} } : {}),
      });
      if (type === 'file' && st.nlink > 1n) inodes.set(r, `${st.dev}:${st.ino}`);
      if (type === 'dir') walk(r);
    }
  };
  walk('');
  return groupLinks(out, inodes);
}

/** One member of a tar archive, headers (PAX and GNU long names) applied. */
export interface TarMember {
  readonly name: string;
  readonly typeflag: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
  readonly pax: Readonly<Record<string, string>>;
  readonly data: Buffer;
}

function field(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const nul = s.indexOf(0);
  return (nul < 0 ? s : s.subarray(0, nul)).toString('utf8');
}

function octal(b: Buffer, off: number, len: number): number {
  // GNU base-256 for large values.
  if (b[off]! & 0x80) {
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    return v;
  }
  const s = field(b, off, len).trim();
  return s === '' ? 0 : Number.parseInt(s, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    const len = Number.parseInt(data.subarray(i, sp).toString('ascii'), 10);
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** PAX time ("1700000000.123456789") or a header's whole seconds, in nanoseconds. */
function paxTime(s: string | undefined, seconds: number): bigint {
  if (s === undefined) return BigInt(seconds) * 1_000_000_000n;
  const [whole, frac = ''] = s.split('.');
  return BigInt(whole!) * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9));
}

/** The members of a tar (gzip-compressed or not), in archive order. */
export function readTar(input: Buffer | string): TarMember[] {
  let buf = typeof input === 'string' ? readFileSync(input) : input;
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  const out: TarMember[] = [];
  let pax: Record<string, string> = {};
  let globalPax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  let off = 0;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = octal(h, 124, 12);
    const typeflag = String.fromCharCode(h[156]!) || '0';
    const data = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (typeflag === 'x') {
      pax = { ...pax, ...parsePax(data) };
      continue;
    }
    if (typeflag === 'g') {
      globalPax = { ...globalPax, ...parsePax(data) };
      continue;
    }
    if (typeflag === 'L') {
      longName = field(data, 0, data.length);
      continue;
    }
    if (typeflag === 'K') {
      longLink = field(data, 0, data.length);
      continue;
    }
    const magic = field(h, 257, 6);
    const prefix = magic.startsWith('ustar') ? field(h, 345, 155) : '';
    const p = { ...globalPax, ...pax };
    const name =
      p.path ?? longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    out.push({
      name,
      typeflag: typeflag === '\0' ? '0' : typeflag,
      mode: octal(h, 100, 8),
      uid: p.uid !== undefined ? Number(p.uid) : octal(h, 108, 8),
      gid: p.gid !== undefined ? Number(p.gid) : octal(h, 116, 8),
      size: p.size !== undefined ? Number(p.size) : size,
      mtimeNs: paxTime(p.mtime, octal(h, 136, 12)),
      linkname: p.linkpath ?? longLink ?? field(h, 157, 100),
      devmajor: octal(h, 329, 8),
      devminor: octal(h, 337, 8),
      pax: p,
      data: Buffer.from(data),
    });
    pax = {};
    longName = undefined;
    longLink = undefined;
  }
  return out;
}

const TAR_TYPES: Record<string, EntryType> = {
  '0': 'file',
  '7': 'file',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

const tarPath = (name: string) => name.replace(/^\.?\/+/, '').replace(/\/+$/, '');

/**
 * The manifest of a tar: `./` prefixes and trailing slashes dropped, the root (`.`) left out.
 * `under` keeps only the members below that directory, with paths relative to it.
 */
export function tarManifest(input: Buffer | string, opts: { under?: string } = {}): Manifest {
  const out = new Map<string, ManifestEntry>();
  const links = new Map<string, string>();
  const members = readTar(input);
  const prefix = opts.under ? `${tarPath(opts.under)}/` : '';
  const rel = (n: string): string | undefined => {
    const p = tarPath(n);
    if (!prefix) return p === '' || p === '.' ? undefined : p;
    return p.startsWith(prefix) ? p.slice(prefix.length) : undefined;
  };
  for (const m of members) {
    const p = rel(m.name);
    if (p === undefined || p === '') continue;
    const xattrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.pax)) {
      if (k.startsWith('SCHILY.xattr.'))
        xattrs[k.slice('SCHILY.xattr.'.length)] = Buffer.from(v, 'latin1').toString('hex');
    }
    const common = {
      mode: m.mode & 0o7777,
      uid: m.uid,
      gid: m.gid,
      mtimeNs: String(m.mtimeNs),
      xattrs,
    };
    if (m.typeflag === '1') {
      const target = rel(m.linkname);
      const t = target === undefined ? undefined : out.get(target);
      if (!t) throw new Error(`tar: hardlink ${m.name} to ${m.linkname}, not an earlier member`);
      out.set(p, { ...t, ...common, mode: t.mode, mtimeNs: t.mtimeNs });
      links.set(p, links.get(target!) ?? target!);
      links.set(target!, links.get(target!) ?? target!);
      continue;
    }
    const type = TAR_TYPES[m.typeflag];
    if (!type) throw new Error(`tar: ${m.name}: typeflag ${JSON.stringify(m.typeflag)}`);
    out.set(p, {
      type,
      ...common,
      size: type === 'file' ? m.data.length : 0,
      ...(type === 'file' ? { sha256: createHash('sha256').update(m.data).digest('hex') } : {}),
      ...(type === 'symlink' ? { target: m.linkname } : {}),
      ...(type === 'char' || type === 'block' ? { rdev: `${m.devmajor}:${m.devminor}` } : {}),
    });
  }
  return groupLinks(out, links);
}

export type Field = keyof ManifestEntry;

export interface DiffOptions {
  /** Fields not compared (for every entry). */
  readonly ignore?: readonly Field[];
  /** Fields not compared for one entry (a directory's mtime, say): return the fields. */
  readonly ignoreFor?: (path: string, a: ManifestEntry, b: ManifestEntry) => readonly Field[];
  /** Paths left out of both sides. */
  readonly skip?: (path: string) => boolean;
}

const FIELDS: readonly Field[] = [
  'type',
  'mode',
  'uid',
  'gid',
  'size',
  'sha256',
  'target',
  'hardlinkGroup',
  'mtimeNs',
  'rdev',
  'xattrs',
];

const sortedJson = (x: Readonly<Record<string, string>> | undefined): string =>
  JSON.stringify(Object.entries(x ?? {}).sort(([a], [b]) => byteOrder(a, b)));

const show = (f: Field, v: unknown): string => {
  if (v === undefined) return '-';
  if (f === 'mode') return `0${(v as number).toString(8)}`;
  if (f === 'xattrs') return JSON.stringify(v);
  return String(v);
};

/**
 * Entry-by-entry differences of `a` (named `names[0]`) against `b`, as readable lines; empty
 * when they agree. `expect(diffManifests(...)).toEqual([])` prints exactly what differs.
 */
export function diffManifests(
  a: Manifest,
  b: Manifest,
  opts: DiffOptions = {},
  names: readonly [string, string] = ['a', 'b'],
): string[] {
  const out: string[] = [];
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort(byteOrder);
  for (const p of paths) {
    if (opts.skip?.(p)) continue;
    const x = a.get(p);
    const y = b.get(p);
    if (!x || !y) {
      out.push(`${p}: only in ${x ? names[0] : names[1]} (${(x ?? y)!.type})`);
      continue;
    }
    const ignored = new Set([...(opts.ignore ?? []), ...(opts.ignoreFor?.(p, x, y) ?? [])]);
    for (const f of FIELDS) {
      if (ignored.has(f)) continue;
      const vx = f === 'xattrs' ? sortedJson(x.xattrs) : x[f];
      const vy = f === 'xattrs' ? sortedJson(y.xattrs) : y[f];
      if (f === 'xattrs' && (x.xattrs === undefined || y.xattrs === undefined)) continue;
      if (vx !== vy)
        out.push(`${p}: ${f} ${names[0]}=${show(f, x[f])} ${names[1]}=${show(f, y[f])}`);
    }
  }
  return out;
}

/**
 * The manifest with mtimes cut to `unitNs` (1000: microseconds), for a side that cannot set
 * them finer (ktl's local export sets times through a double).
 */
export function mtimesTo(m: Manifest, unitNs: number): Manifest {
  const unit = BigInt(unitNs);
  return new Map(
    [...m].map(([p, e]) => [p, { ...e, mtimeNs: String((BigInt(e.mtimeNs) / unit) * unit) }]),
  );
}

/** Directories' mtimes left out of a diff (when its receiver last wrote into each). */
export const noDirMtimes: DiffOptions = {
  ignoreFor: (_p, a) => (a.type === 'dir' ? ['mtimeNs'] : []),
};

/** The paths of a manifest, in byte order. */
export const manifestPaths = (m: Manifest): string[] => [...m.keys()];
