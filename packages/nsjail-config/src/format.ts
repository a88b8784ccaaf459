/**
 * Formatter for humans: keeps the author's field order, comments, literal spellings (hex
 * stays hex, escapes stay as written) and single blank lines between groups; normalizes
 * indentation, `{}` for `<>`, one field a line, and lists of messages into repeated blocks.
 * The policy must parse first; formatting is idempotent.
 */
import { EMPTY_POLICY_TEXT } from './emit';
import { formatJson } from './json/format';
import { readJson } from './json/parser';
import { type ParseOptions, parsePolicy } from './parse';
import { type Comment, type Token, Tokenizer } from './text/tokenizer';

const INDENT = '  ';

/** All tokens up front, so a block can look ahead to its end (one-line blocks stay one line). */
class TokenList {
  private readonly toks: Token[] = [];
  private i = 0;

  constructor(src: Tokenizer) {
    for (;;) {
      const t = src.next();
      this.toks.push(t);
      if (t.type === 'eof') break;
    }
  }

  get token(): Token {
    return this.toks[this.i]!;
  }

  next(): Token {
    const t = this.toks[this.i]!;
    if (t.type !== 'eof') this.i++;
    return t;
  }

  /** Tokens from here up to and including the matching close of the block opened here. */
  block(): Token[] {
    let depth = 0;
    for (let j = this.i; j < this.toks.length; j++) {
      const t = this.toks[j]!;
      if (t.type === 'symbol' && (t.text === '{' || t.text === '<')) depth++;
      if (t.type === 'symbol' && (t.text === '}' || t.text === '>') && --depth === 0)
        return this.toks.slice(this.i, j + 1);
      if (t.type === 'eof') break;
    }
    return [];
  }
}

const ONE_LINE_MAX = 100;

class Printer {
  private readonly tok: TokenList;
  private readonly comments: Comment[] = [];
  private nextComment = 0;
  private readonly lines: string[] = [];
  private lastLine = 0;
  private depth = 0;

  constructor(src: string, file: string | undefined) {
    this.tok = new TokenList(new Tokenizer(src, { file, comments: this.comments }));
  }

  /** Emits comments that come before `offset`: own-line ones as lines, trailing ones appended. */
  private flushComments(offset: number): void {
    while (
      this.nextComment < this.comments.length &&
      this.comments[this.nextComment]!.pos.offset < offset
    ) {
      const c = this.comments[this.nextComment++]!;
      if (c.trailing && this.lines.length > 0 && c.pos.line === this.lastLine) {
        this.lines[this.lines.length - 1] += ` ${c.text}`;
      } else {
        this.blankBefore(c.pos.line);
        this.lines.push(INDENT.repeat(this.depth) + c.text);
      }
      this.lastLine = c.pos.line;
    }
  }

  private blankBefore(line: number): void {
    if (
      this.lines.length > 0 &&
      line - this.lastLine >= 2 &&
      this.lines[this.lines.length - 1] !== ''
    )
      this.lines.push('');
  }

  private startLine(t: Token, text: string): void {
    this.flushComments(t.pos.offset);
    this.blankBefore(t.pos.line);
    this.lines.push(INDENT.repeat(this.depth) + text);
    this.lastLine = t.pos.line;
  }

  private append(text: string, t: Token): void {
    this.lines[this.lines.length - 1] += text;
    this.lastLine = t.pos.line;
  }

  private is(text: string): boolean {
    const t = this.tok.token;
    return t.type !== 'string' && t.type !== 'eof' && t.text === text;
  }

  print(): string {
    while (this.tok.token.type !== 'eof') this.field();
    this.flushComments(Number.POSITIVE_INFINITY);
    return this.lines.length ? `${this.lines.join('\n')}\n` : '';
  }

  private field(): void {
    const name = this.tok.next();
    if (this.is(':')) this.tok.next();
    if (this.is('[')) {
      this.tok.next();
      if (this.is('{') || this.is('<')) {
        // A list of messages reads better as repeated blocks; the meaning is the same.
        while (!this.is(']')) {
          this.startLine(name, `${name.text} `);
          this.block(name);
          if (this.is(',')) this.tok.next();
        }
        this.tok.next();
      } else {
        this.startLine(name, `${name.text}: [`);
        let first = true;
        while (!this.is(']')) {
          if (this.is(',')) {
            this.tok.next();
            continue;
          }
          const v = this.scalar();
          this.append(`${first ? '' : ', '}${v.text}`, v.last);
          first = false;
        }
        this.append(']', this.tok.next());
      }
    } else if (this.is('{') || this.is('<')) {
      this.startLine(name, `${name.text} `);
      this.block(name);
    } else {
      this.startLine(name, `${name.text}: `);
      const v = this.scalar();
      this.append(v.text, v.last);
    }
    if (this.is(';') || this.is(',')) this.tok.next();
  }

