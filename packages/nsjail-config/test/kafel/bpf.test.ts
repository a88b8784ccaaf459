import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { type KafelArch, syscallNames } from '../../src/kafel';
import {
  Assembler,
  BPF,
  compile,
  compileKafel,
  deserialize,
  disassemble,
  MAX_INSNS,
  RET,
  serialize,
} from '../../src/kafel/bpf';
import { lookupSyscall } from '../../src/kafel/syscalls';
import { ARM, build, errno, nr, parsed, verdict, X86 } from './bpf-helpers';
import { runFilter, runFilterSteps, verify } from './bpf-vm';
import { probes, randomPolicy, reference } from './reference';

describe('seccomp BPF: structure', () => {
  test('the architecture is checked first, then x32 is refused, then the rules', () => {
    const prog = build('ALLOW { read } DEFAULT KILL');
    expect(disassemble(prog, 'x86_64').split('\n')).toEqual([
      '0000: ld  A = arch',
      '0001: if A == 0xc000003e goto 0003 else 0002  # x86_64',
      '0002: ret KILL_PROCESS',
      '0003: ld  A = nr',
      '0004: if A >= 0x40000000 goto 0005 else 0006  # x32 ABI bit',
      '0005: ret KILL_PROCESS',
      '0006: if A >= 0x1 goto 0007 else 0008  # write',
      '0007: ret KILL_THREAD',
      '0008: ret ALLOW',
    ]);
  });

  test.each([
    ['x86_64', X86, ARM],
    ['aarch64', ARM, X86],
    ['x86_64', X86, 0x40000003], // i386 calls on x86_64 (int 0x80)
    ['aarch64', ARM, 0x40000028], // 32-bit arm calls on aarch64
  ] as const)(
    'on %s, a call from another architecture (0x%s) kills the process',
    (arch, own, other) => {
      const prog = build('DEFAULT ALLOW', arch);
      expect(runFilter(prog, { nr: 0, arch: own })).toBe(RET.ALLOW);
      expect(runFilter(prog, { nr: 0, arch: other })).toBe(RET.KILL_PROCESS);
    },
  );

  test('x32 calls kill the process on x86_64, whatever the rules say', () => {
    const prog = build('ALLOW { SYSCALL[0x40000029] } DEFAULT ALLOW');
    for (const n of [0x40000000, 0x40000029, 0x40000000 + nr('socket'), 0xffffffff])
      expect(runFilter(prog, { nr: n, arch: X86 })).toBe(RET.KILL_PROCESS);
    expect(runFilter(prog, { nr: 0x3fffffff, arch: X86 })).toBe(RET.ALLOW);
    // aarch64 has no such ABI bit: there the rule applies
    expect(
      runFilter(build('ERRNO(5) { SYSCALL[0x40000029] } DEFAULT ALLOW', 'aarch64'), {
        nr: 0x40000029,
        arch: ARM,
      }),
    ).toBe(errno(5));
  });

  test('serialized as the kernel reads struct sock_filter (8 bytes, little-endian)', () => {
    const prog = build('ERRNO(0x1234) { read } DEFAULT ALLOW');
    const bytes = compile(parsed('ERRNO(0x1234) { read } DEFAULT ALLOW'), 'x86_64');
    expect(bytes).toEqual(serialize(prog));
    expect(bytes.length).toBe(prog.length * 8);
    expect([...bytes.slice(0, 16)]).toEqual([
      0x20, 0, 0, 0, 4, 0, 0, 0, 0x15, 0, 1, 0, 0x3e, 0, 0, 0xc0,
    ]);
    expect(deserialize(bytes)).toEqual(prog);
    expect(disassemble(bytes)).toBe(disassemble(prog));
    expect(disassemble(prog)).toContain('ret ERRNO(4660)');
  });

  test('a large allow-list costs a few instructions per call (binary search, merged ranges)', () => {
    const names = syscallNames('x86_64').filter((n) => n !== 'ptrace');
    const prog = build(`ALLOW { ${names.join(', ')} } DEFAULT ERRNO(1)`);
    expect(prog.length).toBeLessThan(40);
    let worst = 0;
    for (const n of names) {
      const r = runFilterSteps(prog, { nr: nr(n), arch: X86 });
      expect({ n, ret: r.ret }).toEqual({ n, ret: RET.ALLOW });
      worst = Math.max(worst, r.steps);
    }
    expect(worst).toBeLessThan(20);
    expect(runFilter(prog, { nr: nr('ptrace'), arch: X86 })).toBe(errno(1));
  });
});

