/**
 * ProtoJSON -> policy object, as protobuf's JsonStringToMessage reads it with default options
 * (the second format nsjail's config loader tries): lowerCamelCase or original field names,
 * enums by name or number, 64-bit integers as numbers or strings, bytes as base64, null as
 * unset, unknown fields rejected.
 */
import { PolicyError, type SourcePosition } from '../errors';
import { type FieldDescriptor, type MessageDescriptor, SCALAR_RANGES } from '../schema/builders';
import { type FieldSpan, joinPath, LineIndex } from '../source';
import { didYouMean } from '../suggest';

/** A JSON value with where it stands; scalars keep their source spelling (`raw`). */
export type JsonNode =
  | {
      kind: 'object';
      pos: SourcePosition;
      entries: { key: string; keyRaw: string; keyPos: SourcePosition; value: JsonNode }[];
    }
  | { kind: 'array'; pos: SourcePosition; items: JsonNode[] }
  | { kind: 'string'; pos: SourcePosition; value: string; offsets: number[]; raw: string }
  | { kind: 'number'; pos: SourcePosition; text: string }
  | { kind: 'literal'; pos: SourcePosition; value: boolean | null };

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

class JsonReader {
  private i = 0;
  private readonly lines: LineIndex;

  constructor(
    private readonly src: string,
    private readonly file: string | undefined,
  ) {
    this.lines = new LineIndex(src);
  }

  fail(message: string, offset = this.i, hint?: string): never {
    throw new PolicyError(message, {
      code: 'E_SYNTAX',
      file: this.file,
      position: this.lines.position(offset),
      hint,
    });
  }

  private ws(): void {
    while (this.i < this.src.length && ' \t\n\r'.includes(this.src[this.i]!)) this.i++;
  }

  document(): JsonNode {
    const v = this.value(0);
    this.ws();
    if (this.i < this.src.length) this.fail('Unexpected token after the JSON document.');
    return v;
  }

