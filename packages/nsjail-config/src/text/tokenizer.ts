/**
 * Tokenizer for protobuf text format as protobuf's C++ TextFormat reads it (nsjail uses
 * TextFormat::ParseFromString): `#` comments only, C-style escapes, decimal/hex/octal integers,
 * and the same refusals (leading-zero decimals, numbers glued to identifiers, strings across
 * lines, non-ASCII outside strings).
 */
import { PolicyError, type SourcePosition } from '../errors';

export type TokenType = 'ident' | 'int' | 'float' | 'string' | 'symbol' | 'eof';

export interface Token {
  readonly type: TokenType;
  /** Source text of the token. */
  readonly text: string;
  readonly pos: SourcePosition;
  readonly end: number;
}

export interface Comment {
  readonly text: string;
  readonly pos: SourcePosition;
  /** Whether code precedes the comment on its line. */
  readonly trailing: boolean;
}

export interface TokenizeOptions {
  file?: string | undefined;
  /** Keep comments (the formatter needs them; the parser does not). */
  comments?: Comment[];
}

const isDigit = (c: string) => c >= '0' && c <= '9';
const isHex = (c: string) => /[0-9a-fA-F]/.test(c);
const isIdentStart = (c: string) => /[A-Za-z_]/.test(c);
const isIdentPart = (c: string) => /[A-Za-z0-9_]/.test(c);
const WHITESPACE = ' \t\n\r\v\f';

export class Tokenizer {
  private i = 0;
  private line = 1;
  private lineStart = 0;
  private lastCodeLine = 0;
  private current: Token;

  constructor(
    private readonly src: string,
    private readonly opts: TokenizeOptions = {},
  ) {
    this.current = this.scan();
  }

  get token(): Token {
    return this.current;
  }

  next(): Token {
    const t = this.current;
    this.current = this.scan();
    return t;
  }

  error(message: string, pos: SourcePosition, hint?: string): PolicyError {
    return new PolicyError(message, {
      code: 'E_SYNTAX',
      file: this.opts.file,
      position: pos,
      hint,
    });
  }

  private here(): SourcePosition {
    return { line: this.line, column: this.i - this.lineStart + 1, offset: this.i };
  }

  private newline(): void {
    this.line++;
    this.lineStart = this.i;
  }

  private skipSpaceAndComments(): void {
    const src = this.src;
    while (this.i < src.length) {
      const c = src[this.i]!;
      if (c === '\n') {
        this.i++;
        this.newline();
      } else if (WHITESPACE.includes(c)) {
        this.i++;
      } else if (c === '#') {
        const pos = this.here();
        let j = this.i;
        while (j < src.length && src[j] !== '\n') j++;
        this.opts.comments?.push({
          text: src.slice(this.i, j).replace(/\s+$/, ''),
          pos,
          trailing: this.lastCodeLine === this.line,
        });
        this.i = j;
      } else {
        return;
      }
    }
  }

  private scan(): Token {
    this.skipSpaceAndComments();
    const src = this.src;
    const pos = this.here();
    if (this.i >= src.length) return { type: 'eof', text: '', pos, end: this.i };
    this.lastCodeLine = this.line;
    const c = src[this.i]!;
    const start = this.i;
    const make = (type: TokenType): Token => ({
      type,
      text: src.slice(start, this.i),
      pos,
      end: this.i,
    });

    if (isIdentStart(c)) {
      while (this.i < src.length && isIdentPart(src[this.i]!)) this.i++;
      return make('ident');
    }
    if (isDigit(c) || (c === '.' && isDigit(src[this.i + 1] ?? ''))) {
      return make(this.scanNumber(pos));
    }
    if (c === '"' || c === "'") {
      this.scanString(c, pos);
      return make('string');
    }
    const code = c.charCodeAt(0);
    if (code < 0x20 || code === 0x7f) {
      throw this.error('Invalid control characters encountered in text.', pos);
    }
    if (code > 0x7f) {
      throw this.error(
        `Interpreting non ascii codepoint ${code}.`,
        pos,
        'non-ASCII characters are only allowed inside quoted strings',
      );
    }
    this.i++;
    return make('symbol');
  }

  private scanNumber(pos: SourcePosition): TokenType {
    const src = this.src;
    let type: TokenType = 'int';
    if (src[this.i] === '0' && (src[this.i + 1] === 'x' || src[this.i + 1] === 'X')) {
      this.i += 2;
      if (!isHex(src[this.i] ?? '')) {
        throw this.error('"0x" must be followed by hex digits.', pos);
      }
      while (isHex(src[this.i] ?? '')) this.i++;
    } else if (src[this.i] === '0' && isDigit(src[this.i + 1] ?? '')) {
      this.i++;
      while (src[this.i] !== undefined && src[this.i]! >= '0' && src[this.i]! <= '7') this.i++;
      if (isDigit(src[this.i] ?? '')) {
        throw this.error(
          'Numbers starting with leading zero must be in octal.',
          pos,
          'drop the leading zero for a decimal number',
        );
      }
    } else {
      while (isDigit(src[this.i] ?? '')) this.i++;
      if (src[this.i] === '.') {
        type = 'float';
        this.i++;
        while (isDigit(src[this.i] ?? '')) this.i++;
      }
      if (src[this.i] === 'e' || src[this.i] === 'E') {
        type = 'float';
        this.i++;
        if (src[this.i] === '+' || src[this.i] === '-') this.i++;
        if (!isDigit(src[this.i] ?? '')) throw this.error('"e" must be followed by exponent.', pos);
        while (isDigit(src[this.i] ?? '')) this.i++;
      }
      if (type === 'float' && (src[this.i] === 'f' || src[this.i] === 'F')) this.i++;
    }
    if (isIdentStart(src[this.i] ?? '') || src[this.i] === '.') {
      throw this.error('Need space between number and identifier.', this.here());
    }
    return type;
  }

