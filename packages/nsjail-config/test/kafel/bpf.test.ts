import { describe, expect, test } from '@jest/globals';
import { parseKafel } from '../../src/kafel';
import {
  AUDIT_ARCH,
  compileKafel,
  disassemble,
  MAX_INSNS,
  RET,
  serialize,
} from '../../src/kafel/bpf';
import { lookupSyscall, syscallNames } from '../../src/kafel/syscalls';
import { runFilter } from './bpf-vm';

const X86 = AUDIT_ARCH.x86_64;
const nr = (name: string, arch: 'x86_64' | 'aarch64' = 'x86_64') => lookupSyscall(arch, name)!.nr;

function compile(src: string, arch: 'x86_64' | 'aarch64' = 'x86_64') {
  const r = parseKafel(src, { arch });
  if (!r.ok) throw new Error(r.error.message);
  return compileKafel(r.program, { arch });
}

function verdict(
  src: string,
  call: string,
  args: bigint[] = [],
  arch: 'x86_64' | 'aarch64' = 'x86_64',
): number {
  return runFilter(compile(src, arch), { nr: nr(call, arch), arch: AUDIT_ARCH[arch], args });
}

describe('seccomp BPF: structure', () => {
  test('architecture check first, x32 refused, then the rules', () => {
    const prog = compile('ALLOW { read } DEFAULT KILL');
    expect(disassemble(prog).split('\n').slice(0, 6)).toEqual([
      '0000: ld  A = arch',
      '0001: if A == 0xc000003e goto 0003 else 0002',
      '0002: ret KILL_PROCESS',
      '0003: ld  A = nr',
      '0004: if A >= 0x40000000 goto 0005 else 0006',
      '0005: ret KILL_PROCESS',
    ]);
    expect(runFilter(prog, { nr: 0, arch: AUDIT_ARCH.aarch64 })).toBe(RET.KILL_PROCESS);
    expect(runFilter(prog, { nr: 0x40000000, arch: X86 })).toBe(RET.KILL_PROCESS);
  });

  test('serialized as the kernel reads struct sock_filter', () => {
    const bytes = serialize(compile('DEFAULT ALLOW'));
    expect(bytes.length % 8).toBe(0);
    expect([...bytes.slice(0, 8)]).toEqual([0x20, 0, 0, 0, 4, 0, 0, 0]);
  });
});

describe('seccomp BPF: actions', () => {
  test.each([
    ['ALLOW', RET.ALLOW],
    ['LOG', RET.LOG],
    ['KILL', RET.KILL_THREAD],
    ['KILL_THREAD', RET.KILL_THREAD],
    ['DENY', RET.KILL_THREAD],
    ['KILL_PROCESS', RET.KILL_PROCESS],
    ['USER_NOTIF', RET.USER_NOTIF],
    ['ERRNO(13)', RET.ERRNO | 13],
    ['TRAP(7)', RET.TRAP | 7],
    ['TRACE(65535)', RET.TRACE | 0xffff],
  ])('%s', (action, value) => {
    expect(verdict(`${action} { read } DEFAULT ALLOW`, 'read')).toBe(value >>> 0);
    expect(verdict(`DEFAULT ${action}`, 'write')).toBe(value >>> 0);
  });

  test('no DEFAULT means KILL', () => {
    expect(verdict('ALLOW { read }', 'write')).toBe(RET.KILL_THREAD);
  });

  test('first matching rule wins, and a failed condition falls through to later rules', () => {
    const src = 'ERRNO(1) { write { fd == 2 } } ALLOW { write } ERRNO(9) { write } DEFAULT KILL';
    expect(verdict(src, 'write', [2n])).toBe(RET.ERRNO | 1);
    expect(verdict(src, 'write', [1n])).toBe(RET.ALLOW);
  });

  test('POLICY/USE and #define', () => {
    const src =
      '#define STDERR 2\nPOLICY out { ALLOW { write { fd == STDERR } } }\nUSE out, ERRNO(5) { write }\nDEFAULT KILL_PROCESS';
    expect(verdict(src, 'write', [2n])).toBe(RET.ALLOW);
    expect(verdict(src, 'write', [1n])).toBe(RET.ERRNO | 5);
    expect(verdict(src, 'read')).toBe(RET.KILL_PROCESS);
  });

  test('SYSCALL[n] with declared arguments', () => {
    const prog = compile('ALLOW { SYSCALL[4000](a, b) { a == 1 && b == 2 } } DEFAULT ERRNO(38)');
    expect(runFilter(prog, { nr: 4000, arch: X86, args: [1n, 2n] })).toBe(RET.ALLOW);
    expect(runFilter(prog, { nr: 4000, arch: X86, args: [1n, 3n] })).toBe(RET.ERRNO | 38);
  });

  test('ON arch guards', () => {
    expect(verdict('ALLOW { read ON aarch64 } DEFAULT ERRNO(1)', 'read')).toBe(RET.ERRNO | 1);
    expect(verdict('ALLOW { read ON aarch64 } DEFAULT ERRNO(1)', 'read', [], 'aarch64')).toBe(
      RET.ALLOW,
    );
  });
});

