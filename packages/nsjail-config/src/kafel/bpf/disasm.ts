/**
 * seccomp BPF in readable form, one instruction a line, in the spirit of seccomp-tools:
 *   0004: if A >= 0x3 goto 0009 else 0005  # close
 * A comparison against the system call number is annotated with the call's name, and one
 * against the architecture with its name; returns are shown as actions.
 */
import type { KafelArch } from '../syscalls';
import { syscallByNumber } from '../syscalls';
import { BPF, deserialize, type SockFilter } from './asm';
import { AUDIT_ARCH, RET } from './compile';

const RET_A = 0x16;

export function describeRet(k: number): string {
  k >>>= 0;
  const data = k & 0xffff;
  const action = (k & 0xffff0000) >>> 0;
  if (k === RET.ALLOW) return 'ALLOW';
  if (k === RET.LOG) return 'LOG';
  if (k === RET.KILL_PROCESS) return 'KILL_PROCESS';
  if (k === RET.KILL_THREAD) return 'KILL_THREAD';
  if (k === RET.USER_NOTIF) return 'USER_NOTIF';
  if (action === RET.ERRNO) return `ERRNO(${data})`;
  if (action === RET.TRAP) return `TRAP(${data})`;
  if (action === RET.TRACE) return `TRACE(${data})`;
  return `0x${k.toString(16)}`;
}

function field(off: number): string {
  if (off === 0) return 'nr';
  if (off === 4) return 'arch';
  if (off === 8) return 'ip.lo';
  if (off === 12) return 'ip.hi';
  if (off >= 16 && off < 64 && off % 4 === 0)
    return `args[${(off - 16) >> 3}].${off % 8 === 0 ? 'lo' : 'hi'}`;
  return `data[${off}]`;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;
type Holds = 'nr' | 'arch' | 'other' | 'mixed';

/** What A holds before each instruction (jumps only go forward, so one pass settles it). */
function accumulator(prog: readonly SockFilter[]): (Holds | undefined)[] {
  const state: (Holds | undefined)[] = new Array(prog.length).fill(undefined);
  state[0] = 'other';
  const flow = (to: number, s: Holds): void => {
    if (to >= prog.length) return;
    const cur = state[to];
    state[to] = cur === undefined || cur === s ? s : 'mixed';
  };
  prog.forEach((f, i) => {
    const s = state[i];
    if (s === undefined) return;
    let after: Holds = s;
    if (f.code === BPF.LD_W_ABS) after = f.k === 0 ? 'nr' : f.k === 4 ? 'arch' : 'other';
    else if ((f.code & 0x07) === 0x00 || (f.code & 0x07) === 0x04 || f.code === BPF.TXA)
      after = 'other';
    if (f.code === BPF.RET_K || f.code === RET_A) return;
    if (f.code === BPF.JA) flow(i + 1 + f.k, after);
    else if ((f.code & 0x07) === 0x05) {
      flow(i + 1 + f.jt, after);
      flow(i + 1 + f.jf, after);
    } else flow(i + 1, after);
  });
  return state;
}

function comment(f: SockFilter, holds: Holds | undefined, arch: KafelArch | undefined): string {
  if (holds === 'arch') {
    const name = (Object.keys(AUDIT_ARCH) as KafelArch[]).find((a) => AUDIT_ARCH[a] === f.k);
    return name ? `  # ${name}` : '';
  }
  if (holds !== 'nr' || !arch) return '';
  if (f.k === 0x40000000 && arch === 'x86_64') return '  # x32 ABI bit';
  const sc = syscallByNumber(arch, f.k);
  return sc ? `  # ${sc.name}` : '';
}

function text(f: SockFilter, i: number): string {
  const to = (off: number): string => String(i + 1 + off).padStart(4, '0');
  switch (f.code) {
    case BPF.LD_W_ABS:
      return `ld  A = ${field(f.k)}`;
    case BPF.LD_IMM:
      return `ld  A = ${hex(f.k)}`;
    case BPF.LDX_IMM:
      return `ldx X = ${hex(f.k)}`;
    case BPF.LD_MEM:
      return `ld  A = M[${f.k}]`;
    case BPF.LDX_MEM:
      return `ldx X = M[${f.k}]`;
    case BPF.ST:
      return `st  M[${f.k}] = A`;
    case BPF.STX:
      return `stx M[${f.k}] = X`;
    case BPF.TAX:
      return 'tax X = A';
    case BPF.TXA:
      return 'txa A = X';
    case BPF.ALU_AND_K:
      return `and A &= ${hex(f.k)}`;
    case BPF.ALU_OR_K:
      return `or  A |= ${hex(f.k)}`;
    case BPF.ALU_AND_X:
      return 'and A &= X';
    case BPF.ALU_OR_X:
      return 'or  A |= X';
    case BPF.JA:
      return `ja  ${to(f.k)}`;
    case BPF.RET_K:
      return `ret ${describeRet(f.k)}`;
    case RET_A:
      return 'ret A';
  }
  const ops: Record<number, string> = { 16: '==', 32: '>', 48: '>=', 64: '&' };
  const op = ops[f.code & 0xf0];
  if ((f.code & 0x07) === 0x05 && op) {
    const rhs = (f.code & 0x08) !== 0 ? 'X' : hex(f.k);
    return `if A ${op} ${rhs} goto ${to(f.jt)} else ${to(f.jf)}`;
  }
  return `op  ${hex(f.code)} jt=${f.jt} jf=${f.jf} k=${hex(f.k)}`;
}

/** One line per instruction; with `arch`, call numbers are annotated with kafel's names. */
export function disassemble(prog: readonly SockFilter[] | Uint8Array, arch?: KafelArch): string {
  const insns = prog instanceof Uint8Array ? deserialize(prog) : prog;
  const holds = accumulator(insns);
  return insns
    .map((f, i) => {
      const isCmp = (f.code & 0x07) === 0x05 && f.code !== BPF.JA && (f.code & 0x08) === 0;
      return `${String(i).padStart(4, '0')}: ${text(f, i)}${isCmp ? comment(f, holds[i], arch) : ''}`;
    })
    .join('\n');
}
