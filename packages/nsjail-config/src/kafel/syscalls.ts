/**
 * System calls by kafel's names for the two architectures ktl runs on, and the hints for
 * names people write that kafel does not know: libc's and strace's spellings, calls that only
 * one architecture has, and the few the kernel has but kafel's tables lack.
 */
import { nearest, quoteList } from './nearest';
import { AARCH64_SYSCALLS } from './syscalls-aarch64';
import { X86_64_SYSCALLS } from './syscalls-x86_64';

export type KafelArch = 'x86_64' | 'aarch64';
export const KAFEL_ARCHES: readonly KafelArch[] = ['x86_64', 'aarch64'];

/** The architecture this process runs on, as kafel names it (what nsjail compiles for). */
export function hostKafelArch(): KafelArch {
  return process.arch === 'arm64' ? 'aarch64' : 'x86_64';
}

/** `[name, number, 'arg:size arg:size ...']`, the shape of the data files. */
export type SyscallRow = readonly [name: string, nr: number, args: string];

export interface SyscallArg {
  readonly name: string;
  /** Bytes kafel records for the argument: 8 means both 32-bit halves are compared, 4 or 2 the low half only. */
  readonly size: number;
}

export interface SyscallInfo {
  readonly name: string;
  readonly nr: number;
  readonly args: readonly SyscallArg[];
}

interface Table {
  byName: Map<string, SyscallInfo>;
  byNr: Map<number, SyscallInfo>;
}

const tables = new Map<KafelArch, Table>();

function table(arch: KafelArch): Table {
  let t = tables.get(arch);
  if (t) return t;
  t = { byName: new Map(), byNr: new Map() };
  for (const [name, nr, args] of arch === 'x86_64' ? X86_64_SYSCALLS : AARCH64_SYSCALLS) {
    const info: SyscallInfo = {
      name,
      nr,
      args: args
        .split(' ')
        .filter(Boolean)
        .map((a) => {
          const [n, s] = a.split(':');
          return { name: n!, size: Number(s) };
        }),
    };
    t.byName.set(name, info);
    t.byNr.set(nr, info);
  }
  tables.set(arch, t);
  return t;
}

export function lookupSyscall(arch: KafelArch, name: string): SyscallInfo | undefined {
  return table(arch).byName.get(name);
}

export function syscallByNumber(arch: KafelArch, nr: number): SyscallInfo | undefined {
  return table(arch).byNr.get(nr);
}

/** Every name kafel accepts on `arch`, in kafel's (alphabetical) order. */
export function syscallNames(arch: KafelArch): string[] {
  return [...table(arch).byName.keys()];
}

/** The same system call under another name: kafel keeps the kernel's internal `new*` names. */
const RENAMED: Record<KafelArch, Readonly<Record<string, string>>> = {
  x86_64: {
    uname: 'newuname',
    stat: 'newstat',
    fstat: 'newfstat',
    lstat: 'newlstat',
    stat64: 'newstat',
    fstat64: 'newfstat',
    lstat64: 'newlstat',
    fstatat: 'newfstatat',
    fstatat64: 'newfstatat',
    sendfile: 'sendfile64',
    umount2: 'umount',
    _sysctl: 'sysctl',
  },
  aarch64: {
    uname: 'newuname',
    fstat: 'newfstat',
    fstat64: 'newfstat',
    fstatat: 'newfstatat',
    fstatat64: 'newfstatat',
    sendfile64: 'sendfile',
    umount2: 'umount',
    sync_file_range: 'sync_file_range2',
  },
};

