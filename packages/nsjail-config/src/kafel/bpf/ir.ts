/**
 * Conditions as kafel compiles them: argument names resolved to (index, size) for one
 * architecture, then kafel's simplification — constant folding in 64 bits, `x & 0` / `x | ~0`
 * collapsed, `x op x` decided, true/false propagated. kafel looks at each node's operands in
 * its node-type order (so `1 | x` and `x | 1` simplify alike) but leaves the node's own operand
 * order alone; that order decides which side its code generator spills to scratch memory, and
 * kafel limits that memory, so we keep the shape exactly.
 */
import type { Expr } from '../ast';
import type { SyscallArg } from '../syscalls';

export type CmpOp = 'gt' | 'lt' | 'ge' | 'le' | 'eq' | 'ne';
export type IR =
  | { readonly t: 'num'; readonly v: bigint }
  | { readonly t: 'var'; readonly i: number; readonly size: number }
  | { readonly t: 'true' }
  | { readonly t: 'false' }
  | { readonly t: 'not'; readonly c: IR }
  | { readonly t: 'and' | 'or' | CmpOp | 'bor' | 'band'; readonly l: IR; readonly r: IR };
export type BinIR = Extract<IR, { l: IR }>;

/** kafel's expression type order (expression.h); simplify puts the higher one on the left. */
const RANK: Record<IR['t'], number> = {
  num: 0,
  var: 1,
  true: 3,
  false: 4,
  not: 5,
  and: 6,
  or: 7,
  gt: 8,
  lt: 9,
  ge: 10,
  le: 11,
  eq: 12,
  ne: 13,
  bor: 14,
  band: 15,
};
const MIRROR: Partial<Record<IR['t'], CmpOp>> = { gt: 'lt', lt: 'gt', ge: 'le', le: 'ge' };
const OPS: Record<string, BinIR['t']> = {
  '&&': 'and',
  '||': 'or',
  '>': 'gt',
  '<': 'lt',
  '>=': 'ge',
  '<=': 'le',
  '==': 'eq',
  '!=': 'ne',
  '|': 'bor',
  '&': 'band',
};
const U64 = (1n << 64n) - 1n;
const TRUE: IR = { t: 'true' };
const FALSE: IR = { t: 'false' };

/** AST → IR for one syscall's arguments; undefined when a name is not an argument. */
export function lower(e: Expr, args: readonly SyscallArg[]): IR | undefined {
  switch (e.type) {
    case 'number':
      return { t: 'num', v: BigInt.asUintN(64, e.value) };
    case 'ident': {
      const i = args.findIndex((a) => a.name === e.name);
      return i < 0 ? undefined : { t: 'var', i, size: args[i]!.size };
    }
    case 'not': {
      const c = lower(e.operand, args);
      return c && { t: 'not', c };
    }
    case 'binary': {
      const l = lower(e.left, args);
      const r = lower(e.right, args);
      return l && r && { t: OPS[e.op]!, l, r };
    }
  }
}

function compare(op: CmpOp, a: bigint, b: bigint): boolean {
  switch (op) {
    case 'eq':
      return a === b;
    case 'ne':
      return a !== b;
    case 'gt':
      return a > b;
    case 'lt':
      return a < b;
    case 'ge':
      return a >= b;
    case 'le':
      return a <= b;
  }
}

export function isCompare(t: IR['t']): t is CmpOp {
  return t === 'gt' || t === 'lt' || t === 'ge' || t === 'le' || t === 'eq' || t === 'ne';
}

/** kafel's expr_simplify. */
export function simplify(e: IR): IR {
  if (e.t === 'num' || e.t === 'var' || e.t === 'true' || e.t === 'false') return e;
  if (e.t === 'not') {
    const c = simplify(e.c);
    return c.t === 'true' ? FALSE : c.t === 'false' ? TRUE : { t: 'not', c };
  }
  const sl = simplify(e.l);
  const sr = simplify(e.r);
  let l = sl;
  let r = sr;
  let t = e.t;
  if (l.t === 'num' && r.t === 'num') {
    if (t === 'band') return { t: 'num', v: l.v & r.v };
    if (t === 'bor') return { t: 'num', v: l.v | r.v };
    if (isCompare(t)) return compare(t, l.v, r.v) ? TRUE : FALSE;
  }
  if (RANK[l.t] < RANK[r.t]) {
    [l, r] = [r, l];
    t = MIRROR[t] ?? t;
  }
  switch (t) {
    case 'and':
    case 'or': {
      const dominant = t === 'or' ? 'true' : 'false';
      const recessive = t === 'or' ? 'false' : 'true';
      if (l.t === dominant || r.t === dominant) return dominant === 'true' ? TRUE : FALSE;
      if (r.t === recessive) return l;
      break;
    }
    case 'gt':
    case 'lt':
    case 'ne':
    case 'ge':
    case 'le':
    case 'eq':
      if (l.t === 'var' && r.t === 'var' && l.i === r.i)
        return t === 'ge' || t === 'le' || t === 'eq' ? TRUE : FALSE;
      break;
    case 'bor':
    case 'band': {
      const clobber = t === 'bor' ? U64 : 0n;
      const identity = t === 'bor' ? 0n : U64;
      if (r.t === 'num' && r.v === clobber) return { t: 'num', v: clobber };
      if (r.t === 'num' && r.v === identity) return l;
      break;
    }
  }
  // kafel orders the operands only to look at them: the node itself keeps its shape.
  return { t: e.t, l: sl, r: sr } as IR;
}

/** kafel's is_64bit: a constant above 2^32-1 or an 8-byte argument makes a comparison 64-bit. */
export function is64(e: IR): boolean {
  if (e.t === 'num') return e.v > 0xffffffffn;
  if (e.t === 'var') return e.size === 8;
  if (e.t === 'bor' || e.t === 'band') return is64(e.l) || is64(e.r);
  return false;
}

export type Word = 'hi' | 'lo';

/** kafel's per-word constant cache: the 32-bit value of `e` in `word` when it is fixed. */
export function constWord(e: IR, word: Word): number | undefined {
  if (e.t === 'num') return Number(word === 'hi' ? (e.v >> 32n) & 0xffffffffn : e.v & 0xffffffffn);
  if (e.t !== 'bor' && e.t !== 'band') return undefined;
  const l = constWord(e.l, word);
  const r = constWord(e.r, word);
  if (l !== undefined && r !== undefined) return (e.t === 'bor' ? l | r : l & r) >>> 0;
  const c = l ?? r;
  const clobber = e.t === 'bor' ? 0xffffffff : 0;
  return c === clobber ? clobber : undefined;
}
