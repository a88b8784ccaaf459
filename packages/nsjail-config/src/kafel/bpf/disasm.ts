/** seccomp BPF in readable form, one instruction a line (as the filter will run). */
import { BPF, type SockFilter } from './asm';
import { RET } from './compile';

const NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(BPF).map(([k, v]) => [v, k]),
);

export function describeRet(k: number): string {
  const data = k & 0xffff;
  if (k === RET.ALLOW) return 'ALLOW';
  if (k === RET.LOG) return 'LOG';
  if (k === RET.KILL_PROCESS) return 'KILL_PROCESS';
  if (k === RET.KILL_THREAD) return 'KILL_THREAD';
  if (k === RET.USER_NOTIF) return 'USER_NOTIF';
  if ((k & 0xffff0000) >>> 0 === RET.ERRNO) return `ERRNO(${data})`;
  if ((k & 0xffff0000) >>> 0 === RET.TRAP) return `TRAP(${data})`;
  if ((k & 0xffff0000) >>> 0 === RET.TRACE) return `TRACE(${data})`;
  return `0x${k.toString(16)}`;
}

function field(off: number): string {
  if (off === 0) return 'nr';
  if (off === 4) return 'arch';
  if (off >= 16 && off < 64) return `args[${(off - 16) >> 3}].${off % 8 === 0 ? 'lo' : 'hi'}`;
  return `data[${off}]`;
}

export function disassemble(prog: readonly SockFilter[]): string {
  const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;
  return prog
    .map((f, i) => {
      const at = String(i).padStart(4, '0');
      const to = (off: number) => String(i + 1 + off).padStart(4, '0');
      const name = NAMES[f.code] ?? `op ${hex(f.code)}`;
      let text: string;
      switch (f.code) {
        case BPF.LD_W_ABS:
          text = `ld  A = ${field(f.k)}`;
          break;
        case BPF.LD_IMM:
          text = `ld  A = ${hex(f.k)}`;
          break;
        case BPF.LDX_IMM:
          text = `ldx X = ${hex(f.k)}`;
          break;
        case BPF.LD_MEM:
          text = `ld  A = M[${f.k}]`;
          break;
        case BPF.LDX_MEM:
          text = `ldx X = M[${f.k}]`;
          break;
        case BPF.ST:
          text = `st  M[${f.k}] = A`;
          break;
        case BPF.TAX:
          text = 'tax X = A';
          break;
        case BPF.ALU_AND_K:
          text = `and A &= ${hex(f.k)}`;
          break;
        case BPF.ALU_OR_K:
          text = `or  A |= ${hex(f.k)}`;
          break;
        case BPF.ALU_AND_X:
          text = 'and A &= X';
          break;
        case BPF.ALU_OR_X:
          text = 'or  A |= X';
          break;
        case BPF.JA:
          text = `ja  ${to(f.k)}`;
          break;
        case BPF.RET_K:
          text = `ret ${describeRet(f.k)}`;
          break;
        default: {
          const op =
            { JEQ: '==', JGT: '>', JGE: '>=', JSET: '&' }[
              name.slice(0, name.indexOf('_')) as 'JEQ'
            ] ?? name;
          const rhs = name.endsWith('_X') ? 'X' : hex(f.k);
          text = `if A ${op} ${rhs} goto ${to(f.jt)} else ${to(f.jf)}`;
        }
      }
      return `${at}: ${text}`;
    })
    .join('\n');
}
