/**
 * A position in the token list, and syntax errors worded like kafel's (bison's "syntax error,
 * unexpected X, expecting Y"), with the offending token's text shown, which kafel leaves out.
 */
import type { KafelErrorCode, Span } from './ast';
import { fail } from './errors';
import type { Token, TokenKind } from './lexer';

export function describeToken(t: Token): string {
  switch (t.kind) {
    case 'EOF':
      return 'end of file';
    case 'IDENTIFIER':
      return `identifier \`${t.text}'`;
    case 'NUMBER':
      return `number \`${t.text}'`;
    default:
      return `\`${t.text}'`;
  }
}

/** `a`, `a or b`, `a, b or c`. */
export function orList(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

export class Cursor {
  private i = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  /** The next token; reaching a lexical error raises it, as kafel's lazy scanner would. */
  peek(): Token {
    const t = this.tokens[this.i]!;
    if (t.kind === 'error') throw t.failure!;
    return t;
  }

  /** The token after the next one, without raising lexical errors. */
  peek2(): Token | undefined {
    return this.tokens[this.i + 1];
  }

  at(...kinds: TokenKind[]): boolean {
    return kinds.includes(this.peek().kind);
  }

  next(): Token {
    const t = this.peek();
    if (t.kind !== 'EOF') this.i++;
    return t;
  }

  /** Where the previous token ended (the position an end-of-file error points at). */
  prevEnd(): number {
    const p = this.tokens[this.i - 1];
    return p ? p.offset + p.length : 0;
  }

  spanOf(t: Token): Span {
    return t.kind === 'EOF' ? { offset: this.prevEnd(), length: 0 } : t;
  }

  unexpected(
    expected: readonly string[],
    hint?: string,
    code: KafelErrorCode = 'E_KAFEL_SYNTAX',
  ): never {
    const t = this.peek();
    const want = expected.length > 0 ? `, expecting ${orList(expected)}` : '';
    return fail(code, `syntax error, unexpected ${describeToken(t)}${want}`, this.spanOf(t), hint);
  }

  expect(kind: TokenKind, expected: readonly string[] = [`\`${kind}'`], hint?: string): Token {
    if (!this.at(kind)) this.unexpected(expected, hint);
    return this.next();
  }

  /** The `POLICY name` defining `name` later in the source, if any (for "defined later" hints). */
  laterPolicy(name: string): Token | undefined {
    for (let j = this.i; j < this.tokens.length; j++) {
      const t = this.tokens[j]!;
      const n = this.tokens[j + 1];
      if (t.kind === 'POLICY' && n?.kind === 'IDENTIFIER' && n.text === name) return t;
    }
    return undefined;
  }
}
