/**
 * kafel's tokens, with kafel's quirks kept: identifiers cannot start with `_`, a leading `-`
 * belongs to decimal numbers (and wraps modulo 2^64, as strtoull does), `\r` is not white
 * space, `define` is a keyword everywhere, and `#include` cannot resolve anything because
 * nsjail gives kafel no include path.
 */

export type KTokType = 'num' | 'ident' | 'kw' | 'op' | 'eof';

export interface KToken {
  readonly type: KTokType;
  readonly text: string;
  readonly offset: number;
  readonly value?: bigint;
}

export class KafelLexError extends Error {
  constructor(
    message: string,
    readonly offset: number,
    readonly length: number,
    readonly code: 'E_KAFEL_SYNTAX' | 'E_KAFEL_RANGE' | 'E_KAFEL_INCLUDE' = 'E_KAFEL_SYNTAX',
    readonly hint?: string,
  ) {
    super(message);
  }
}

export const KEYWORDS = new Set([
  'SYSCALL',
  'ALLOW',
  'LOG',
  'USER_NOTIF',
  'ERRNO',
  'KILL_PROCESS',
  'KILL_THREAD',
  'KILL',
  'DENY',
  'TRAP',
  'TRACE',
  'USE',
  'POLICY',
  'DEFAULT',
  'ON',
  'define',
]);

const OPS = [
  '==',
  '!=',
  '<=',
  '>=',
  '||',
  '&&',
  '<',
  '>',
  '|',
  '&',
  '[',
  ']',
  '(',
  ')',
  '{',
  '}',
  ',',
  '!',
  '#',
];
const U64 = 2n ** 64n;

function number(text: string, offset: number): KToken {
  let v: bigint;
  if (/^0x/.test(text)) v = BigInt(text);
  else if (/^0b/.test(text)) v = BigInt(text);
  else if (/^0[0-9]+$/.test(text)) {
    // strtoull(base 8) stops at the first 8 or 9; kafel's lexer still takes the whole run.
    const oct = /^0[0-7]*/.exec(text)![0];
    v = BigInt(`0o${oct.slice(1) || '0'}`);
  } else v = BigInt(text);
  if (v >= U64 || v <= -U64)
    throw new KafelLexError(
      `number \`${text}' out of range`,
      offset,
      text.length,
      'E_KAFEL_RANGE',
      'numbers are 64-bit',
    );
  return { type: 'num', text, offset, value: BigInt.asUintN(64, v) };
}

export function tokenize(src: string): KToken[] {
  const out: KToken[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      i++;
      continue;
    }
    if (src.startsWith('//', i)) {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      if (end < 0)
        throw new KafelLexError('unterminated comment', i, 2, 'E_KAFEL_SYNTAX', 'close it with */');
      i = end + 2;
      continue;
    }
    if (src.startsWith('#include', i)) {
      throw new KafelLexError(
        'could not include file: nsjail gives kafel no include search path',
        i,
        8,
        'E_KAFEL_INCLUDE',
        'paste the included policy into seccomp_string',
      );
    }
    const rest = src.slice(i, i + 64);
    const num = /^(0x[0-9a-fA-F]+|0b[01]+|0[0-9]+|0|-?[1-9][0-9]*)/.exec(src.slice(i, i + 200));
    if (num && (c !== '-' || /[1-9]/.test(src[i + 1] ?? ''))) {
      out.push(number(num[0], i));
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z][A-Za-z0-9_]*/.exec(rest.length < 64 ? rest : src.slice(i, i + 4096));
    if (id) {
      out.push({ type: KEYWORDS.has(id[0]) ? 'kw' : 'ident', text: id[0], offset: i });
      i += id[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (op) {
      out.push({ type: 'op', text: op, offset: i });
      i += op.length;
      continue;
    }
    const shown = c === '\r' ? '\\r' : c;
    throw new KafelLexError(
      `unexpected char \`${shown}'`,
      i,
      1,
      'E_KAFEL_SYNTAX',
      c === '\r'
        ? 'kafel does not accept Windows line endings'
        : c === '_'
          ? 'kafel identifiers start with a letter'
          : undefined,
    );
  }
  out.push({ type: 'eof', text: '', offset: src.length });
  return out;
}
