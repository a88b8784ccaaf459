/** A classic-BPF interpreter with seccomp's data layout, to run compiled filters in tests. */
import { BPF, type SockFilter } from '../../src/kafel/bpf';

export interface SeccompData {
  nr: number;
  arch: number;
  args?: bigint[];
}

export function runFilter(prog: readonly SockFilter[], d: SeccompData): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(d.nr | 0, 0);
  data.writeUInt32LE(d.arch >>> 0, 4);
  (d.args ?? []).forEach((v, i) => {
    data.writeBigUInt64LE(BigInt.asUintN(64, v), 16 + 8 * i);
  });
  const M = new Uint32Array(16);
  let A = 0;
  let X = 0;
  for (let pc = 0, steps = 0; pc < prog.length && steps < 100_000; steps++) {
    const f = prog[pc]!;
    const next = pc + 1;
    switch (f.code) {
      case BPF.LD_W_ABS:
        A = data.readUInt32LE(f.k);
        break;
      case BPF.LD_IMM:
        A = f.k >>> 0;
        break;
      case BPF.LDX_IMM:
        X = f.k >>> 0;
        break;
      case BPF.LD_MEM:
        A = M[f.k]!;
        break;
      case BPF.LDX_MEM:
        X = M[f.k]!;
        break;
      case BPF.ST:
        M[f.k] = A;
        break;
      case BPF.TAX:
        X = A;
        break;
      case BPF.ALU_AND_K:
        A = (A & f.k) >>> 0;
        break;
      case BPF.ALU_OR_K:
        A = (A | f.k) >>> 0;
        break;
      case BPF.ALU_AND_X:
        A = (A & X) >>> 0;
        break;
      case BPF.ALU_OR_X:
        A = (A | X) >>> 0;
        break;
      case BPF.JA:
        pc = next + f.k;
        continue;
      case BPF.RET_K:
        return f.k >>> 0;
      default: {
        const rhs = (f.code & 0x08) !== 0 ? X : f.k >>> 0;
        const kind = f.code & 0xf0;
        const ok =
          kind === 0x10
            ? A === rhs
            : kind === 0x20
              ? A > rhs
              : kind === 0x30
                ? A >= rhs
                : (A & rhs) !== 0;
        if (![0x10, 0x20, 0x30, 0x40].includes(kind)) throw new Error(`bad opcode ${f.code}`);
        pc = next + (ok ? f.jt : f.jf);
        continue;
      }
    }
    pc = next;
  }
  throw new Error('filter ran off its end or looped');
}
