/**
 * Conditions → BPF, the way kafel's codegen does it, so results and limits agree:
 * - a comparison is 64-bit when either side is (an 8-byte argument or a constant above
 *   2^32-1); 64-bit `==` tests the high words then the low ones, `>`/`>=` decide on the high
 *   words and fall back to the low words when those are equal; otherwise only the low 32 bits
 *   of each side are compared (a 4-byte argument's high half is never looked at);
 * - everything is unsigned (`fd < 0` is never true);
 * - per 32-bit word, `x & 0` and `x | 0xffffffff` are constants, constant sides are swapped
 *   to the right (`5 > x` is `!(x >= 5)`), `(x & m) == 0` is a JSET, and jumps that cannot
 *   fail or succeed (`x >= 0`, `x > 0xffffffff`) are resolved at compile time;
 * - `a op b` with two non-constant sides keeps one in the index register, spilling to scratch
 *   memory when the other side is itself an expression; kafel refuses more than 16 nested
 *   spills ("Required stack size exceeds available BPF memory"), and so do we.
 */
import { type Assembler, BPF, type Label } from './asm';
import { type BinIR, constWord, type IR, is64, type Word } from './ir';

type J = 'eq' | 'gt' | 'ge' | 'set';
const JK: Record<J, number> = { eq: BPF.JEQ_K, gt: BPF.JGT_K, ge: BPF.JGE_K, set: BPF.JSET_K };
const JX: Record<J, number> = { eq: BPF.JEQ_X, gt: BPF.JGT_X, ge: BPF.JGE_X, set: BPF.JSET_X };

/** seccomp_data.args[i], low or high word (little-endian: the low word comes first). */
export function argOffset(i: number, word: Word): number {
  return 16 + 8 * i + (word === 'hi' ? 4 : 0);
}

function holds(j: J, a: number, b: number): boolean {
  if (j === 'eq') return a === b;
  if (j === 'gt') return a > b;
  if (j === 'ge') return a >= b;
  return (a & b) !== 0;
}

export class CondCompiler {
  /** kafel's max_stack_ptr: the deepest scratch slot a spill used. */
  maxStack = 0;

  constructor(private readonly asm: Assembler) {}

  /** Emits code that jumps to `t` when `e` holds and to `f` otherwise. */
  cond(e: IR, t: Label, f: Label): void {
    const a = this.asm;
    switch (e.t) {
      case 'true':
        a.ja(t);
        return;
      case 'false':
        a.ja(f);
        return;
      case 'not':
        this.cond(e.c, f, t);
        return;
      case 'and':
      case 'or': {
        const mid = a.label();
        if (e.t === 'and') this.cond(e.l, mid, f);
        else this.cond(e.l, t, mid);
        a.place(mid);
        this.cond(e.r, t, f);
        return;
      }
      case 'eq':
        this.equality(e, t, f);
        return;
      case 'ne':
        this.equality(e, f, t);
        return;
      case 'gt':
        this.inequality('gt', e, t, f);
        return;
      case 'le':
        this.inequality('gt', e, f, t);
        return;
      case 'ge':
        this.inequality('ge', e, t, f);
        return;
      case 'lt':
        this.inequality('ge', e, f, t);
        return;
      default:
        throw new Error(`a value (${e.t}) where kafel expects a condition`);
    }
  }

  private equality(e: BinIR, t: Label, f: Label): void {
    if (is64(e.l) || is64(e.r)) {
      const lo = this.asm.label();
      this.cmp32('eq', e, 'hi', lo, f);
      this.asm.place(lo);
    }
    this.cmp32('eq', e, 'lo', t, f);
  }

  private inequality(j: 'gt' | 'ge', e: BinIR, t: Label, f: Label): void {
    if (is64(e.l) || is64(e.r)) {
      const sameHigh = this.asm.label();
      const lo = this.asm.label();
      this.cmp32('gt', e, 'hi', t, sameHigh);
      this.asm.place(sameHigh);
      this.cmp32('ge', e, 'hi', lo, f);
      this.asm.place(lo);
    }
    this.cmp32(j, e, 'lo', t, f);
  }

  private cmp32(j: J, e: BinIR, word: Word, t: Label, f: Label): void {
    let l = e.l;
    let r = e.r;
    let lc = constWord(l, word);
    let rc = constWord(r, word);
    if (lc !== undefined && rc !== undefined) {
      this.asm.ja(holds(j, lc, rc) ? t : f);
      return;
    }
    if (lc !== undefined) {
      [l, r, lc, rc] = [r, l, rc, lc];
      if (j === 'gt' || j === 'ge') {
        j = j === 'gt' ? 'ge' : 'gt';
        [t, f] = [f, t];
      }
    }
    if ((j === 'eq' || j === 'gt') && l.t === 'band' && rc === 0) {
      // (x & m) == 0  is  !(x & m);  (x & m) > 0  is  (x & m) != 0
      [l, r] = constWord(l.l, word) !== undefined ? [l.r, l.l] : [l.l, l.r];
      if (j === 'eq') [t, f] = [f, t];
      j = 'set';
      rc = constWord(r, word);
    }
    if (rc !== undefined) {
      if (
        (j === 'ge' && rc === 0) ||
        (j === 'gt' && rc === 0xffffffff) ||
        (j === 'set' && rc === 0)
      ) {
        this.asm.ja(j === 'ge' ? t : f);
        return;
      }
      this.load(l, word, 0);
      this.asm.jump(JK[j], rc, t, f);
      return;
    }
    this.load(r, word, 0);
    if (l.t !== 'var') {
      this.asm.emit(BPF.ST, 0);
      this.load(l, word, 1);
      this.asm.emit(BPF.LDX_MEM, 0);
    } else {
      this.asm.emit(BPF.TAX);
      this.load(l, word, 0);
    }
    this.asm.jump(JX[j], 0, t, f);
  }

  /** Leaves one word of a value in A. */
  private load(e: IR, word: Word, sp: number): void {
    const a = this.asm;
    if (e.t === 'var') {
      a.load(BPF.LD_W_ABS, argOffset(e.i, word));
      return;
    }
    const c = constWord(e, word);
    if (c !== undefined) {
      a.load(BPF.LD_IMM, c);
      return;
    }
    if (e.t !== 'band' && e.t !== 'bor')
      throw new Error(`a condition (${e.t}) where kafel expects a value`);
    let l = e.l;
    let r = e.r;
    if (constWord(l, word) !== undefined) [l, r] = [r, l];
    const rc = constWord(r, word);
    const and = e.t === 'band';
    if (rc !== undefined) {
      this.load(l, word, sp);
      if (rc !== (and ? 0xffffffff : 0)) a.emit(and ? BPF.ALU_AND_K : BPF.ALU_OR_K, rc);
      return;
    }
    this.load(r, word, sp);
    if (l.t !== 'var') {
      a.emit(BPF.ST, sp);
      this.maxStack = Math.max(this.maxStack, sp);
      this.load(l, word, sp + 1);
      a.emit(BPF.LDX_MEM, sp);
    } else {
      a.emit(BPF.TAX);
      this.load(l, word, sp);
    }
    a.emit(and ? BPF.ALU_AND_X : BPF.ALU_OR_X);
  }
}
