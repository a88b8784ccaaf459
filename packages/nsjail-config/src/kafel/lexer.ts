/**
 * kafel's tokens, matching its flex scanner rule for rule, quirks included:
 * - identifiers start with a letter (`_foo` is an unexpected `_`), keywords are case-sensitive
 *   and `define` is a keyword everywhere;
 * - numbers are decimal (with an optional leading `-`, wrapped modulo 2^64 as strtoull does),
 *   `0x` hex, `0b` binary, and `0`-prefixed octal where strtoull stops at the first 8 or 9
 *   (`09` is 0); a letter right after a number starts a new token (`1abc` is `1` `abc`);
 * - white space is space, tab and newline only (`\r` is an unexpected character);
 * - `#include` can never work as nsjail runs kafel (no search path), but `#include` followed
 *   by a newline or `;` is a no-op kafel accepts.
 * Lexing is lazy in kafel, so a lexical error only counts when the parser gets that far: the
 * scanner ends its token list with an `error` token instead of failing at once.
 */
import type { Span } from './ast';
import { KafelFailure, showChar } from './errors';

export const KEYWORDS = {
  SYSCALL: 'SYSCALL',
  ALLOW: 'ALLOW',
  LOG: 'LOG',
  USER_NOTIF: 'USER_NOTIF',
  ERRNO: 'ERRNO',
  KILL_PROCESS: 'KILL_PROCESS',
  KILL_THREAD: 'KILL',
  KILL: 'KILL',
  DENY: 'DENY',
  TRAP: 'TRAP',
  TRACE: 'TRACE',
  USE: 'USE',
  POLICY: 'POLICY',
  DEFAULT: 'DEFAULT',
  ON: 'ON',
  define: 'DEFINE',
} as const;

type Keyword = (typeof KEYWORDS)[keyof typeof KEYWORDS];
const PUNCT = ['==', '!=', '<=', '>=', '||', '&&', '<', '>', '|', '&'] as const;
const SINGLE = ['[', ']', '(', ')', '{', '}', ',', '!', '#'] as const;
export type Punct = (typeof PUNCT)[number] | (typeof SINGLE)[number];
export type TokenKind = 'IDENTIFIER' | 'NUMBER' | Keyword | Punct | 'EOF' | 'error';

export interface Token extends Span {
  readonly kind: TokenKind;
  readonly text: string;
  /** NUMBER only: the value modulo 2^64. */
  readonly value?: bigint;
  /** `error` only: the lexical error kafel would report on reaching this point. */
  readonly failure?: KafelFailure;
}

const U64 = 1n << 64n;
const IDENT = /[A-Za-z][A-Za-z0-9_]*/y;
const NUMBER = /0x[0-9a-fA-F]+|0b[01]+|0[0-9]+|0|-?[1-9][0-9]*/y;

function numberValue(text: string, span: Span): bigint {
  let v: bigint;
  if (text.startsWith('0x') || text.startsWith('0b')) v = BigInt(text);
  else if (/^0[0-9]/.test(text)) v = BigInt(`0o${/^0([0-7]*)/.exec(text)![1] || '0'}`);
  else v = BigInt(text);
  // strtoull fails (ERANGE) only when the magnitude does not fit; a negative that fits wraps.
  if (v >= U64 || v <= -U64)
    throw new KafelFailure(
      'E_KAFEL_NUMBER',
      `number \`${text}' out of range`,
      span,
      'kafel numbers are unsigned 64-bit (at most 18446744073709551615 or 0xffffffffffffffff)',
    );
  return BigInt.asUintN(64, v);
}

