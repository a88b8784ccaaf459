/** Reading a policy: text or ProtoJSON, as nsjail's config loader decides between them. */
import { readFile } from 'node:fs/promises';
import { PolicyError } from './errors';
import { parseJson } from './json/parser';
import type { MessageDescriptor } from './schema/builders';
import { type NsJailConfig, policyDescriptor } from './schema/nsjail';
import { LineIndex, type PolicySource } from './source';
import { parseText } from './text/parser';

export interface ParsedPolicy {
  readonly policy: NsJailConfig;
  readonly source: PolicySource;
}

export interface ParseOptions {
  /** Shown in every diagnostic; defaults to `<policy>`. */
  filename?: string | undefined;
}

/** Required fields left unset, as protobuf names them: `mount[2].dst`. */
export function missingRequired(
  value: Record<string, unknown>,
  desc: MessageDescriptor,
  prefix = '',
): string[] {
  const missing: string[] = [];
  for (const f of desc.fields) {
    const v = value[f.name];
    const path = prefix ? `${prefix}.${f.name}` : f.name;
    if (f.label === 'required' && v === undefined) missing.push(path);
    if (f.type !== 'message' || v === undefined) continue;
    if (Array.isArray(v)) {
      v.forEach((m, i) => {
        missing.push(...missingRequired(m as Record<string, unknown>, f.message!, `${path}[${i}]`));
      });
    } else missing.push(...missingRequired(v as Record<string, unknown>, f.message!, path));
  }
  return missing;
}

/** Offset of the first byte that is not part of well-formed UTF-8, or -1 when there is none. */
function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    // The second byte's range excludes overlong forms, UTF-16 surrogates (ED A0..BF) and
    // code points above U+10FFFF, as RFC 3629 (and protobuf) do.
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c === 0xe0) [n, lo] = [2, 0xa0];
    else if (c === 0xed) [n, hi] = [2, 0x9f];
    else if (c >= 0xe1 && c <= 0xef) n = 2;
    else if (c === 0xf0) [n, lo] = [3, 0x90];
    else if (c === 0xf4) [n, hi] = [3, 0x8f];
    else if (c >= 0xf1 && c <= 0xf3) n = 3;
    else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return -1;
}

/**
 * A ProtoJSON file's bytes (as latin1) decoded as UTF-8, which protobuf's JSON reader
 * requires: it refuses the file otherwise ("Encountered non UTF-8 code points").
 */
function decodeJsonFile(latin1: string, filename: string | undefined): string {
  const bytes = Buffer.from(latin1, 'latin1');
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    throw new PolicyError(
      `Encountered non UTF-8 code points (byte 0x${bytes[bad]!.toString(16).padStart(2, '0')}).`,
      {
        code: 'E_SYNTAX',
        file: filename,
        position: new LineIndex(latin1).position(bad),
        hint: 'a ProtoJSON policy must be UTF-8 (nsjail refuses it otherwise): save the file as UTF-8',
      },
    );
  }
  return bytes.toString('utf8');
}

function parse(input: string, filename: string | undefined, latin1: boolean): ParsedPolicy {
  if (input.length === 0) {
    throw new PolicyError('Config file is empty.', {
      code: 'E_EMPTY',
      file: filename,
      hint: 'nsjail refuses an empty policy; write at least `name: "..."`',
    });
  }
  // nsjail tries both formats and takes the one that parses. A text policy never starts with
  // `{` and a JSON one always does, so the first character decides which error is meaningful.
  const json = /^\s*\{/.test(input);
  // Text strings are bytes (the text parser decodes them); JSON is UTF-8 as a whole.
  const text = json && latin1 ? decodeJsonFile(input, filename) : input;
  const r = json
    ? parseJson(text, policyDescriptor, filename)
    : parseText(text, policyDescriptor, { file: filename, latin1 });
  const missing = missingRequired(r.value, policyDescriptor);
  if (missing.length > 0) {
    const first = missing[0]!;
    const parent = first.slice(0, first.lastIndexOf('.'));
    const span = r.fields.get(parent);
    throw new PolicyError(`Message missing required fields: ${missing.join(', ')}`, {
      code: 'E_MISSING_REQUIRED',
      file: filename,
      position: span?.value,
      hint: `set ${first.slice(first.lastIndexOf('.') + 1)} in ${parent}`,
    });
  }
  return {
    policy: r.value as NsJailConfig,
    source: {
      file: filename,
      text,
      format: json ? 'json' : 'text',
      fields: r.fields,
      stringOffsets: r.stringOffsets,
    },
  };
}

/**
 * Parses a policy. Throws only PolicyError (never anything else, whatever the input), whose
 * message starts with `FILE:LINE:COL`. A Uint8Array is read byte for byte, like nsjail does.
 */
export function parsePolicy(input: string | Uint8Array, opts: ParseOptions = {}): ParsedPolicy {
  try {
    if (typeof input === 'string') return parse(input, opts.filename, false);
    return parse(Buffer.from(input).toString('latin1'), opts.filename, true);
  } catch (e) {
    throw PolicyError.from(e, opts.filename);
  }
}

export async function parsePolicyFile(
  path: string,
  opts: ParseOptions = {},
): Promise<ParsedPolicy> {
  const filename = opts.filename ?? path;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PolicyError(`Couldn't read config file: ${(e as Error).message}`, {
      code: 'E_IO',
      file: filename,
      hint:
        code === 'ENOENT'
          ? 'check the path (KTL_SANDBOX_CONFIG / --sandbox-config / --policy)'
          : undefined,
      cause: e,
    });
  }
  return parsePolicy(bytes, { filename });
}
