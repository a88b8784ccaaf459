import { describe, expect, test } from '@jest/globals';
import {
  BPF,
  compileKafel,
  disassemble,
  explain,
  KafelCompileError,
  RET,
  type SockFilter,
} from '../../src/kafel/bpf';
import { build, errno, parsed, verdict } from './bpf-helpers';
import { verify } from './bpf-vm';

describe('seccomp BPF: every operator', () => {
  const BIG = 0x1_0000_0000n;
  // socket's arguments are 4 bytes: kafel compares their low halves only (unless a constant
  // needs more than 32 bits). mmap's are 8 bytes: both halves.
  const cases: [string, string, bigint[], boolean][] = [
    ['socket { family == 2 }', 'socket', [2n], true],
    ['socket { family == 2 }', 'socket', [1n], false],
    ['socket { family == 2 }', 'socket', [BIG + 2n], true], // high half not looked at
    ['socket { family != 2 }', 'socket', [10n], true],
    ['socket { family != 2 }', 'socket', [2n], false],
    ['socket { family < 3 }', 'socket', [2n], true],
    ['socket { family < 3 }', 'socket', [3n], false],
    ['socket { family <= 3 }', 'socket', [3n], true],
    ['socket { family <= 3 }', 'socket', [4n], false],
    ['socket { family > 3 }', 'socket', [4n], true],
    ['socket { family > 3 }', 'socket', [3n], false],
    ['socket { family >= 3 }', 'socket', [3n], true],
    ['socket { family >= 3 }', 'socket', [2n], false],
    ['socket { family >= 0 }', 'socket', [0n], true],
    ['socket { family > 0xffffffff }', 'socket', [0xffffffffn], false],
    ['socket { family < 0 }', 'socket', [(1n << 64n) - 1n], false], // unsigned
    ['socket { 3 < family }', 'socket', [4n], true],
    ['socket { 3 >= family }', 'socket', [4n], false],
    ['socket { 3 == family }', 'socket', [3n], true],
    ['socket { family == 0xffffffff }', 'socket', [(1n << 64n) - 1n], true],
    // -1 is 2^64-1, a 64-bit constant: the 4-byte argument's high half must be all ones too
    ['socket { family == -1 }', 'socket', [0xffffffffn], false],
    ['socket { family == -1 }', 'socket', [(1n << 64n) - 1n], true],
    ['socket { (type & 0xf) == 1 }', 'socket', [0n, 0x80801n], true],
    ['socket { (type & 0xf) == 1 }', 'socket', [0n, 0x80802n], false],
    ['socket { type & 0x80000 == 0 }', 'socket', [0n, 0x80001n], false], // & binds tighter than ==
    ['socket { (type & 0x80000) == 0 }', 'socket', [0n, 1n], true],
    ['socket { (type & 0x80000) != 0 }', 'socket', [0n, 0x80000n], true],
    ['socket { (type & 0x80000) > 0 }', 'socket', [0n, 0x80000n], true],
    ['socket { (type & 0) == 0 }', 'socket', [0n, 5n], true],
    ['socket { (type | 0x800) == 0x801 }', 'socket', [0n, 1n], true],
    ['socket { type == 0x1 | 0x800 }', 'socket', [0n, 0x801n], true],
    ['socket { family == type }', 'socket', [5n, 5n], true],
    ['socket { family == type }', 'socket', [5n, 6n], false],
    ['socket { family > type }', 'socket', [6n, 5n], true],
    ['socket { family <= type }', 'socket', [6n, 5n], false],
    ['socket { family | type == 3 }', 'socket', [1n, 2n], true],
    ['socket { (family & type) | protocol == 7 }', 'socket', [3n, 6n, 5n], true],
    ['socket { (family & type) | protocol == 7 }', 'socket', [3n, 6n, 4n], false],
    ['socket { protocol == (family | type) & 3 }', 'socket', [1n, 2n, 3n], true],
    ['socket { family == family }', 'socket', [9n], true],
    ['socket { family == 1 || family == 2 }', 'socket', [2n], true],
    ['socket { family == 1 || family == 2 }', 'socket', [3n], false],
    ['socket { family == 1, family == 2 }', 'socket', [2n], true],
    ['socket { family == 2 && type == 1 }', 'socket', [2n, 2n], false],
    ['socket { family == 2 && type == 1 }', 'socket', [2n, 1n], true],
    ['socket { !(family == 2) }', 'socket', [2n], false],
    ['socket { !(family == 2) }', 'socket', [3n], true],
    ['socket { !family == 2 }', 'socket', [3n], true],
    ['socket { !(family == 1 || type == 1) && protocol == 0 }', 'socket', [2n, 2n, 0n], true],
    ['mmap { addr == 0x100000000 }', 'mmap', [BIG], true],
    ['mmap { addr == 0x100000000 }', 'mmap', [0n], false],
    ['mmap { addr == 0 }', 'mmap', [BIG], false], // both halves compared
    ['mmap { addr != 0 }', 'mmap', [BIG], true],
    ['mmap { addr > 0xffffffff }', 'mmap', [BIG], true],
    ['mmap { addr > 0xffffffff }', 'mmap', [0xffffffffn], false],
    ['mmap { addr > 0x100000001 }', 'mmap', [BIG + 1n], false],
    ['mmap { addr > 0x100000001 }', 'mmap', [0x2_0000_0000n], true],
    ['mmap { addr >= 0x100000001 }', 'mmap', [BIG + 1n], true],
    ['mmap { addr >= 0x100000001 }', 'mmap', [BIG], false],
    ['mmap { addr < 0x100000000 }', 'mmap', [0xffffffffn], true],
    ['mmap { addr < 0x100000000 }', 'mmap', [0x2_0000_0000n], false],
    ['mmap { addr <= 0x100000000 }', 'mmap', [BIG], true],
    ['mmap { addr <= 5 }', 'mmap', [BIG + 1n], false],
    ['mmap { addr == -1 }', 'mmap', [-1n], true],
    ['mmap { (addr & 0xffff00000000) == 0x1200000000 }', 'mmap', [0x12_0000_5678n], true],
    ['mmap { (addr & 0xffff00000000) == 0x1200000000 }', 'mmap', [0x13_0000_5678n], false],
    ['mmap { (prot | flags) & 0x100000000 != 0 }', 'mmap', [0n, 0n, 0n, BIG], true],
    ['mmap { len <= addr }', 'mmap', [0x2_0000_0000n, 0x1_ffff_ffffn], true],
    ['mmap { len <= addr }', 'mmap', [0x1_0000_0000n, 0x1_0000_0001n], false],
    ['mmap { len > addr }', 'mmap', [BIG, BIG + 0x1_0000_0000n], true],
    ['mmap { addr == len }', 'mmap', [BIG + 1n, 1n], false],
  ];
  test.each(cases)('%s with %s(%p) -> %p', (filter, call, args, allowed) => {
    expect(verdict(`ALLOW { ${filter} } DEFAULT ERRNO(1)`, call, args)).toBe(
      allowed ? RET.ALLOW : errno(1),
    );
  });
});