/** Calls an architecture lacks (or libc spellings), and what libc uses in their place. */
const INSTEAD: Readonly<Record<string, string>> = {
  open: 'openat',
  creat: 'openat',
  stat: 'newfstatat',
  lstat: 'newfstatat',
  access: 'faccessat',
  chmod: 'fchmodat',
  chown: 'fchownat',
  lchown: 'fchownat',
  mkdir: 'mkdirat',
  rmdir: 'unlinkat',
  unlink: 'unlinkat',
  rename: 'renameat2',
  link: 'linkat',
  symlink: 'symlinkat',
  readlink: 'readlinkat',
  mknod: 'mknodat',
  dup2: 'dup3',
  pipe: 'pipe2',
  poll: 'ppoll',
  select: 'pselect6',
  _newselect: 'select',
  epoll_wait: 'epoll_pwait',
  epoll_create: 'epoll_create1',
  inotify_init: 'inotify_init1',
  eventfd: 'eventfd2',
  signalfd: 'signalfd4',
  fork: 'clone',
  vfork: 'clone',
  getdents: 'getdents64',
  alarm: 'setitimer',
  getpgrp: 'getpgid',
  pause: 'ppoll',
  time: 'clock_gettime',
  utime: 'utimensat',
  utimes: 'utimensat',
  futimesat: 'utimensat',
  mmap2: 'mmap',
  _llseek: 'lseek',
  llseek: 'lseek',
  fcntl64: 'fcntl',
  statfs64: 'statfs',
  fstatfs64: 'fstatfs',
  truncate64: 'truncate',
  ftruncate64: 'ftruncate',
  pread: 'pread64',
  pwrite: 'pwrite64',
  prlimit: 'prlimit64',
  fadvise64_64: 'fadvise64',
  posix_fadvise: 'fadvise64',
  sigaction: 'rt_sigaction',
  sigprocmask: 'rt_sigprocmask',
  sigreturn: 'rt_sigreturn',
  sigsuspend: 'rt_sigsuspend',
  sigpending: 'rt_sigpending',
  sigtimedwait: 'rt_sigtimedwait',
  wait: 'wait4',
  waitpid: 'wait4',
  clock_gettime64: 'clock_gettime',
  futex_time64: 'futex',
};

/** Calls the kernel has on the architecture that kafel's tables (as nsjail embeds them) lack. */
const KERNEL_ONLY: Record<KafelArch, Readonly<Record<string, number>>> = {
  x86_64: {},
  aarch64: { pkey_mprotect: 288, pkey_alloc: 289, pkey_free: 290, io_pgetevents: 292 },
};

/** `table[key]` for a name from a policy (never Object.prototype's `constructor` and such). */
function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

/** The kafel name of a call written under another name (`uname` → `newuname`), if any. */
export function kafelSpelling(arch: KafelArch, name: string): string | undefined {
  const to = own(RENAMED[arch], name);
  return to !== undefined && lookupSyscall(arch, to) ? to : undefined;
}

/** Up to three kafel names close to `name` on `arch`. */
export function closestSyscalls(arch: KafelArch, name: string): string[] {
  return nearest(name, table(arch).byName.keys());
}

/** A hint for a name kafel does not know on `arch`; undefined when the name is known. */
export function suggestSyscall(arch: KafelArch, name: string): string | undefined {
  if (lookupSyscall(arch, name)) return undefined;
  const renamed = kafelSpelling(arch, name);
  if (renamed) {
    const nr = lookupSyscall(arch, renamed)!.nr;
    return `kafel calls it \`${renamed}\` (number ${nr} on ${arch})`;
  }
  const nr = own(KERNEL_ONLY[arch], name);
  if (nr !== undefined)
    return `the kernel has \`${name}\` on ${arch} (number ${nr}) but kafel's table lacks it: write SYSCALL[${nr}]`;
  const instead = own(INSTEAD, name);
  const insteadOk = instead !== undefined && lookupSyscall(arch, instead) !== undefined;
  const other = KAFEL_ARCHES.find((a) => a !== arch && lookupSyscall(a, name));
  if (other) {
    const use = insteadOk ? `; there libc uses \`${instead}\` instead` : '';
    return `\`${name}\` exists on ${other} but not on ${arch}${use} (write \`${name} ON ${other}\` to keep it in a policy for both)`;
  }
  if (insteadOk) return `${arch} has no \`${name}\` system call: libc uses \`${instead}\``;
  const near = closestSyscalls(arch, name);
  if (near.length > 0) return `did you mean ${quoteList(near)}?`;
  return `no system call of that name on ${arch}; SYSCALL[n] takes a raw number`;
}
