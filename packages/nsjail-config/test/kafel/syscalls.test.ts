import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import {
  closestSyscalls,
  KAFEL_ARCHES,
  kafelSpelling,
  lookupSyscall,
  suggestSyscall,
  syscallByNumber,
  syscallNames,
} from '../../src/kafel';

describe('syscall tables', () => {
  test.each([
    ['x86_64', 'read', 0],
    ['x86_64', 'write', 1],
    ['x86_64', 'open', 2],
    ['x86_64', 'newstat', 4],
    ['x86_64', 'newfstat', 5],
    ['x86_64', 'execve', 59],
    ['x86_64', 'newuname', 63],
    ['x86_64', 'socket', 41],
    ['x86_64', 'sendfile64', 40],
    ['x86_64', 'umount', 166],
    ['x86_64', 'openat', 257],
    ['x86_64', 'clone3', 435],
    ['x86_64', 'file_setattr', 469],
    ['aarch64', 'read', 63],
    ['aarch64', 'write', 64],
    ['aarch64', 'openat', 56],
    ['aarch64', 'execve', 221],
    ['aarch64', 'newuname', 160],
    ['aarch64', 'newfstat', 80],
    ['aarch64', 'sync_file_range2', 84],
    ['aarch64', 'clone3', 435],
  ] as const)('%s %s is %i', (arch, name, nr) => {
    expect(lookupSyscall(arch, name)?.nr).toBe(nr);
    expect(syscallByNumber(arch, nr)?.name).toBe(name);
  });

  test('counts: kafel knows 382 calls on x86_64 and 321 on aarch64', () => {
    expect(syscallNames('x86_64')).toHaveLength(382);
    expect(syscallNames('aarch64')).toHaveLength(321);
  });

  test.each(KAFEL_ARCHES)('%s: names and numbers are unique, at most 6 arguments', (arch) => {
    const names = syscallNames(arch);
    expect(new Set(names).size).toBe(names.length);
    const nrs = names.map((n) => lookupSyscall(arch, n)!.nr);
    expect(new Set(nrs).size).toBe(nrs.length);
    for (const n of names) {
      const args = lookupSyscall(arch, n)!.args;
      expect(args.length).toBeLessThanOrEqual(6);
      for (const a of args) expect([2, 4, 8]).toContain(a.size);
      expect(new Set(args.map((a) => a.name)).size).toBe(args.length);
    }
  });

  test('argument names and sizes (only size 8 is compared in 64 bits)', () => {
    expect(lookupSyscall('x86_64', 'socket')?.args).toEqual([
      { name: 'family', size: 4 },
      { name: 'type', size: 4 },
      { name: 'protocol', size: 4 },
    ]);
    expect(lookupSyscall('x86_64', 'write')?.args.map((a) => `${a.name}:${a.size}`)).toEqual([
      'fd:4',
      'buf:8',
      'count:8',
    ]);
    expect(lookupSyscall('x86_64', 'mmap')?.args.map((a) => a.size)).toEqual([8, 8, 8, 8, 8, 8]);
    expect(lookupSyscall('x86_64', 'chmod')?.args).toEqual([
      { name: 'filename', size: 8 },
      { name: 'mode', size: 2 },
    ]);
    expect(lookupSyscall('aarch64', 'clone')?.args.map((a) => a.name)).toEqual([
      'clone_flags',
      'newsp',
      'parent_tidptr',
      'tls',
      'child_tidptr',
    ]);
    expect(lookupSyscall('x86_64', 'clone')?.args.map((a) => a.name)).toEqual([
      'clone_flags',
      'newsp',
      'parent_tidptr',
      'child_tidptr',
      'tls',
    ]);
    expect(lookupSyscall('x86_64', 'afs_syscall')?.args).toEqual([]);
  });

  test('what each architecture lacks', () => {
    for (const n of ['open', 'stat', 'fork', 'dup2', 'pipe', 'poll', 'select', 'epoll_wait'])
      expect(lookupSyscall('aarch64', n)).toBeUndefined();
    for (const n of ['uname', 'fstat', 'stat', 'lstat', 'sendfile', 'umount2'])
      expect(lookupSyscall('x86_64', n)).toBeUndefined();
  });
});

describe('hints for names kafel does not know', () => {
  test.each([
    ['x86_64', 'uname', 'kafel calls it `newuname` (number 63 on x86_64)'],
    ['x86_64', 'fstat', 'kafel calls it `newfstat`'],
    ['x86_64', 'stat', 'kafel calls it `newstat`'],
    ['x86_64', 'lstat', 'kafel calls it `newlstat`'],
    ['x86_64', 'sendfile', 'kafel calls it `sendfile64`'],
    ['x86_64', 'umount2', 'kafel calls it `umount`'],
    ['aarch64', 'uname', 'kafel calls it `newuname` (number 160 on aarch64)'],
    ['aarch64', 'sync_file_range', 'kafel calls it `sync_file_range2`'],
    [
      'aarch64',
      'open',
      '`open` exists on x86_64 but not on aarch64; there libc uses `openat` instead',
    ],
    ['aarch64', 'stat', 'aarch64 has no `stat` system call: libc uses `newfstatat`'],
    ['aarch64', 'io_pgetevents', 'SYSCALL[292]'],
    ['x86_64', 'mmap2', 'libc uses `mmap`'],
    ['x86_64', 'sigaction', 'libc uses `rt_sigaction`'],
    ['x86_64', 'wrte', 'did you mean `write`'],
    ['x86_64', 'zzzzzzzzzzzz', 'SYSCALL[n]'],
  ] as const)('%s %s', (arch, name, hint) => {
    expect(suggestSyscall(arch, name)).toContain(hint);
  });

  test('known names need no hint; alias targets exist and sources do not', () => {
    expect(suggestSyscall('x86_64', 'read')).toBeUndefined();
    expect(kafelSpelling('x86_64', 'uname')).toBe('newuname');
    expect(kafelSpelling('x86_64', 'read')).toBeUndefined();
    expect(closestSyscalls('x86_64', 'readv2')).toContain('readv');
  });
});

// Cross-check with the kernel's own numbering where this machine has the uapi headers: every
// call kafel spells like the kernel must carry the kernel's number.
const UNISTD_64 = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
const headers = existsSync(UNISTD_64);
(headers ? test : test.skip)(
  headers
    ? "x86_64 numbers match the kernel's asm/unistd_64.h"
    : `x86_64 numbers vs the kernel's (skipped: no ${UNISTD_64})`,
  () => {
    const kernel = new Map<string, number>();
    for (const m of readFileSync(UNISTD_64, 'utf8').matchAll(/^#define __NR_(\w+) (\d+)$/gm))
      kernel.set(m[1]!, Number(m[2]));
    let compared = 0;
    for (const name of syscallNames('x86_64')) {
      const nr = kernel.get(name);
      if (nr === undefined) continue;
      compared++;
      expect({ name, nr: lookupSyscall('x86_64', name)!.nr }).toEqual({ name, nr });
    }
    expect(compared).toBeGreaterThan(340);
    // and the renamed ones are the same calls under kafel's names
    for (const [libc, kafel] of [
      ['uname', 'newuname'],
      ['fstat', 'newfstat'],
      ['stat', 'newstat'],
      ['sendfile', 'sendfile64'],
      ['umount2', 'umount'],
    ] as const)
      if (kernel.has(libc)) expect(lookupSyscall('x86_64', kafel)!.nr).toBe(kernel.get(libc));
  },
);
