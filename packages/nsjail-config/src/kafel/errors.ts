/** How the front end stops at the first error (kafel reports one), and where that error is. */
import type { KafelError, KafelErrorCode, Span } from './ast';

/** Thrown inside the lexer/parser/checker only; parseKafel turns it into a KafelError. */
export class KafelFailure extends Error {
  constructor(
    readonly code: KafelErrorCode,
    message: string,
    readonly span: Span,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'KafelFailure';
  }
}

export function fail(code: KafelErrorCode, message: string, span: Span, hint?: string): never {
  throw new KafelFailure(code, message, span, hint);
}

/** 1-based line and column of `offset`; columns count UTF-16 units, tabs as one (as kafel does). */
export function lineColumn(source: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  const end = Math.min(Math.max(offset, 0), source.length);
  for (let i = source.indexOf('\n'); i >= 0 && i < end; i = source.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: end - start + 1 };
}

export function toKafelError(source: string, f: KafelFailure): KafelError {
  const offset = Math.min(Math.max(f.span.offset, 0), source.length);
  const length = Math.max(0, Math.min(f.span.length, source.length - offset));
  return {
    code: f.code,
    message: f.message,
    ...(f.hint !== undefined ? { hint: f.hint } : {}),
    offset,
    length,
    ...lineColumn(source, offset),
  };
}

/** A character as an error message shows it: control characters escaped, the rest as is. */
export function showChar(c: string): string {
  const escapes: Record<string, string> = {
    '\r': '\\r',
    '\t': '\\t',
    '\f': '\\f',
    '\v': '\\v',
    '\0': '\\0',
  };
  const known = escapes[c];
  if (known) return known;
  const code = c.codePointAt(0) ?? 0;
  if (code < 0x20 || code === 0x7f) return `\\x${code.toString(16).padStart(2, '0')}`;
  if (code >= 0x80 && code < 0xa0) return `\\u${code.toString(16).padStart(4, '0')}`;
  return c;
}