describe('seccomp BPF: actions, as kafel maps them to SECCOMP_RET_*', () => {
  test.each([
    ['ALLOW', 0x7fff0000],
    ['LOG', 0x7ffc0000],
    ['KILL', 0x00000000],
    ['KILL_THREAD', 0x00000000],
    ['DENY', 0x00000000],
    ['KILL_PROCESS', 0x80000000],
    ['USER_NOTIF', 0x7fc00000],
    ['ERRNO(13)', 0x0005000d],
    ['ERRNO(0)', 0x00050000],
    ['ERRNO(65535)', 0x0005ffff],
    ['TRAP(7)', 0x00030007],
    ['TRACE(65535)', 0x7ff0ffff],
  ])('%s is 0x%s', (action, value) => {
    expect(verdict(`${action} { read } DEFAULT ALLOW`, 'read')).toBe(value);
    expect(verdict(`ALLOW { read } DEFAULT ${action}`, 'write')).toBe(value);
    expect(verdict(`${action} { read { fd == 3 } } DEFAULT ALLOW`, 'read', [3n])).toBe(value);
  });

  test('no DEFAULT means KILL (the thread)', () => {
    expect(verdict('ALLOW { read }', 'write')).toBe(RET.KILL_THREAD);
    expect(verdict('POLICY p { ALLOW { read } }', 'read')).toBe(RET.KILL_THREAD);
  });

  test('first matching rule wins; a failed condition falls through to later rules', () => {
    const src = 'ERRNO(1) { write { fd == 2 } } ALLOW { write } ERRNO(9) { write } DEFAULT KILL';
    expect(verdict(src, 'write', [2n])).toBe(errno(1));
    expect(verdict(src, 'write', [1n])).toBe(RET.ALLOW);
  });

  test('rules after an unconditional one for the same call never apply', () => {
    const src = 'ALLOW { read } ERRNO(1) { read { fd == 0 } } DEFAULT KILL';
    expect(verdict(src, 'read', [0n])).toBe(RET.ALLOW);
  });

  test('POLICY/USE (expanded where used, once) and #define', () => {
    const src =
      '#define STDERR 2\nPOLICY out { ALLOW { write { fd == STDERR } } }\nUSE out, ERRNO(5) { write }, USE out\nDEFAULT KILL_PROCESS';
    expect(verdict(src, 'write', [2n])).toBe(RET.ALLOW);
    expect(verdict(src, 'write', [1n])).toBe(errno(5));
    expect(verdict(src, 'read')).toBe(RET.KILL_PROCESS);
  });

  test('SYSCALL[n], a #define as the call, and declared arguments (64-bit)', () => {
    const prog = build(
      '#define MINE 4001\nALLOW { SYSCALL[4000](a, b) { a == 1 && b == 0x100000002 }, MINE } DEFAULT ERRNO(38)',
    );
    expect(runFilter(prog, { nr: 4000, arch: X86, args: [1n, 0x1_0000_0002n] })).toBe(RET.ALLOW);
    expect(runFilter(prog, { nr: 4000, arch: X86, args: [1n, 2n] })).toBe(errno(38));
    expect(runFilter(prog, { nr: 4001, arch: X86 })).toBe(RET.ALLOW);
  });

  test('ON guards', () => {
    const src = 'ALLOW { read ON aarch64, write ON { x86_64, arm } } DEFAULT ERRNO(1)';
    expect(verdict(src, 'read')).toBe(errno(1));
    expect(verdict(src, 'write')).toBe(RET.ALLOW);
    expect(verdict(src, 'read', [], 'aarch64')).toBe(RET.ALLOW);
    expect(verdict(src, 'write', [], 'aarch64')).toBe(errno(1));
  });
});
describe('seccomp BPF: long jumps', () => {
  test('a 400-call policy with distinct actions and conditions: >255 instructions, every call right', () => {
    const names = syscallNames('x86_64');
    const calls = [...names, ...Array.from({ length: 18 }, (_, i) => `SYSCALL[${2000 + i}](a)`)];
    expect(calls.length).toBeGreaterThanOrEqual(400);
    const rules = calls.map((c, i) => {
      const args = c.startsWith('SYSCALL')
        ? ['a']
        : lookupSyscall('x86_64', c)!.args.map((a) => a.name);
      // kafel's names starting with `_` cannot be written in a policy
      const cond =
        i % 3 === 0 && args.length > 0 && !args[0]!.startsWith('_') ? ` { ${args[0]} == 7 }` : '';
      return `${i % 2 ? 'ALLOW' : `ERRNO(${i})`} { ${c}${cond} }`;
    });
    const src = `${rules.join('\n')}\nDEFAULT KILL_PROCESS`;
    const program = parsed(src);
    const prog = build(src);
    expect(prog.length).toBeGreaterThan(700);
    expect(prog.length).toBeLessThanOrEqual(MAX_INSNS);
    // conditional jumps reach only 255 ahead: far targets go through stepping stones
    expect(prog.some((f) => f.code === BPF.JA)).toBe(true);
    for (let i = 0; i < calls.length; i++) {
      const n = calls[i]!.startsWith('SYSCALL') ? 2000 + i - names.length : nr(calls[i]!);
      for (const a of [7n, 8n]) {
        const d = { nr: n, arch: X86, args: [a] };
        expect({ call: calls[i], a, ret: runFilter(prog, d) }).toEqual({
          call: calls[i],
          a,
          ret: reference(program, 'x86_64', d),
        });
      }
    }
    expect(runFilter(prog, { nr: 1999, arch: X86 })).toBe(RET.KILL_PROCESS);
  });

  test('a condition longer than 255 instructions still branches correctly', () => {
    const cond = Array.from({ length: 180 }, (_, i) => `fd == ${i * 3}`).join(' || ');
    const prog = build(`ALLOW { write { ${cond} } } DEFAULT ERRNO(1)`);
    expect(prog.length).toBeGreaterThan(180);
    for (const [fd, ok] of [
      [0n, true],
      [417n, true],
      [537n, true],
      [418n, false],
      [540n, false],
    ] as const)
      expect(runFilter(prog, { nr: 1, arch: X86, args: [fd] })).toBe(ok ? RET.ALLOW : errno(1));
    const far = build(
      `ERRNO(2) { read { ${cond.replaceAll('fd', 'count')} } } ALLOW { write { ${cond} } } DEFAULT ERRNO(1)`,
    );
    expect(runFilter(far, { nr: 1, arch: X86, args: [3n] })).toBe(RET.ALLOW);
    expect(runFilter(far, { nr: 0, arch: X86, args: [0n, 0n, 6n] })).toBe(errno(2));
    expect(runFilter(far, { nr: 0, arch: X86, args: [0n, 0n, 7n] })).toBe(errno(1));
  });

  test('the assembler puts a stepping stone after a branch that cannot reach', () => {
    const a = new Assembler();
    const far = a.label();
    const near = a.label();
    a.emit(BPF.LD_W_ABS, 0);
    a.jump(BPF.JEQ_K, 1, far, near);
    a.place(near);
    for (let i = 0; i < 300; i++) a.emit(BPF.LD_IMM, i);
    a.emit(BPF.RET_K, 1);
    a.place(far);
    a.emit(BPF.LD_IMM, 9);
    a.emit(BPF.RET_K, 2);
    const prog = a.assemble();
    expect(prog[1]).toMatchObject({ code: BPF.JEQ_K, jt: 0, jf: 1 });
    expect(prog[2]).toMatchObject({ code: BPF.JA, k: 301 });
    expect(verify(prog)).toBeUndefined();
    expect(runFilter(prog, { nr: 1, arch: 0 })).toBe(2);
    expect(runFilter(prog, { nr: 0, arch: 0 })).toBe(1);
  });

  test('a stepping stone to a return is a copy of the return', () => {
    const a = new Assembler();
    const far = a.label();
    const near = a.label();
    a.emit(BPF.LD_W_ABS, 0);
    a.jump(BPF.JEQ_K, 1, far, near);
    a.place(near);
    for (let i = 0; i < 300; i++) a.emit(BPF.LD_IMM, i);
    a.emit(BPF.RET_K, 1);
    a.place(far);
    a.emit(BPF.RET_K, 2);
    const prog = a.assemble();
    expect(prog[2]).toMatchObject({ code: BPF.RET_K, k: 2 });
    expect(runFilter(prog, { nr: 1, arch: 0 })).toBe(2);
  });
});
describe('seccomp BPF: against a direct evaluation of the policy', () => {
  test('600 random policies, 80 calls each, on both architectures', () => {
    fc.assert(
      fc.property(fc.integer(), fc.constantFrom<KafelArch>('x86_64', 'aarch64'), (seed, arch) => {
        const src = randomPolicy(seed);
        const program = parsed(src, arch);
        const prog = compileKafel(program, { arch });
        expect(verify(prog)).toBeUndefined();
        for (const d of probes(arch, seed, 80)) {
          const want = reference(program, arch, d);
          const got = runFilter(prog, d);
          if (got !== want)
            throw new Error(
              `${src}\n${JSON.stringify({ ...d, args: d.args?.map(String) })}: ${got.toString(16)} != ${want.toString(16)}`,
            );
        }
      }),
      { numRuns: 600 },
    );
  });
});