  private value(depth: number): JsonNode {
    if (depth > 100) this.fail('JSON nested too deeply.');
    this.ws();
    const pos = this.lines.position(this.i);
    const c = this.src[this.i];
    if (c === '{') return this.object(pos, depth);
    if (c === '[') return this.array(pos, depth);
    if (c === '"') return this.string(pos);
    if (c !== undefined && /[-0-9]/.test(c)) {
      const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.src.slice(this.i));
      if (!m) this.fail('Invalid number.');
      this.i += m[0].length;
      return { kind: 'number', pos, text: m[0] };
    }
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.src.startsWith(word, this.i)) {
        this.i += word.length;
        return { kind: 'literal', pos, value };
      }
    }
    if (c === undefined) this.fail('Unexpected end of JSON input.');
    this.fail('Unexpected token.');
  }

  private object(pos: SourcePosition, depth: number): JsonNode {
    this.i++;
    const entries: Extract<JsonNode, { kind: 'object' }>['entries'] = [];
    this.ws();
    if (this.src[this.i] === '}') {
      this.i++;
      return { kind: 'object', pos, entries };
    }
    for (;;) {
      this.ws();
      const keyPos = this.lines.position(this.i);
      if (this.src[this.i] !== '"') this.fail('Expected an object key or }.');
      const key = this.string(keyPos) as Extract<JsonNode, { kind: 'string' }>;
      this.ws();
      if (this.src[this.i] !== ':') this.fail('Expected : after the object key.');
      this.i++;
      entries.push({ key: key.value, keyRaw: key.raw, keyPos, value: this.value(depth + 1) });
      this.ws();
      if (this.src[this.i] === ',') {
        this.i++;
        continue;
      }
      if (this.src[this.i] === '}') {
        this.i++;
        return { kind: 'object', pos, entries };
      }
      this.fail('Expected , or } after an object value.');
    }
  }

  private array(pos: SourcePosition, depth: number): JsonNode {
    this.i++;
    const items: JsonNode[] = [];
    this.ws();
    if (this.src[this.i] === ']') {
      this.i++;
      return { kind: 'array', pos, items };
    }
    for (;;) {
      items.push(this.value(depth + 1));
      this.ws();
      if (this.src[this.i] === ',') {
        this.i++;
        continue;
      }
      if (this.src[this.i] === ']') {
        this.i++;
        return { kind: 'array', pos, items };
      }
      this.fail('Expected , or ] after an array value.');
    }
  }

  private string(pos: SourcePosition): JsonNode {
    const start = this.i;
    this.i++;
    let value = '';
    const offsets: number[] = [];
    for (;;) {
      const c = this.src[this.i];
      if (c === undefined) this.fail('Unexpected end of string.', start);
      if (c === '"') {
        this.i++;
        return { kind: 'string', pos, value, offsets, raw: this.src.slice(start, this.i) };
      }
      const code = c.charCodeAt(0);
      if (code < 0x20) this.fail('Invalid control character in string.');
      if (isHigh(code) && isLow(this.src.charCodeAt(this.i + 1))) {
        value += c + this.src[this.i + 1];
        offsets.push(this.i, this.i);
        this.i += 2;
        continue;
      }
      // Only reachable from a JS string handed to parsePolicy (a file is UTF-8 checked first):
      // such a character has no UTF-8 form, so it cannot be in the file nsjail reads.
      if (isHigh(code) || isLow(code))
        this.fail(
          `Lone surrogate U+${code.toString(16).toUpperCase()} in a string: it is not a character and has no UTF-8 form.`,
        );
      if (c === '\\') {
        const e = this.src[this.i + 1];
        const simple: Record<string, string> = {
          '"': '"',
          '\\': '\\',
          '/': '/',
          b: '\b',
          f: '\f',
          n: '\n',
          r: '\r',
          t: '\t',
        };
        if (e !== undefined && e in simple) {
          value += simple[e];
          offsets.push(this.i);
          this.i += 2;
        } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(this.src.slice(this.i + 2, this.i + 6))) {
          const unit = Number.parseInt(this.src.slice(this.i + 2, this.i + 6), 16);
          const next = /^\\u([dD][c-fC-F][0-9a-fA-F]{2})/.exec(this.src.slice(this.i + 6));
          if (isHigh(unit) && next) {
            value += String.fromCharCode(unit, Number.parseInt(next[1]!, 16));
            offsets.push(this.i, this.i);
            this.i += 12;
          } else if (isHigh(unit) || isLow(unit)) {
            // protobuf's JSON reader (and so nsjail) refuses these; a string holding one has no
            // UTF-8 form, so it could not mean the same thing to nsjail and to ktl.
            this.fail(
              `Invalid \\u escape: ${this.src.slice(this.i, this.i + 6)} is a lone surrogate (half of a UTF-16 pair), not a character.`,
              this.i,
              isHigh(unit)
                ? `follow it with its low half (\\udc00 to \\udfff), as in "\\ud83d\\ude00" for U+1F600, or write the character itself`
                : 'a low surrogate (\\udc00 to \\udfff) must follow a high one (\\ud800 to \\udbff); write the character itself',
            );
          } else {
            value += String.fromCharCode(unit);
            offsets.push(this.i);
            this.i += 6;
          }
        } else this.fail('Invalid escape sequence.');
        continue;
      }
      value += c;
      offsets.push(this.i);
      this.i++;
    }
  }
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export interface JsonParseResult {
  value: Record<string, unknown>;
  fields: Map<string, FieldSpan>;
  stringOffsets: Map<string, number[]>;
}

class JsonToMessage {
  readonly fields = new Map<string, FieldSpan>();
  readonly stringOffsets = new Map<string, number[]>();

  constructor(private readonly file: string | undefined) {}

  private fail(
    message: string,
    pos: SourcePosition,
    code: PolicyError['code'],
    hint?: string,
  ): never {
    throw new PolicyError(message, { code, file: this.file, position: pos, hint });
  }

  message(node: JsonNode, desc: MessageDescriptor, prefix: string): Record<string, unknown> {
    if (node.kind !== 'object')
      this.fail(`Expected an object for ${desc.fullName}.`, node.pos, 'E_BAD_VALUE');
    const out: Record<string, unknown> = {};
    const seen = new Map<string, SourcePosition>();
    for (const { key, keyPos, value } of node.entries) {
      const f = desc.byJsonName.get(key) ?? desc.byName.get(key);
      if (!f) {
        const names = [...desc.byName.keys(), ...desc.byJsonName.keys()];
        this.fail(
          `Message type "${desc.fullName}" has no field named "${key}".`,
          keyPos,
          'E_UNKNOWN_FIELD',
          didYouMean(key, names),
        );
      }
      const first = seen.get(f.name);
      if (first) {
        this.fail(
          `Field "${f.name}" is given more than once.`,
          keyPos,
          'E_DUPLICATE_FIELD',
          `first given at ${first.line}:${first.column}`,
        );
      }
      seen.set(f.name, keyPos);
      if (value.kind === 'literal' && value.value === null) continue;
      const path = joinPath(prefix, f.name);
      this.fields.set(path, { name: keyPos, value: value.pos });
      if (f.label === 'repeated') {
        if (value.kind !== 'array')
          this.fail(`Field "${f.name}" is repeated: expected an array.`, value.pos, 'E_BAD_VALUE');
        if (value.items.length === 0) continue;
        out[f.name] = value.items.map((item, i) => {
          const el = `${path}[${i}]`;
          this.fields.set(el, { name: keyPos, value: item.pos });
          return this.value(item, f, el);
        });
      } else out[f.name] = this.value(value, f, path);
    }
    return out;
  }

