/** Reading a policy: text or ProtoJSON, as nsjail's config loader decides between them. */
import { readFile } from 'node:fs/promises';
import { PolicyError } from './errors';
import { parseJson } from './json/parser';
import type { MessageDescriptor } from './schema/builders';
import { type NsJailConfig, policyDescriptor } from './schema/nsjail';
import type { PolicySource } from './source';
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

function parse(text: string, filename: string | undefined, latin1: boolean): ParsedPolicy {
  if (text.length === 0) {
    throw new PolicyError('Config file is empty.', {
      code: 'E_EMPTY',
      file: filename,
      hint: 'nsjail refuses an empty policy; write at least `name: "..."`',
    });
  }
  // nsjail tries both formats and takes the one that parses. A text policy never starts with
  // `{` and a JSON one always does, so the first character decides which error is meaningful.
  const json = /^\s*\{/.test(text);
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
