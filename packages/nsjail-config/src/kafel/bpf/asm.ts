/**
 * Classic BPF as seccomp runs it: instructions with symbolic jump targets, laid out with long
 * jumps where an 8-bit conditional offset cannot reach (a JA trampoline right after the branch),
 * then serialized to the kernel's `struct sock_filter` (8 bytes, little-endian).
 */

export const BPF = {
  LD_W_ABS: 0x20,
  LD_IMM: 0x00,
  LDX_IMM: 0x01,
  LD_MEM: 0x60,
  LDX_MEM: 0x61,
  ST: 0x02,
  STX: 0x03,
  ALU_AND_K: 0x54,
  ALU_OR_K: 0x44,
  ALU_AND_X: 0x5c,
  ALU_OR_X: 0x4c,
  TAX: 0x07,
  TXA: 0x87,
  JA: 0x05,
  JEQ_K: 0x15,
  JGT_K: 0x25,
  JGE_K: 0x35,
  JSET_K: 0x45,
  JEQ_X: 0x1d,
  JGT_X: 0x2d,
  JGE_X: 0x3d,
  JSET_X: 0x4d,
  RET_K: 0x06,
} as const;

export const MAX_INSNS = 4096;
export const MEMWORDS = 16;

export type Label = { readonly id: number; readonly name?: string };

export interface Insn {
  code: number;
  k: number;
  /** Conditional jumps: targets; JA: `jt` is the target. */
  jt?: Label;
  jf?: Label;
}

export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** Builds a program in order; labels mark positions. */
export class Assembler {
  private readonly items: (Insn | { label: Label })[] = [];
  private next = 0;

  label(name?: string): Label {
    return name === undefined ? { id: this.next++ } : { id: this.next++, name };
  }

  place(l: Label): void {
    this.items.push({ label: l });
  }

  emit(code: number, k = 0, jt?: Label, jf?: Label): void {
    const insn: Insn = { code, k: k >>> 0 };
    if (jt) insn.jt = jt;
    if (jf) insn.jf = jf;
    this.items.push(insn);
  }

  /** Lays the program out; conditional jumps too far for 8 bits go through a JA. */
  assemble(): SockFilter[] {
    let items = [...this.items];
    for (;;) {
      const pos = new Map<number, number>();
      let n = 0;
      for (const it of items) {
        if ('label' in it) pos.set(it.label.id, n);
        else n++;
      }
      const at = (l: Label) => {
        const p = pos.get(l.id);
        if (p === undefined) throw new Error(`unplaced label ${l.name ?? l.id}`);
        return p;
      };
      let changed = false;
      const out: (Insn | { label: Label })[] = [];
      let idx = 0;
      for (const it of items) {
        out.push(it);
        if ('label' in it) continue;
        const me = idx++;
        const conditional = it.code !== BPF.JA && it.jt !== undefined;
        if (!conditional) continue;
        for (const side of ['jt', 'jf'] as const) {
          const target = it[side]!;
          const off = at(target) - (me + 1);
          if (off < 0) throw new Error('backward jump');
          if (off > 255) {
            // Insert `JA target` right after this branch and branch to it instead.
            const tramp = this.label('trampoline');
            it[side] = tramp;
            out.push({ label: tramp }, { code: BPF.JA, k: 0, jt: target });
            changed = true;
            break;
          }
        }
        if (changed) {
          out.push(...items.slice(items.indexOf(it) + 1));
          break;
        }
      }
      items = out;
      if (changed) continue;
      const result: SockFilter[] = [];
      let i = 0;
      for (const it of items) {
        if ('label' in it) continue;
        if (it.code === BPF.JA)
          result.push({ code: it.code, jt: 0, jf: 0, k: at(it.jt!) - (i + 1) });
        else if (it.jt)
          result.push({
            code: it.code,
            jt: at(it.jt) - (i + 1),
            jf: at(it.jf!) - (i + 1),
            k: it.k,
          });
        else result.push({ code: it.code, jt: 0, jf: 0, k: it.k });
        i++;
      }
      return result;
    }
  }
}

/** The kernel's layout: u16 code, u8 jt, u8 jf, u32 k, little-endian. */
export function serialize(prog: readonly SockFilter[]): Uint8Array {
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((f, i) => {
    buf.writeUInt16LE(f.code, i * 8);
    buf.writeUInt8(f.jt, i * 8 + 2);
    buf.writeUInt8(f.jf, i * 8 + 3);
    buf.writeUInt32LE(f.k >>> 0, i * 8 + 4);
  });
  return new Uint8Array(buf);
}