  private integer(node: JsonNode, f: FieldDescriptor, lo: bigint, hi: bigint): bigint {
    let text: string | undefined;
    if (node.kind === 'number') text = node.text;
    else if (node.kind === 'string') text = node.value.trim();
    if (text === undefined || !/^-?[0-9]+(\.0*)?([eE][+-]?[0-9]+)?$/.test(text)) {
      this.fail(
        `Invalid value for ${f.type} field "${f.name}": expected an integer.`,
        node.pos,
        'E_BAD_VALUE',
      );
    }
    const m = /^(-?[0-9]+)(?:\.0*)?(?:[eE]([+-]?[0-9]+))?$/.exec(text)!;
    const exp = Number(m[2] ?? 0);
    if (exp < 0 || exp > 40)
      this.fail(
        `Invalid value for ${f.type} field "${f.name}": not an integer (${text}).`,
        node.pos,
        'E_BAD_VALUE',
      );
    const v = BigInt(m[1]!) * 10n ** BigInt(exp);
    if (v < lo || v > hi)
      this.fail(
        `Integer out of range (${text}) for field "${f.name}".`,
        node.pos,
        'E_BAD_VALUE',
        `${f.name} is ${f.type}: ${lo} to ${hi}`,
      );
    return v;
  }

  private value(node: JsonNode, f: FieldDescriptor, path: string): unknown {
    switch (f.type) {
      case 'message':
        return this.message(node, f.message!, path);
      case 'string':
        if (node.kind !== 'string')
          this.fail(
            `Invalid value for string field "${f.name}": expected a string.`,
            node.pos,
            'E_BAD_VALUE',
          );
        this.stringOffsets.set(path, node.offsets);
        return node.value;
      case 'bytes': {
        if (node.kind !== 'string' || !BASE64.test(node.value)) {
          this.fail(
            `Invalid value for bytes field "${f.name}": expected base64.`,
            node.pos,
            'E_BAD_VALUE',
          );
        }
        return Uint8Array.from(
          Buffer.from(node.value.replace(/-/g, '+').replace(/_/g, '/'), 'base64'),
        );
      }
      case 'bool':
        if (node.kind !== 'literal' || node.value === null) {
          this.fail(
            `Invalid value for bool field "${f.name}": expected true or false.`,
            node.pos,
            'E_BAD_VALUE',
          );
        }
        return node.value;
      case 'enum': {
        const en = f.enum!;
        if (node.kind === 'string' && !/^-?[0-9]+$/.test(node.value)) {
          const v = en.byName.get(node.value);
          if (v) return v.name;
          this.fail(
            `Unknown enumeration value of "${node.value}" for field "${f.name}".`,
            node.pos,
            'E_UNKNOWN_ENUM',
            didYouMean(node.value, en.byName.keys()) ??
              `valid values: ${[...en.byName.keys()].join(', ')}`,
          );
        }
        const n = this.integer(node, f, -(2n ** 31n), 2n ** 31n - 1n);
        const v = en.byNumber.get(Number(n));
        if (!v)
          this.fail(
            `Unknown enumeration value of "${n}" for field "${f.name}".`,
            node.pos,
            'E_UNKNOWN_ENUM',
          );
        return v.name;
      }
      default: {
        const [lo, hi] = SCALAR_RANGES[f.type];
        const v = this.integer(node, f, BigInt(lo), BigInt(hi));
        return f.type === 'int32' || f.type === 'uint32' ? Number(v) : v;
      }
    }
  }
}

/** The JSON document as a tree; throws PolicyError E_SYNTAX with a position. */
export function readJson(src: string, file?: string): JsonNode {
  return new JsonReader(src, file).document();
}

export function parseJson(src: string, desc: MessageDescriptor, file?: string): JsonParseResult {
  const doc = readJson(src, file);
  const conv = new JsonToMessage(file);
  const value = conv.message(doc, desc, '');
  return { value, fields: conv.fields, stringOffsets: conv.stringOffsets };
}
