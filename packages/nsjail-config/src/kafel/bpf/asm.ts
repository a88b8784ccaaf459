/**
 * Classic BPF as seccomp runs it: a builder with symbolic (forward-only) jump targets, laid out
 * with trampolines where a conditional jump's 8-bit offset cannot reach, and the kernel's
 * `struct sock_filter` encoding (u16 code, u8 jt, u8 jf, u32 k; little-endian on both
 * architectures ktl targets).
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

/** The kernel's limit (BPF_MAXINSNS); kafel only checks 65535 and leaves the rest to prctl. */
export const MAX_INSNS = 4096;
/** Scratch memory words (BPF_MEMWORDS). */
export const MEMWORDS = 16;
const MAX_JUMP = 255;

export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export interface Label {
  readonly id: number;
}

type Insn = { code: number; k: number; jt?: Label; jf?: Label; ja?: Label };
type Item = { readonly label: Label } | Insn;

function isLabel(it: Item): it is { readonly label: Label } {
  return 'label' in it;
}

export function isConditionalJump(code: number): boolean {
  return (code & 0x07) === 0x05 && code !== BPF.JA;
}

/** Where control cannot arrive (after a return or an unconditional jump). */
const UNREACHABLE = Symbol('unreachable');
type AState = string | undefined | typeof UNREACHABLE;

/**
 * Builds a program in execution order; every jump goes forward to a label placed later.
 * It also tracks what the accumulator holds, so loading the same seccomp_data word again
 * (the call number after a test, an argument compared twice) emits nothing: a label's state is
 * known once every jump to it has been emitted, which forward-only jumps guarantee.
 */
export class Assembler {
  private items: Item[] = [];
  private nextId = 0;
  private a: AState = undefined;
  private readonly incoming = new Map<number, AState[]>();

  label(): Label {
    return { id: this.nextId++ };
  }

  place(l: Label): void {
    const states = this.incoming.get(l.id) ?? [];
    if (this.a !== UNREACHABLE) states.push(this.a);
    this.a =
      states.length === 0
        ? UNREACHABLE
        : states.every((s) => s === states[0])
          ? states[0]
          : undefined;
    this.items.push({ label: l });
  }

  private reach(l: Label): void {
    const list = this.incoming.get(l.id);
    if (list) list.push(this.a);
    else this.incoming.set(l.id, [this.a]);
  }

  /** `A = data[k]` (LD_W_ABS) or `A = k` (LD_IMM), skipped when A already holds it. */
  load(code: typeof BPF.LD_W_ABS | typeof BPF.LD_IMM, k: number): void {
    const key = `${code}:${k >>> 0}`;
    if (this.a === key) return;
    this.items.push({ code, k: k >>> 0 });
    this.a = key;
  }

  emit(code: number, k = 0): void {
    this.items.push({ code, k: k >>> 0 });
    const cls = code & 0x07;
    if (code === BPF.RET_K) this.a = UNREACHABLE;
    else if (cls === 0x00 || cls === 0x04 || code === BPF.TXA) this.a = undefined;
  }

  ja(target: Label): void {
    this.reach(target);
    this.items.push({ code: BPF.JA, k: 0, ja: target });
    this.a = UNREACHABLE;
  }

  /** A conditional jump; with both targets the same it is a plain jump. */
  jump(code: number, k: number, jt: Label, jf: Label): void {
    if (jt === jf) {
      this.ja(jt);
      return;
    }
    this.reach(jt);
    this.reach(jf);
    this.items.push({ code, k: k >>> 0, jt, jf });
    this.a = UNREACHABLE;
  }

  /** Offsets of labels and instructions for the current item list. */
  private layout(): { at: Map<number, number>; first: Map<number, Insn> } {
    const at = new Map<number, number>();
    const first = new Map<number, Insn>();
    const waiting: number[] = [];
    let n = 0;
    for (const it of this.items) {
      if (isLabel(it)) {
        at.set(it.label.id, n);
        waiting.push(it.label.id);
      } else {
        for (const id of waiting.splice(0)) first.set(id, it);
        n++;
      }
    }
    return { at, first };
  }

  /** Drops jumps to the very next instruction (a plain jump falls through anyway). */
  private peephole(): void {
    const { at } = this.layout();
    let idx = 0;
    this.items = this.items.filter((it) => {
      if (isLabel(it)) return true;
      const here = idx++;
      return !(it.ja && at.get(it.ja.id) === here + 1);
    });
  }

  /**
   * Resolves labels. A conditional jump further than 255 instructions gets a stepping stone
   * right after it: a copy of the target when that is a return (as kafel does), else a `JA`
   * (32-bit offset). Stepping stones push other targets further, so this repeats until
   * every offset fits.
   */
  assemble(): SockFilter[] {
    this.peephole();
    for (;;) {
      const { at, first } = this.layout();
      const far = (target: Label | undefined, idx: number): boolean =>
        target !== undefined && at.get(target.id)! - (idx + 1) > MAX_JUMP;
      const out: Item[] = [];
      let idx = 0;
      let changed = false;
      for (const it of this.items) {
        out.push(it);
        if (isLabel(it)) continue;
        const me = idx++;
        if (!it.jt || !it.jf) continue;
        for (const side of ['jt', 'jf'] as const) {
          const target = it[side]!;
          if (!far(target, me)) continue;
          changed = true;
          const stone = this.label();
          const dest = first.get(target.id);
          const copy = dest && dest.code === BPF.RET_K ? { code: BPF.RET_K, k: dest.k } : undefined;
          out.push({ label: stone }, copy ?? { code: BPF.JA, k: 0, ja: target });
          it[side] = stone;
        }
      }
      this.items = out;
      if (!changed) break;
    }
    const { at } = this.layout();
    const prog: SockFilter[] = [];
    for (const it of this.items) {
      if (isLabel(it)) continue;
      const here = prog.length + 1;
      const off = (l: Label): number => {
        const d = at.get(l.id);
        if (d === undefined || d < here)
          throw new Error(`BPF label ${l.id} not placed ahead of its jump`);
        return d - here;
      };
      if (it.ja) prog.push({ code: BPF.JA, jt: 0, jf: 0, k: off(it.ja) });
      else if (it.jt && it.jf)
        prog.push({ code: it.code, jt: off(it.jt), jf: off(it.jf), k: it.k });
      else prog.push({ code: it.code, jt: 0, jf: 0, k: it.k });
    }
    return prog;
  }
}

/** The kernel's layout: u16 code, u8 jt, u8 jf, u32 k, little-endian. */
export function serialize(prog: readonly SockFilter[]): Uint8Array {
  const bytes = new Uint8Array(prog.length * 8);
  const view = new DataView(bytes.buffer);
  prog.forEach((f, i) => {
    view.setUint16(i * 8, f.code, true);
    view.setUint8(i * 8 + 2, f.jt);
    view.setUint8(i * 8 + 3, f.jf);
    view.setUint32(i * 8 + 4, f.k >>> 0, true);
  });
  return bytes;
}

/** The reverse of serialize (for reading a filter back, e.g. one kafel produced). */
export function deserialize(bytes: Uint8Array): SockFilter[] {
  if (bytes.length % 8 !== 0)
    throw new Error(`a seccomp filter is a multiple of 8 bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const prog: SockFilter[] = [];
  for (let i = 0; i < bytes.length; i += 8)
    prog.push({
      code: view.getUint16(i, true),
      jt: view.getUint8(i + 2),
      jf: view.getUint8(i + 3),
      k: view.getUint32(i + 4, true),
    });
  return prog;
}