function charHint(src: string, i: number): string | undefined {
  const c = src[i];
  if (c === '\r') return 'kafel does not accept \\r: save the policy with Unix line endings';
  if (c === '_') {
    const word = /^[A-Za-z][A-Za-z0-9_]*/.exec(src.slice(i + 1, i + 65))?.[0];
    return `kafel identifiers start with a letter${word ? ` (for \`_${word}\` try \`${word}\`)` : ''}`;
  }
  if (c === '=') return 'compare with `==`';
  if (c === ';') return 'kafel has no `;`: separate statements with commas or white space';
  if (c === '"' || c === "'") return 'kafel has no strings';
  if (c === '-')
    return 'a `-` belongs to a decimal number and must touch it: `-1` (`-0` and `- 1` are not numbers)';
  if (c === '/') return 'comments are `// ...` and `/* ... */`';
  if (c === '@' || c === '$') return 'kafel identifiers are letters, digits and `_`';
  if (c === '~' || c === '^' || c === '+' || c === '*' || c === '%')
    return 'kafel has no arithmetic: only `&` and `|` on values';
  return undefined;
}

function charFailure(src: string, i: number): KafelFailure {
  const cp = src.codePointAt(i) ?? 0;
  const c = String.fromCodePoint(cp);
  return new KafelFailure(
    'E_KAFEL_CHAR',
    `unexpected char \`${showChar(c)}'`,
    { offset: i, length: c.length },
    charHint(src, i),
  );
}

/** Skips a block comment opened at `start`; returns the offset after it, or a failure. */
function skipComment(src: string, start: number): number | KafelFailure {
  let i = start + 2;
  // kafel's scanner eats a `*` together with whatever follows it, so in `**/` the second star
  // goes with the first and the `/` no longer closes: the comment runs on to the next `*/`,
  // silently swallowing the rules in between. nsjail accepts that; we refuse it.
  let trap = -1;
  while (i < src.length) {
    if (src.charCodeAt(i) !== 0x2a /* * */) {
      i++;
      continue;
    }
    if (i + 1 >= src.length) {
      // kafel's scanner has no rule for a lone `*` at the very end of a comment
      const f = charFailure(src, i);
      return new KafelFailure(
        f.code,
        f.message,
        f.span,
        'the comment is not closed: end it with `*/`',
      );
    }
    if (src.charCodeAt(i + 1) === 0x2f /* / */) {
      if (trap < 0) return i + 2;
      return new KafelFailure(
        'E_KAFEL_COMMENT',
        'kafel does not end a comment at `**/`: this one runs on to the next `*/`',
        { offset: trap, length: 3 },
        `kafel would ignore everything up to line ${lineOf(src, i)}; close comments with a single \`*/\``,
      );
    }
    if (trap < 0 && src.charCodeAt(i + 1) === 0x2a && src.charCodeAt(i + 2) === 0x2f) trap = i;
    i += 2;
  }
  return new KafelFailure(
    'E_KAFEL_COMMENT',
    'unterminated comment',
    { offset: start, length: 2 },
    trap >= 0
      ? 'kafel does not end a comment at `**/` (each `*` takes the next character along): close it with a single `*/`'
      : 'close it with `*/`',
  );
}

function lineOf(src: string, offset: number): number {
  let n = 1;
  for (let i = src.indexOf('\n'); i >= 0 && i < offset; i = src.indexOf('\n', i + 1)) n++;
  return n;
}

/** Handles `#include` at `start`; returns the offset to resume at, or a failure. */
function skipInclude(src: string, start: number): number | KafelFailure {
  let i = start + '#include'.length;
  let whitespace = false;
  const noPath =
    'nsjail sets no kafel include path, so #include cannot find any file: paste the included policy in place';
  for (;;) {
    if (i >= src.length)
      return new KafelFailure(
        'E_KAFEL_INCLUDE',
        'unterminated include statement',
        { offset: start, length: 8 },
        noPath,
      );
    const c = src[i]!;
    if (c === ' ' || c === '\t') {
      whitespace = true;
      i++;
    } else if (c === '\n' || c === ';') {
      return i + 1;
    } else if (c === '"' && src.indexOf('"', i + 1) > i + 1) {
      const end = src.indexOf('"', i + 1);
      const span = { offset: i, length: end + 1 - i };
      if (!whitespace)
        return new KafelFailure(
          'E_KAFEL_INCLUDE',
          'unexpected filename',
          span,
          'put a space between #include and the file name',
        );
      return new KafelFailure(
        'E_KAFEL_INCLUDE',
        `could not include file \`${src.slice(i + 1, end)}'`,
        span,
        noPath,
      );
    } else {
      return charFailure(src, i);
    }
  }
}

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  const error = (failure: KafelFailure): Token[] => {
    out.push({ kind: 'error', text: '', ...failure.span, failure });
    return out;
  };
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      const nl = src.indexOf('\n', i);
      i = nl < 0 ? src.length : nl;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const next = skipComment(src, i);
      if (typeof next !== 'number') return error(next);
      i = next;
      continue;
    }
    if (c === '\0')
      return error(
        new KafelFailure(
          'E_KAFEL_NUL',
          'NUL character in the policy',
          { offset: i, length: 1 },
          'kafel reads the policy as a C string and would silently ignore everything after it',
        ),
      );
    if (src.startsWith('#include', i)) {
      const next = skipInclude(src, i);
      if (typeof next !== 'number') return error(next);
      i = next;
      continue;
    }
    IDENT.lastIndex = i;
    const id = IDENT.exec(src)?.[0];
    if (id !== undefined) {
      const kw = Object.hasOwn(KEYWORDS, id) ? KEYWORDS[id as keyof typeof KEYWORDS] : undefined;
      out.push({ kind: kw ?? 'IDENTIFIER', text: id, offset: i, length: id.length });
      i += id.length;
      continue;
    }
    NUMBER.lastIndex = i;
    const num = NUMBER.exec(src)?.[0];
    if (num !== undefined) {
      const span = { offset: i, length: num.length };
      try {
        out.push({ kind: 'NUMBER', text: num, ...span, value: numberValue(num, span) });
      } catch (e) {
        return error(e as KafelFailure);
      }
      i += num.length;
      continue;
    }
    const op = PUNCT.find((p) => src.startsWith(p, i)) ?? SINGLE.find((p) => p === (c as Punct));
    if (op !== undefined) {
      out.push({ kind: op, text: op, offset: i, length: op.length });
      i += op.length;
      continue;
    }
    return error(charFailure(src, i));
  }
  out.push({ kind: 'EOF', text: '', offset: src.length, length: 0 });
  return out;
}