describe('seccomp BPF: limits kafel enforces', () => {
  test('scratch memory: 17 nested spills are fine, 18 are refused as kafel refuses them', () => {
    const terms = (n: number) =>
      Array.from({ length: n }, (_, i) => (i % 2 ? 'buf' : 'fd')).join(' | ');
    expect(verify(build(`ALLOW { write { ${terms(17)} == count } }`))).toBeUndefined();
    expect(() => build(`ALLOW { write { ${terms(18)} == count } }`)).toThrow(
      'Required stack size exceeds available BPF memory',
    );
  });

  test('programs longer than the kernel takes are refused', () => {
    const cond = Array.from({ length: 190 }, (_, i) => `fd == ${i}`).join(' || ');
    const src = Array.from(
      { length: 30 },
      (_, i) => `ERRNO(${i + 1}) { SYSCALL[${3000 + i}](fd) { ${cond} } }`,
    ).join('\n');
    expect(() => build(src)).toThrow(KafelCompileError);
    expect(() => build(src)).toThrow(
      /Filter length exceeds maximum seccomp filter length: \d+ > 4096/,
    );
  });

  test('a program parsed for one architecture and compiled for another says which name is missing', () => {
    const program = parsed('ALLOW { open }', 'x86_64');
    expect(() => compileKafel(program, { arch: 'aarch64' })).toThrow("Undefined identifier `open'");
  });
});

