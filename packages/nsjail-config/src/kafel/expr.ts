/**
 * kafel's argument expressions, by its grammar's precedence (loosest first):
 *   `,` (OR)  <  `||`  <  `&&`  <  `!` / comparison / `( condition )`  ;  values: `|` < `&` < operand.
 * Comparisons do not chain, `!` applies to a condition, and `&`/`|` only make values.
 *
 * A `(` is ambiguous: it opens a condition `(fd == 1)` or a value `(flags & 3) == 1`. kafel's
 * LALR parser decides at the token after the group, so we parse the group as "either" and let
 * what follows settle it — same language, same error positions as kafel.
 *
 * kafel caps the tree depth at 200 (leaves 0, each operator one more; parentheses add none) and
 * reports it at the left operand of the node that would exceed it. We mirror that, and also cap
 * parenthesis nesting (kafel's bison stack would give up somewhat later) to keep recursion safe.
 */
import type { BinaryExpr, CompareOp, Expr } from './ast';
import type { Cursor } from './cursor';
import { fail } from './errors';
import type { Token, TokenKind } from './lexer';

export const MAX_EXPRESSION_DEPTH = 200;
export const MAX_PAREN_NESTING = 1000;

const COMPARE: readonly TokenKind[] = ['==', '!=', '<', '<=', '>', '>='];
const OPERAND = ['a number', 'an argument name', "`('"];
const AFTER_CONDITION = ["`&&'", "`||'", "`,'"];

/** A parsed piece: the node, where its grammar symbol starts and ends (parentheses included), its depth. */
interface P {
  e: Expr;
  start: number;
  end: number;
  depth: number;
}
type Kind = 'cond' | 'value';

export class ExprParser {
  private open = 0;

  constructor(
    private readonly c: Cursor,
    private readonly constants: ReadonlyMap<string, bigint>,
    /** What may close the whole condition: `}` inside a syscall's braces. */
    private readonly closer: string,
  ) {}

  /** The condition inside a syscall's braces. */
  condition(): Expr {
    return this.orList(this.primaryCond()).e;
  }

  private bin(op: BinaryExpr['op'], l: P, r: P): P {
    if (l.depth >= MAX_EXPRESSION_DEPTH || r.depth >= MAX_EXPRESSION_DEPTH)
      fail(
        'E_KAFEL_DEPTH',
        `Max expression depth (${MAX_EXPRESSION_DEPTH}) exceeded`,
        { offset: l.start, length: r.end - l.start },
        'split the condition over several rules for the same system call (the first that matches wins)',
      );
    const e: Expr = {
      type: 'binary',
      op,
      left: l.e,
      right: r.e,
      offset: l.start,
      length: r.end - l.start,
    };
    return { e, start: l.start, end: r.end, depth: Math.max(l.depth, r.depth) + 1 };
  }

  /** `first` then `&& p`*, `|| ...`*, `, ...`*: kafel's and / or / comma levels. */
  private orList(first: P): P {
    let e = this.orLevel(first);
    while (this.c.at(',')) {
      this.c.next();
      e = this.bin('||', e, this.orLevel(this.primaryCond()));
    }
    return e;
  }

  private orLevel(first: P): P {
    let e = this.andLevel(first);
    while (this.c.at('||')) {
      this.c.next();
      e = this.bin('||', e, this.andLevel(this.primaryCond()));
    }
    return e;
  }

  private andLevel(first: P): P {
    let e = first;
    while (this.c.at('&&')) {
      this.c.next();
      e = this.bin('&&', e, this.primaryCond());
    }
    return e;
  }

  /** `!`* then a comparison or a parenthesised condition. */
  private primaryCond(): P {
    const nots: Token[] = [];
    while (this.c.at('!')) nots.push(this.c.next());
    let p: P;
    if (this.c.at('(')) {
      const [kind, g] = this.group();
      p = kind === 'cond' ? g : this.comparison(this.valueTail(g));
    } else {
      p = this.comparison(this.bitOr());
    }
    // kafel builds `!` bottom-up, so the innermost one past the limit is the one reported.
    for (let k = nots.length - 1; k >= 0; k--) {
      const bang = nots[k]!;
      if (p.depth >= MAX_EXPRESSION_DEPTH)
        fail('E_KAFEL_DEPTH', `Max expression depth (${MAX_EXPRESSION_DEPTH}) exceeded`, bang);
      const e: Expr = {
        type: 'not',
        operand: p.e,
        offset: bang.offset,
        length: p.end - bang.offset,
      };
      p = { e, start: bang.offset, end: p.end, depth: p.depth + 1 };
    }
    return p;
  }

