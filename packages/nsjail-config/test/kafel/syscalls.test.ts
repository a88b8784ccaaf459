import { describe, expect, test } from '@jest/globals';
import { lookupSyscall, suggestSyscall, syscallNames } from '../../src/kafel';

describe('syscall tables', () => {
  test.each([
    ['x86_64', 'read', 0],
    ['x86_64', 'write', 1],
    ['x86_64', 'execve', 59],
    ['x86_64', 'newuname', 63],
    ['x86_64', 'socket', 41],
    ['aarch64', 'read', 63],
    ['aarch64', 'write', 64],
    ['aarch64', 'execve', 221],
    ['aarch64', 'newuname', 160],
  ] as const)('%s %s is %i', (arch, name, nr) => {
    expect(lookupSyscall(arch, name)?.nr).toBe(nr);
  });

  test('sizes and names of arguments', () => {
    expect(lookupSyscall('x86_64', 'socket')?.args).toEqual([
      { name: 'family', size: 4 },
      { name: 'type', size: 4 },
      { name: 'protocol', size: 4 },
    ]);
    expect(lookupSyscall('x86_64', 'write')?.args.map((a) => a.size)).toEqual([4, 8, 8]);
  });

  test('table sizes and uniqueness', () => {
    for (const arch of ['x86_64', 'aarch64'] as const) {
      const names = syscallNames(arch);
      expect(new Set(names).size).toBe(names.length);
      const nrs = names.map((n) => lookupSyscall(arch, n)!.nr);
      expect(new Set(nrs).size).toBe(nrs.length);
    }
    expect(syscallNames('x86_64').length).toBeGreaterThan(350);
    expect(syscallNames('aarch64').length).toBeGreaterThan(280);
    expect(lookupSyscall('aarch64', 'open')).toBeUndefined();
    expect(lookupSyscall('x86_64', 'uname')).toBeUndefined();
  });

  test('hints', () => {
    expect(suggestSyscall('x86_64', 'uname')).toBe('kafel calls it `newuname` on x86_64');
    expect(suggestSyscall('x86_64', 'fstat')).toContain('newfstat');
    expect(suggestSyscall('aarch64', 'open')).toContain('openat');
    expect(suggestSyscall('x86_64', 'zzzzzzzzzz')).toContain('SYSCALL[nr]');
  });
});
