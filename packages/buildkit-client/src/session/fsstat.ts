/**
 * fsutil's view of a file: Go os.FileMode bits (not POSIX st_mode), nanosecond mtimes, and
 * hardlinks expressed as a `linkname` pointing at the first path sent for that inode.
 * Sending st_mode makes the daemon report "changes out of order"; millisecond mtimes are
 * silently taken as nanoseconds and show up as 1970.
 */
import type { BigIntStats } from 'node:fs';
import { constants } from 'node:fs';
import type { Stat } from '../gen/fsutil/types/stat';

// Not in Node's fs.constants typings on every platform.
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;

export const MODE_DIR = 0x80000000; // 1 << 31
export const MODE_SYMLINK = 1 << 27;
export const MODE_DEVICE = 1 << 26;
export const MODE_NAMED_PIPE = 1 << 25;
export const MODE_SOCKET = 1 << 24;
export const MODE_SETUID = 1 << 23;
export const MODE_SETGID = 1 << 22;
export const MODE_CHAR_DEVICE = 1 << 21;
export const MODE_STICKY = 1 << 20;
export const MODE_IRREGULAR = 1 << 19;
export const MODE_PERM = 0o777;
export const MODE_TYPE =
  (MODE_DIR |
    MODE_SYMLINK |
    MODE_NAMED_PIPE |
    MODE_SOCKET |
    MODE_DEVICE |
    MODE_CHAR_DEVICE |
    MODE_IRREGULAR) >>>
  0;

/** POSIX st_mode to Go FileMode. */
export function goFileMode(stMode: number): number {
  let m = stMode & MODE_PERM;
  switch (stMode & constants.S_IFMT) {
    case constants.S_IFDIR:
      m |= MODE_DIR;
      break;
    case constants.S_IFLNK:
      m |= MODE_SYMLINK;
      break;
    case constants.S_IFIFO:
      m |= MODE_NAMED_PIPE;
      break;
    case constants.S_IFSOCK:
      m |= MODE_SOCKET;
      break;
    case constants.S_IFBLK:
      m |= MODE_DEVICE;
      break;
    case constants.S_IFCHR:
      m |= MODE_DEVICE | MODE_CHAR_DEVICE;
      break;
    case constants.S_IFREG:
      break;
    default:
      m |= MODE_IRREGULAR;
  }
  if (stMode & S_ISUID) m |= MODE_SETUID;
  if (stMode & S_ISGID) m |= MODE_SETGID;
  if (stMode & S_ISVTX) m |= MODE_STICKY;
  return m >>> 0;
}

/** Go FileMode back to st_mode permission bits (for chmod on the receiving side). */
export function posixPermBits(goMode: number): number {
  let m = goMode & MODE_PERM;
  if (goMode & MODE_SETUID) m |= S_ISUID;
  if (goMode & MODE_SETGID) m |= S_ISGID;
  if (goMode & MODE_STICKY) m |= S_ISVTX;
  return m;
}

export const isDirMode = (m: number): boolean => (m & MODE_DIR) !== 0;
export const isSymlinkMode = (m: number): boolean => (m & MODE_SYMLINK) !== 0;
/** Only plain files carry data; must agree with the daemon's rule, which it numbers IDs by. */
export const canRequestData = (m: number): boolean => (m & MODE_TYPE) >>> 0 === 0;

export type WireStat = Stat;

/**
 * Builds the Stat for `rel` from an lstat, as fsutil's mkstat does with the map BuildKit's
 * client puts on every directory it serves (client/solve.go, resetUIDAndGID):
 * - owner 0:0 for every entry, whoever owns the file here: a context's files are root's in
 *   the image unless the Dockerfile says otherwise (COPY --chown), the same for every user
 *   who builds it, and an owner outside the sandbox's user namespace (the overflow id 65534
 *   in there) never reaches the image;
 * - the size of everything but a directory from the lstat, a hardlink's later names
 *   included: the daemon compares it with its copy of an earlier build's context, and a
 *   link sent with size 0 counts as changed and is re-linked there through a `.tmp.N` name
 *   that stays in the context;
 * - the socket bit dropped (tar cannot represent sockets).
 * Extended attributes are not read: Node has no xattr API.
 */
export function toWireStat(rel: string, st: BigIntStats, linkTarget: string | undefined): WireStat {
  let mode = goFileMode(Number(st.mode));
  mode = (mode & ~MODE_SOCKET) >>> 0;
  const dir = isDirMode(mode);
  const rdev = st.rdev;
  return {
    path: rel,
    mode,
    uid: 0,
    gid: 0,
    size: dir ? 0n : st.size,
    modTime: st.mtimeNs,
    linkname: linkTarget ?? '',
    devmajor: dir || rdev === 0n ? 0n : (rdev >> 8n) & 0xfffn,
    devminor: dir || rdev === 0n ? 0n : (rdev & 0xffn) | ((rdev >> 12n) & 0xfff00n),
    xattrs: {},
  };
}