describe('seccomp BPF: disassembly and explanation', () => {
  test('one readable line per instruction, calls and returns named', () => {
    const text = disassemble(build('ERRNO(1) { socket { family == 2 } } DEFAULT ALLOW'), 'x86_64');
    expect(text).toContain('ld  A = args[0].lo');
    expect(text).toContain('if A == 0x2 goto');
    expect(text).toContain('ret ERRNO(1)');
    expect(text).toMatch(/if A >= 0x29 goto \d{4} else \d{4} {2}# socket/);
    const lines = text.split('\n');
    expect(lines.every((l, i) => l.startsWith(`${String(i).padStart(4, '0')}: `))).toBe(true);
  });

  test('all instruction kinds have a form', () => {
    const prog: SockFilter[] = [
      { code: BPF.LD_IMM, jt: 0, jf: 0, k: 5 },
      { code: BPF.LDX_IMM, jt: 0, jf: 0, k: 6 },
      { code: BPF.ST, jt: 0, jf: 0, k: 1 },
      { code: BPF.STX, jt: 0, jf: 0, k: 2 },
      { code: BPF.LD_MEM, jt: 0, jf: 0, k: 1 },
      { code: BPF.LDX_MEM, jt: 0, jf: 0, k: 2 },
      { code: BPF.TAX, jt: 0, jf: 0, k: 0 },
      { code: BPF.TXA, jt: 0, jf: 0, k: 0 },
      { code: BPF.ALU_AND_X, jt: 0, jf: 0, k: 0 },
      { code: BPF.ALU_OR_K, jt: 0, jf: 0, k: 3 },
      { code: BPF.JSET_X, jt: 0, jf: 1, k: 0 },
      { code: BPF.JGT_K, jt: 0, jf: 0, k: 1 },
      { code: BPF.LD_W_ABS, jt: 0, jf: 0, k: 12 },
      { code: BPF.RET_K, jt: 0, jf: 0, k: RET.TRACE | 4 },
    ];
    expect(disassemble(prog).split('\n')).toEqual([
      '0000: ld  A = 0x5',
      '0001: ldx X = 0x6',
      '0002: st  M[1] = A',
      '0003: stx M[2] = X',
      '0004: ld  A = M[1]',
      '0005: ldx X = M[2]',
      '0006: tax X = A',
      '0007: txa A = X',
      '0008: and A &= X',
      '0009: or  A |= 0x3',
      '0010: if A & X goto 0011 else 0012',
      '0011: if A > 0x1 goto 0012 else 0012',
      '0012: ld  A = ip.hi',
      '0013: ret TRACE(4)',
    ]);
  });

  test('explain: plain words, in the order the filter decides', () => {
    const src =
      '#define AF_INET 2\nPOLICY net { ERRNO(1) { socket { family == AF_INET } } }\nUSE net, ALLOW { read, write }, KILL { read }, LOG { socket { 1 == 2 } }';
    expect(explain(parsed(src), 'x86_64')).toEqual([
      'architectures other than x86_64: the process is killed',
      'x32 system calls (nr >= 0x40000000): the process is killed',
      'socket when family == AF_INET: fails with errno 1',
      'read, write: allowed',
      'read (never applies: an earlier rule always matches it): the thread is killed',
      'socket when 1 == 2 (never applies: the condition is never true): allowed and logged',
      "everything else: the thread is killed (kafel's default)",
    ]);
    expect(explain(parsed('ALLOW { open ON x86_64 } DEFAULT ALLOW', 'aarch64'), 'aarch64')).toEqual(
      ['architectures other than aarch64: the process is killed', 'everything else: allowed'],
    );
  });
});
