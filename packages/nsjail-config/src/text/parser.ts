/**
 * protobuf text format -> policy object, driven by the schema descriptors. Mirrors what
 * protobuf's TextFormat::Parser accepts with nsjail's settings (no unknown fields, no partial
 * messages, no field numbers) and reports the same failures, with positions and hints.
 */
import { PolicyError, type SourcePosition } from '../errors';
import { type FieldDescriptor, type MessageDescriptor, SCALAR_RANGES } from '../schema/builders';
import { type FieldSpan, joinPath } from '../source';
import { didYouMean } from '../suggest';
import { type DecodedString, decodeString, type Token, Tokenizer } from './tokenizer';

export interface TextParseResult {
  value: Record<string, unknown>;
  fields: Map<string, FieldSpan>;
  stringOffsets: Map<string, number[]>;
}

export interface TextParseOptions {
  file?: string | undefined;
  /** Each source char is one byte of the file (see decodeString). */
  latin1?: boolean;
}

type Value = unknown;

export function parseIntegerToken(text: string): bigint {
  if (/^0[xX]/.test(text)) return BigInt(text);
  if (text.length > 1 && text[0] === '0') return BigInt(`0o${text.slice(1)}`);
  return BigInt(text);
}

export function decodeUtf8(bytes: number[]): string {
  return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(Uint8Array.from(bytes));
}

/** Per decoded UTF-16 unit, the source offset of the byte that began its code point. */
function charOffsets(d: DecodedString, decoded: string, fallback: number): number[] {
  const starts: number[] = [];
  for (let i = 0; i < d.bytes.length; i++)
    if ((d.bytes[i]! & 0xc0) !== 0x80) starts.push(d.offsets[i]!);
  const out: number[] = [];
  let cp = 0;
  for (let i = 0; i < decoded.length; i++) {
    out.push(starts[cp] ?? fallback);
    const code = decoded.charCodeAt(i);
    if (code < 0xd800 || code > 0xdbff) cp++;
  }
  return out;
}

class TextParser {
  private readonly tok: Tokenizer;
  readonly fields = new Map<string, FieldSpan>();
  readonly stringOffsets = new Map<string, number[]>();

  constructor(
    src: string,
    private readonly opts: TextParseOptions,
  ) {
    this.tok = new Tokenizer(src, { file: opts.file });
  }

  private fail(
    message: string,
    pos: SourcePosition,
    code: PolicyError['code'] = 'E_SYNTAX',
    hint?: string,
  ): never {
    throw new PolicyError(message, { code, file: this.opts.file, position: pos, hint });
  }

  private lookingAt(text: string): boolean {
    const t = this.tok.token;
    return (t.type === 'symbol' || t.type === 'ident') && t.text === text;
  }

  private tryConsume(text: string): boolean {
    if (!this.lookingAt(text)) return false;
    this.tok.next();
    return true;
  }

  private consume(text: string): Token {
    const t = this.tok.token;
    if (!this.lookingAt(text)) {
      this.fail(`Expected "${text}", found "${t.type === 'eof' ? '' : t.text}".`, t.pos);
    }
    return this.tok.next();
  }