describe('seccomp BPF: argument expressions', () => {
  // socket(family: 4 bytes): a 32-bit comparison; mmap(addr: 8 bytes): 64-bit.
  const cases: [string, string, bigint[], boolean][] = [
    ['socket { family == 2 }', 'socket', [2n], true],
    ['socket { family == 2 }', 'socket', [1n], false],
    ['socket { family == 2 }', 'socket', [0x1_0000_0002n], true], // 32-bit: the high half is not looked at
    ['socket { family != 2 }', 'socket', [10n], true],
    ['socket { family < 3 }', 'socket', [2n], true],
    ['socket { family < 3 }', 'socket', [3n], false],
    ['socket { family <= 3 }', 'socket', [3n], true],
    ['socket { family > 3 }', 'socket', [4n], true],
    ['socket { family >= 3 }', 'socket', [2n], false],
    ['socket { 3 < family }', 'socket', [4n], true],
    ['socket { 3 >= family }', 'socket', [4n], false],
    ['socket { (type & 0xf) == 1 }', 'socket', [0n, 0x80801n], true],
    ['socket { (type & 0xf) == 1 }', 'socket', [0n, 0x80802n], false],
    ['socket { (type | 0x800) == 0x801 }', 'socket', [0n, 1n], true],
    ['socket { family == 1 || family == 2 }', 'socket', [2n], true],
    ['socket { family == 1, family == 2 }', 'socket', [2n], true],
    ['socket { family == 2 && type == 1 }', 'socket', [2n, 2n], false],
    ['socket { !(family == 2) }', 'socket', [2n], false],
    ['socket { family == type }', 'socket', [5n, 5n], true],
    ['socket { family > type }', 'socket', [6n, 5n], true],
    ['mmap { addr == 0x100000000 }', 'mmap', [0x1_0000_0000n], true],
    ['mmap { addr == 0x100000000 }', 'mmap', [0n], false],
    ['mmap { addr > 0xffffffff }', 'mmap', [0x1_0000_0000n], true],
    ['mmap { addr > 0x100000001 }', 'mmap', [0x1_0000_0001n], false],
    ['mmap { addr >= 0x100000001 }', 'mmap', [0x1_0000_0001n], true],
    ['mmap { addr < 0x100000000 }', 'mmap', [0xffff_ffffn], true],
    ['mmap { addr < 0x100000000 }', 'mmap', [0x2_0000_0000n], false],
    ['mmap { addr == -1 }', 'mmap', [-1n], true],
    ['mmap { (addr & 0xffff00000000) == 0x1200000000 }', 'mmap', [0x12_0000_5678n], true],
    ['mmap { len <= addr }', 'mmap', [0x2_0000_0000n, 0x1_ffff_ffffn], true],
  ];
  test.each(cases)('%s with %s(%p) -> %p', (filter, call, args, allowed) => {
    expect(verdict(`ALLOW { ${filter} } DEFAULT ERRNO(1)`, call, args)).toBe(
      allowed ? RET.ALLOW : (RET.ERRNO | 1) >>> 0,
    );
  });
});

describe('seccomp BPF: big policies', () => {
  test('an allow-list of every x86_64 syscall but one, with long jumps', () => {
    const names = syscallNames('x86_64').filter((n) => n !== 'ptrace');
    const src = `ALLOW { ${names.map((n) => (n === 'write' ? 'write { fd == 1 || fd == 2 }' : n)).join(', ')} } DEFAULT ERRNO(1)`;
    const prog = compile(src);
    expect(prog.length).toBeGreaterThan(255);
    expect(prog.length).toBeLessThanOrEqual(MAX_INSNS);
    for (const n of names.slice(0, 400)) {
      if (n === 'write') continue;
      expect({ n, v: runFilter(prog, { nr: nr(n), arch: X86 }) }).toEqual({ n, v: RET.ALLOW });
    }
    expect(runFilter(prog, { nr: nr('ptrace'), arch: X86 })).toBe(RET.ERRNO | 1);
    expect(runFilter(prog, { nr: nr('write'), arch: X86, args: [2n] })).toBe(RET.ALLOW);
    expect(runFilter(prog, { nr: nr('write'), arch: X86, args: [3n] })).toBe(RET.ERRNO | 1);
  });

  test('a condition longer than 255 instructions still branches correctly', () => {
    const cond = Array.from({ length: 140 }, (_, i) => `fd == ${i * 3}`).join(' || ');
    const prog = compile(`ALLOW { write { ${cond} } } DEFAULT ERRNO(1)`);
    expect(prog.length).toBeGreaterThan(280);
    expect(runFilter(prog, { nr: 1, arch: X86, args: [0n] })).toBe(RET.ALLOW);
    expect(runFilter(prog, { nr: 1, arch: X86, args: [417n] })).toBe(RET.ALLOW);
    expect(runFilter(prog, { nr: 1, arch: X86, args: [418n] })).toBe(RET.ERRNO | 1);
    expect(runFilter(prog, { nr: 0, arch: X86 })).toBe(RET.ERRNO | 1);
  });
});