  private scanString(quote: string, pos: SourcePosition): void {
    const src = this.src;
    this.i++;
    for (;;) {
      const c = src[this.i];
      if (c === undefined)
        throw this.error('Unexpected end of string.', pos, `close it with ${quote}`);
      if (c === '\n') {
        throw this.error(
          'String literals cannot cross line boundaries.',
          pos,
          'use "\\n" or split it into adjacent strings',
        );
      }
      if (c === quote) {
        this.i++;
        return;
      }
      if (c === '\\') {
        // Escapes are validated here (so errors point at them) and decoded by decodeString.
        const escPos = this.here();
        const e = src[this.i + 1] ?? '';
        if ('abfnrtv\\?\'"'.includes(e) && e !== '') this.i += 2;
        else if (e >= '0' && e <= '7') this.i += 2;
        else if (e === 'x' || e === 'X') {
          if (!isHex(src[this.i + 2] ?? ''))
            throw this.error('Expected hex digits for escape sequence.', escPos);
          this.i += 3;
        } else if (e === 'u' || e === 'U') {
          const n = e === 'u' ? 4 : 8;
          const digits = src.slice(this.i + 2, this.i + 2 + n);
          if (digits.length !== n || !/^[0-9a-fA-F]+$/.test(digits)) {
            throw this.error(`Expected ${n} hex digits for \\${e} escape sequence.`, escPos);
          }
          if (e === 'U' && Number.parseInt(digits, 16) > 0x10ffff) {
            throw this.error(
              'Expected eight hex digits up to 10ffff for \\U escape sequence',
              escPos,
            );
          }
          this.i += 2 + n;
        } else {
          throw this.error(
            'Invalid escape sequence in string literal.',
            escPos,
            'escape a backslash as "\\\\"',
          );
        }
        continue;
      }
      this.i++;
    }
  }
}

/** One decoded string literal: its bytes and, per byte, the source offset it came from. */
export interface DecodedString {
  bytes: number[];
  offsets: number[];
}

const SIMPLE_ESCAPES: Record<string, number> = {
  a: 7,
  b: 8,
  f: 12,
  n: 10,
  r: 13,
  t: 9,
  v: 11,
  '\\': 92,
  '?': 63,
  "'": 39,
  '"': 34,
};

/** UTF-8 of one code point (a lone surrogate as U+FFFD, as TextEncoder writes it). */
function pushUtf8(out: DecodedString, cp: number, offset: number): void {
  if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
  const bytes =
    cp < 0x80
      ? [cp]
      : cp < 0x800
        ? [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)]
        : cp < 0x10000
          ? [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)]
          : [
              0xf0 | (cp >> 18),
              0x80 | ((cp >> 12) & 0x3f),
              0x80 | ((cp >> 6) & 0x3f),
              0x80 | (cp & 0x3f),
            ];
  for (const b of bytes) {
    out.bytes.push(b);
    out.offsets.push(offset);
  }
}

/**
 * Appends the bytes of a string token (quotes included) to `out`. With `latin1`, each source
 * character is one byte of the original file (parsePolicyFile reads files that way, so bytes
 * that are not UTF-8 survive exactly as nsjail would see them).
 */
export function decodeString(token: Token, latin1: boolean, out: DecodedString): void {
  const s = token.text;
  const base = token.pos.offset;
  const raw = (cp: number, off: number) => {
    if (latin1 && cp <= 0xff) {
      out.bytes.push(cp);
      out.offsets.push(off);
    } else pushUtf8(out, cp, off);
  };
  let i = 1;
  const end = s.length - 1;
  while (i < end) {
    const c = s[i]!;
    const off = base + i;
    if (c !== '\\') {
      const cp = s.codePointAt(i)!;
      raw(cp, off);
      i += cp > 0xffff ? 2 : 1;
      continue;
    }
    const e = s[i + 1]!;
    if (Object.hasOwn(SIMPLE_ESCAPES, e)) {
      out.bytes.push(SIMPLE_ESCAPES[e]!);
      out.offsets.push(off);
      i += 2;
    } else if (e >= '0' && e <= '7') {
      let j = i + 1;
      let v = 0;
      while (j < i + 4 && j < end && s[j]! >= '0' && s[j]! <= '7') v = v * 8 + Number(s[j++]);
      out.bytes.push(v & 0xff);
      out.offsets.push(off);
      i = j;
    } else if (e === 'x' || e === 'X') {
      let j = i + 2;
      let v = 0;
      while (j < i + 4 && j < end && isHex(s[j]!)) v = v * 16 + Number.parseInt(s[j++]!, 16);
      out.bytes.push(v);
      out.offsets.push(off);
      i = j;
    } else {
      const n = e === 'u' ? 4 : 8;
      let cp = Number.parseInt(s.slice(i + 2, i + 2 + n), 16);
      // A lone surrogate cannot be UTF-8 encoded; protobuf writes U+FFFD's cousin, we do too.
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
      pushUtf8(out, cp, off);
      i += 2 + n;
    }
  }
}