  parseTop(desc: MessageDescriptor): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    while (this.tok.token.type !== 'eof') this.parseField(desc, out, '');
    return out;
  }

  private parseMessageBody(desc: MessageDescriptor, path: string): Record<string, unknown> {
    const open = this.tok.token;
    let close = '}';
    if (this.tryConsume('<')) close = '>';
    else if (!this.lookingAt('{')) {
      this.fail(
        `Expected "{", found "${open.type === 'eof' ? '' : open.text}".`,
        open.pos,
        'E_SYNTAX',
        `${desc.name} fields go inside { ... }`,
      );
    } else this.tok.next();
    const out: Record<string, unknown> = {};
    while (!this.lookingAt(close)) {
      if (this.tok.token.type === 'eof') {
        this.fail(
          `Expected "${close}".`,
          this.tok.token.pos,
          'E_SYNTAX',
          `the block opened at ${open.pos.line}:${open.pos.column} is not closed`,
        );
      }
      this.parseField(desc, out, path);
    }
    this.tok.next();
    return out;
  }

  private parseField(desc: MessageDescriptor, out: Record<string, unknown>, prefix: string): void {
    const nameTok = this.tok.token;
    if (nameTok.type !== 'ident') {
      const hint = this.lookingAt('[')
        ? 'nsjail policies have no extensions or Any fields'
        : undefined;
      this.fail(
        `Expected identifier, got: ${nameTok.type === 'eof' ? '' : nameTok.text}`,
        nameTok.pos,
        'E_SYNTAX',
        hint,
      );
    }
    this.tok.next();
    const f = desc.byName.get(nameTok.text);
    if (!f) {
      this.fail(
        `Message type "${desc.fullName}" has no field named "${nameTok.text}".`,
        nameTok.pos,
        'E_UNKNOWN_FIELD',
        didYouMean(nameTok.text, desc.byName.keys()) ??
          `see \`ktl sandbox policy explain\` or nsjail's config.proto for ${desc.name}'s fields`,
      );
    }
    const path = joinPath(prefix, f.name);
    if (f.label !== 'repeated' && f.name in out) {
      const first = this.fields.get(path);
      this.fail(
        `Non-repeated field "${f.name}" is specified multiple times.`,
        nameTok.pos,
        'E_DUPLICATE_FIELD',
        first ? `first set at ${first.name.line}:${first.name.column}; keep one` : undefined,
      );
    }
    if (f.type === 'message') this.tryConsume(':');
    else {
      const t = this.tok.token;
      if (!this.lookingAt(':')) {
        this.fail(
          `Expected ":", found "${t.type === 'eof' ? '' : t.text}".`,
          t.pos,
          'E_SYNTAX',
          `write \`${f.name}: <value>\``,
        );
      }
      this.tok.next();
    }

    if (f.label === 'repeated') {
      // Absent and empty repeated fields mean the same; the parsed form keeps only non-empty lists.
      const list = (out[f.name] ?? []) as Value[];
      const one = () => {
        const idx = list.length;
        const elPath = `${path}[${idx}]`;
        const valueTok = this.tok.token;
        this.fields.set(elPath, { name: nameTok.pos, value: valueTok.pos });
        if (!this.fields.has(path))
          this.fields.set(path, { name: nameTok.pos, value: valueTok.pos });
        list.push(this.parseValue(f, elPath));
      };
      if (this.tryConsume('[')) {
        if (!this.tryConsume(']')) {
          for (;;) {
            one();
            if (this.tryConsume(']')) break;
            this.consume(',');
          }
        }
      } else one();
      if (list.length > 0) out[f.name] = list;
    } else {
      this.fields.set(path, { name: nameTok.pos, value: this.tok.token.pos });
      out[f.name] = this.parseValue(f, path);
    }
    if (!this.tryConsume(';')) this.tryConsume(',');
  }

  private parseValue(f: FieldDescriptor, path: string): Value {
    if (f.type === 'message') return this.parseMessageBody(f.message!, path);
    const t = this.tok.token;
    const shown = t.type === 'eof' ? '' : t.text;
    switch (f.type) {
      case 'string':
      case 'bytes': {
        if (t.type !== 'string') {
          this.fail(
            `Expected string, got: ${shown}`,
            t.pos,
            'E_BAD_VALUE',
            `quote it: ${f.name}: "${shown}"`,
          );
        }
        const d: DecodedString = { bytes: [], offsets: [] };
        while (this.tok.token.type === 'string')
          decodeString(this.tok.next(), this.opts.latin1 ?? false, d);
        if (f.type === 'bytes') return Uint8Array.from(d.bytes);
        const s = decodeUtf8(d.bytes);
        this.stringOffsets.set(path, charOffsets(d, s, t.pos.offset));
        return s;
      }
      case 'bool': {
        if (t.type === 'int') {
          const v = this.unsigned(t, 1n, f);
          return v === 1n;
        }
        if (t.type !== 'ident')
          this.fail(
            `Expected identifier, got: ${shown}`,
            t.pos,
            'E_BAD_VALUE',
            'use true or false',
          );
        this.tok.next();
        if (t.text === 'true' || t.text === 'True' || t.text === 't') return true;
        if (t.text === 'false' || t.text === 'False' || t.text === 'f') return false;
        return this.fail(
          `Invalid value for boolean field "${f.name}". Value: "${t.text}".`,
          t.pos,
          'E_BAD_VALUE',
          'use true or false',
        );
      }
      case 'enum': {
        const en = f.enum!;
        const names = en.values.map((v) => v.name);
        if (t.type === 'ident') {
          this.tok.next();
          const v = en.byName.get(t.text);
          if (v) return v.name;
          this.fail(
            `Unknown enumeration value of "${t.text}" for field "${f.name}".`,
            t.pos,
            'E_UNKNOWN_ENUM',
            didYouMean(t.text, names) ?? `valid values: ${names.join(', ')}`,
          );
        }
        if (t.type === 'int' || this.lookingAt('-')) {
          const n = this.signed(f, -(2n ** 31n), 2n ** 31n - 1n);
          const v = en.byNumber.get(Number(n));
          if (v) return v.name;
          this.fail(
            `Unknown enumeration value of "${n}" for field "${f.name}".`,
            t.pos,
            'E_UNKNOWN_ENUM',
            `valid values: ${en.values.map((x) => `${x.name} (${x.number})`).join(', ')}`,
          );
        }
        return this.fail(
          `Expected integer or identifier, got: ${shown}`,
          t.pos,
          'E_BAD_VALUE',
          `valid values: ${names.join(', ')}`,
        );
      }
      case 'uint32':
      case 'uint64': {
        const max = BigInt(SCALAR_RANGES[f.type][1]);
        const v = this.unsigned(t, max, f);
        return f.type === 'uint32' ? Number(v) : v;
      }
      case 'int32':
      case 'int64': {
        const [lo, hi] = SCALAR_RANGES[f.type];
        const v = this.signed(f, BigInt(lo), BigInt(hi));
        return f.type === 'int32' ? Number(v) : v;
      }
    }
  }

  private rangeHint(f: FieldDescriptor): string {
    if (f.type === 'bool') return 'a boolean is true, false, 1 or 0';
    const range = SCALAR_RANGES[f.type as keyof typeof SCALAR_RANGES];
    return range ? `${f.name} is ${f.type}: ${range[0]} to ${range[1]}` : '';
  }

  private unsigned(t: Token, max: bigint, f: FieldDescriptor): bigint {
    if (t.type !== 'int') {
      const hint =
        t.text === '-' ? `${f.name} cannot be negative (${this.rangeHint(f)})` : this.rangeHint(f);
      this.fail(
        `Expected integer, got: ${t.type === 'eof' ? '' : t.text}`,
        t.pos,
        'E_BAD_VALUE',
        hint,
      );
    }
    this.tok.next();
    const v = parseIntegerToken(t.text);
    if (v > max)
      this.fail(`Integer out of range (${t.text})`, t.pos, 'E_BAD_VALUE', this.rangeHint(f));
    return v;
  }

  private signed(f: FieldDescriptor, lo: bigint, hi: bigint): bigint {
    const start = this.tok.token;
    const negative = this.tryConsume('-');
    const t = this.tok.token;
    if (t.type !== 'int') {
      this.fail(
        `Expected integer, got: ${t.type === 'eof' ? '' : t.text}`,
        t.pos,
        'E_BAD_VALUE',
        this.rangeHint(f),
      );
    }
    this.tok.next();
    let v = parseIntegerToken(t.text);
    if (negative) v = -v;
    if (v < lo || v > hi) {
      this.fail(
        `Integer out of range (${negative ? '-' : ''}${t.text})`,
        start.pos,
        'E_BAD_VALUE',
        f.type === 'enum' ? undefined : this.rangeHint(f),
      );
    }
    return v;
  }
}

/** Parses protobuf text format into a plain object holding only the fields that were set. */
export function parseText(
  src: string,
  desc: MessageDescriptor,
  opts: TextParseOptions = {},
): TextParseResult {
  const p = new TextParser(src, opts);
  const value = p.parseTop(desc);
  return { value, fields: p.fields, stringOffsets: p.stringOffsets };
}