  private block(owner: Token): void {
    const span = this.tok.block();
    const first = span[0];
    const last = span[span.length - 1];
    // A block the author kept on one line stays on one line when it is flat, has no comments
    // and fits: policies read best with their mount tables as one line per mount.
    if (
      first &&
      last &&
      first.pos.line === last.pos.line &&
      !span.slice(1, -1).some((t) => t.type === 'symbol' && '{<'.includes(t.text)) &&
      !this.commentBefore(last.pos.offset)
    ) {
      const inner: string[] = [];
      this.tok.next();
      while (!(this.is('}') || this.is('>'))) {
        const name = this.tok.next();
        if (this.is(':')) this.tok.next();
        const v = this.scalarInline();
        inner.push(`${name.text}: ${v}`);
        if (this.is(';') || this.is(',')) this.tok.next();
      }
      const end = this.tok.next();
      const text = inner.length ? `{ ${inner.join(' ')} }` : '{}';
      if (this.lines[this.lines.length - 1]!.length + text.length <= ONE_LINE_MAX) {
        this.append(text, end);
        return;
      }
      // Too long after all: fall back to one field a line.
      this.append('{', first);
      for (const f of inner) this.lines.push(`${INDENT.repeat(this.depth + 1)}${f}`);
      this.lines.push(`${INDENT.repeat(this.depth)}}`);
      this.lastLine = end.pos.line;
      return;
    }
    const open = this.tok.next();
    const close = open.text === '<' ? '>' : '}';
    if (this.is(close) && !this.commentBefore(this.tok.token.pos.offset)) {
      this.append('{}', this.tok.next());
      return;
    }
    this.append('{', open);
    this.depth++;
    while (!this.is(close)) this.field();
    const end = this.tok.next();
    this.flushComments(end.pos.offset);
    this.depth--;
    this.lines.push(`${INDENT.repeat(this.depth)}}`);
    this.lastLine = end.pos.line;
    void owner;
  }

  private commentBefore(offset: number): boolean {
    const c = this.comments[this.nextComment];
    return c !== undefined && c.pos.offset < offset;
  }

  /** A scalar on one line (adjacent strings joined by a space, `[a, b]` lists kept). */
  private scalarInline(): string {
    if (this.is('[')) {
      this.tok.next();
      const items: string[] = [];
      while (!this.is(']')) {
        if (this.is(',')) {
          this.tok.next();
          continue;
        }
        items.push(this.scalarInline());
      }
      this.tok.next();
      return `[${items.join(', ')}]`;
    }
    const t = this.tok.next();
    if (t.type === 'symbol' && t.text === '-') return `-${this.tok.next().text}`;
    let text = t.text;
    while (t.type === 'string' && this.tok.token.type === 'string')
      text += ` ${this.tok.next().text}`;
    return text;
  }

  /** A scalar value; adjacent string literals go on continuation lines, as written. */
  private scalar(): { text: string; last: Token } {
    let t = this.tok.next();
    if (t.type === 'symbol' && t.text === '-') {
      const n = this.tok.next();
      return { text: `-${n.text}`, last: n };
    }
    if (t.type !== 'string') return { text: t.text, last: t };
    let text = t.text;
    while (this.tok.token.type === 'string') {
      const next = this.tok.next();
      if (next.pos.line !== t.pos.line || this.commentBefore(next.pos.offset)) {
        this.append(text, t);
        this.flushComments(next.pos.offset);
        this.lines.push(INDENT.repeat(this.depth + 2) + next.text);
        this.lastLine = next.pos.line;
        text = '';
        // Following literals continue on their own lines too.
        t = next;
        continue;
      }
      text += ` ${next.text}`;
      t = next;
    }
    return { text, last: t };
  }
}

/**
 * Formats a policy: protobuf text as described above; ProtoJSON re-indented by JSON rules,
 * every value written as in the source (64-bit integers are never rounded). A policy of only
 * white space becomes EMPTY_POLICY_TEXT: the empty file it would otherwise become is refused
 * by nsjail and by ktl. Given bytes (a file as read), returns the bytes to write: text
 * policies byte for byte as nsjail reads them, ProtoJSON as UTF-8 (which it must be).
 */
export function formatPolicy(text: string, opts?: ParseOptions): string;
export function formatPolicy(bytes: Uint8Array, opts?: ParseOptions): Uint8Array;
export function formatPolicy(
  input: string | Uint8Array,
  opts: ParseOptions = {},
): string | Uint8Array {
  const { source } = parsePolicy(input, opts);
  const out =
    source.format === 'json'
      ? formatJson(readJson(source.text, opts.filename))
      : new Printer(source.text, opts.filename).print() || EMPTY_POLICY_TEXT;
  if (typeof input === 'string') return out;
  return Buffer.from(out, source.format === 'json' ? 'utf8' : 'latin1');
}
