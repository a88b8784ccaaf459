/** Syscall lookup by kafel's names, with hints for the names people usually write. */
import { closest } from '../suggest';
import { AARCH64_TABLE, X86_64_TABLE } from './syscalls-data';

export type KafelArch = 'x86_64' | 'aarch64';

/** The architecture this process runs on, as kafel names it (what nsjail compiles for). */
export function hostKafelArch(): KafelArch {
  return process.arch === 'arm64' ? 'aarch64' : 'x86_64';
}

export interface SyscallArg {
  readonly name: string;
  /** 4 or 8 (or 2): how many bytes of the argument kafel compares. */
  readonly size: number;
}

export interface SyscallInfo {
  readonly name: string;
  readonly nr: number;
  readonly args: readonly SyscallArg[];
}

const tables = new Map<KafelArch, Map<string, SyscallInfo>>();

function table(arch: KafelArch): Map<string, SyscallInfo> {
  let t = tables.get(arch);
  if (!t) {
    t = new Map();
    for (const line of (arch === 'x86_64' ? X86_64_TABLE : AARCH64_TABLE).trim().split('\n')) {
      const [name, nr, ...args] = line.split(' ');
      t.set(name!, {
        name: name!,
        nr: Number(nr),
        args: args.map((a) => {
          const [n, s] = a.split(':');
          return { name: n!, size: Number(s) };
        }),
      });
    }
    tables.set(arch, t);
  }
  return t;
}

export function lookupSyscall(arch: KafelArch, name: string): SyscallInfo | undefined {
  return table(arch).get(name);
}

export function syscallNames(arch: KafelArch): string[] {
  return [...table(arch).keys()];
}

export function syscallByNumber(arch: KafelArch, nr: number): SyscallInfo | undefined {
  for (const s of table(arch).values()) if (s.nr === nr) return s;
  return undefined;
}

/** libc / strace names that kafel spells differently. */
const ALIASES: Record<string, string[]> = {
  uname: ['newuname'],
  fstat: ['newfstat'],
  stat: ['newstat'],
  lstat: ['newlstat'],
  fstatat: ['newfstatat'],
  fstatat64: ['newfstatat'],
  newfstatat: ['newfstatat'],
  mmap2: ['mmap'],
  _llseek: ['lseek'],
  llseek: ['lseek'],
  pread: ['pread64'],
  pwrite: ['pwrite64'],
  prlimit: ['prlimit64'],
  sigaction: ['rt_sigaction'],
  sigprocmask: ['rt_sigprocmask'],
  sigreturn: ['rt_sigreturn'],
  getdents64: ['getdents64'],
  select: ['select', 'pselect6'],
  poll: ['poll', 'ppoll'],
  open: ['open', 'openat'],
  fadvise64_64: ['fadvise64'],
  umount: ['umount2'],
  sysctl: ['sysctl'],
};

/** A hint for an unknown syscall name: kafel's spelling, or the closest names. */
export function suggestSyscall(arch: KafelArch, name: string): string | undefined {
  const known = (ALIASES[name] ?? []).filter((n) => lookupSyscall(arch, n));
  if (known.length > 0) return `kafel calls it \`${known.join('` or `')}\` on ${arch}`;
  const near = closest(name, syscallNames(arch));
  if (near.length > 0) return `did you mean ${near.map((n) => `\`${n}\``).join(' or ')}?`;
  return `no syscall of that name on ${arch}; use SYSCALL[nr] for a raw number`;
}