  /** `( ... )` where the inside may be a condition or a value. */
  private group(): [Kind, P] {
    const lp = this.c.next();
    this.enter(lp);
    const [kind, p] = this.groupInside();
    const rp = this.c.expect(')', kind === 'cond' ? ["`)'", ...AFTER_CONDITION] : ["`)'"]);
    this.open--;
    return [kind, { ...p, start: lp.offset, end: rp.offset + 1 }];
  }

  private groupInside(): [Kind, P] {
    if (this.c.at('!')) return ['cond', this.orList(this.primaryCond())];
    let v: P;
    if (this.c.at('(')) {
      const [kind, inner] = this.group();
      if (kind === 'cond') return ['cond', this.orList(inner)];
      v = this.valueTail(inner);
    } else {
      v = this.bitOr();
    }
    if (this.c.at(')')) return ['value', v];
    return ['cond', this.orList(this.comparison(v, ["`)'", "`&'", "`|'"]))];
  }

  private enter(lp: Token): void {
    if (++this.open > MAX_PAREN_NESTING)
      fail(
        'E_KAFEL_DEPTH',
        `parentheses nested more than ${MAX_PAREN_NESTING} deep`,
        lp,
        'no real policy needs this; simplify the condition',
      );
  }

  private comparison(left: P, also: readonly string[] = ["`&'", "`|'"]): P {
    const t = this.c.peek();
    if (!COMPARE.includes(t.kind)) {
      this.c.unexpected(
        ['a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)', ...also],
        t.kind === this.closer || t.kind === ',' || t.kind === '&&' || t.kind === '||'
          ? 'a condition compares a value: write e.g. `fd == 1` (a bare argument is not true or false in kafel)'
          : undefined,
      );
    }
    this.c.next();
    return this.bin(t.kind as CompareOp, left, this.bitOr());
  }

  /** Continues a value that started with a parenthesised operand: `(a | b) & c | d`. */
  private valueTail(first: P): P {
    let e = first;
    while (this.c.at('&')) {
      this.c.next();
      e = this.bin('&', e, this.operand());
    }
    while (this.c.at('|')) {
      this.c.next();
      e = this.bin('|', e, this.bitAnd());
    }
    return e;
  }

  private bitOr(): P {
    let e = this.bitAnd();
    while (this.c.at('|')) {
      this.c.next();
      e = this.bin('|', e, this.bitAnd());
    }
    return e;
  }

  private bitAnd(): P {
    let e = this.operand();
    while (this.c.at('&')) {
      this.c.next();
      e = this.bin('&', e, this.operand());
    }
    return e;
  }

  private operand(): P {
    const t = this.c.peek();
    if (t.kind === 'NUMBER') {
      this.c.next();
      const e: Expr = { type: 'number', value: t.value!, offset: t.offset, length: t.length };
      return { e, start: t.offset, end: t.offset + t.length, depth: 0 };
    }
    if (t.kind === 'IDENTIFIER') {
      this.c.next();
      // kafel substitutes a #define as it reads it: defined later, the name stays an identifier.
      const value = this.constants.get(t.text);
      const span = { offset: t.offset, length: t.length };
      const e: Expr =
        value !== undefined
          ? { type: 'number', value, constant: t.text, ...span }
          : { type: 'ident', name: t.text, ...span };
      return { e, start: t.offset, end: t.offset + t.length, depth: 0 };
    }
    if (t.kind === '(') {
      const lp = this.c.next();
      this.enter(lp);
      const v = this.bitOr();
      const rp = this.c.expect(')', ["`)'", "`&'", "`|'"]);
      this.open--;
      return { ...v, start: lp.offset, end: rp.offset + 1 };
    }
    const hint =
      t.kind === '!'
        ? '`!` negates a condition, not a value: write `!(fd == 1)`'
        : t.kind === this.closer
          ? 'the condition ends too early'
          : undefined;
    return this.c.unexpected(OPERAND, hint);
  }
}
