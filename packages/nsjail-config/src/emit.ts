/** Canonical protobuf text of a policy: schema order, two-space indent, one field a line. */
import { PolicyError } from './errors';
import type { FieldDescriptor, MessageDescriptor } from './schema/builders';
import { SCALAR_RANGES } from './schema/builders';
import { type NsJailConfig, policyDescriptor } from './schema/nsjail';

const SIMPLE_ESCAPES: Record<number, string> = {
  10: '\\n',
  13: '\\r',
  9: '\\t',
  34: '\\"',
  39: "\\'",
  92: '\\\\',
};

/** Escapes bytes for a quoted literal; with `utf8`, valid non-ASCII UTF-8 is kept as text. */
export function escapeBytes(bytes: Uint8Array, utf8: boolean): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const simple = SIMPLE_ESCAPES[b];
    if (simple) out += simple;
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else if (utf8 && b >= 0xc2) {
      const len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      const seq = bytes.subarray(i, i + len);
      let text: string | undefined;
      try {
        text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(seq);
      } catch {
        text = undefined;
      }
      if (text !== undefined && seq.length === len) {
        out += text;
        i += len;
        continue;
      }
      out += `\\${b.toString(8).padStart(3, '0')}`;
    } else out += `\\${b.toString(8).padStart(3, '0')}`;
    i++;
  }
  return `"${out}"`;
}

export function quoteString(s: string): string {
  return escapeBytes(new TextEncoder().encode(s), true);
}

function scalar(f: FieldDescriptor, v: unknown): string {
  switch (f.type) {
    case 'string':
      return quoteString(v as string);
    case 'bytes':
      return escapeBytes(v as Uint8Array, false);
    case 'bool':
      return v ? 'true' : 'false';
    case 'enum':
      return v as string;
    default:
      return String(v);
  }
}

function emitMessage(
  value: Record<string, unknown>,
  desc: MessageDescriptor,
  indent: string,
  out: string[],
): void {
  for (const f of desc.fields) {
    const v = value[f.name];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    const items = f.label === 'repeated' ? (v as unknown[]) : [v];
    for (const item of items) {
      if (f.type === 'message') {
        out.push(`${indent}${f.name} {`);
        emitMessage(item as Record<string, unknown>, f.message!, `${indent}  `, out);
        out.push(`${indent}}`);
      } else out.push(`${indent}${f.name}: ${scalar(f, item)}`);
    }
  }
}

/** Checks a policy object built in code against the schema; throws PolicyError E_INVALID. */
/** The first thing wrong with `value` as a `desc` message: its path and what is wrong. */
function shapeIssue(
  value: unknown,
  desc: MessageDescriptor,
  path: string,
): { path: string; message: string } | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { path, message: `expected an object (${desc.fullName}), got ${kindOf(value)}` };
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!desc.byName.has(key)) return { path, message: `unknown field "${key}"` };
  }
  for (const f of desc.fields) {
    const v = Object.hasOwn(obj, f.name) ? obj[f.name] : undefined;
    const at = path ? `${path}.${f.name}` : f.name;
    if (v === undefined) {
      if (f.label === 'required') return { path: at, message: 'required field missing' };
      continue;
    }
    if (f.label === 'repeated') {
      if (!Array.isArray(v)) return { path: at, message: `expected a list, got ${kindOf(v)}` };
      for (let i = 0; i < v.length; i++) {
        const issue = valueIssue(v[i], f, `${at}[${i}]`);
        if (issue) return issue;
      }
    } else {
      const issue = valueIssue(v, f, at);
      if (issue) return issue;
    }
  }
  return undefined;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v;
}

function valueIssue(
  v: unknown,
  f: FieldDescriptor,
  path: string,
): { path: string; message: string } | undefined {
  const bad = (what: string) => ({ path, message: `expected ${what}, got ${kindOf(v)}` });
  switch (f.type) {
    case 'message':
      return shapeIssue(v, f.message!, path);
    case 'enum':
      return typeof v === 'string' && f.enum!.byName.has(v)
        ? undefined
        : {
            path,
            message: `expected one of ${f.enum!.values.map((e) => e.name).join(', ')}, got ${typeof v === 'string' ? JSON.stringify(v) : kindOf(v)}`,
          };
    case 'string':
      return typeof v === 'string' ? undefined : bad('a string');
    case 'bool':
      return typeof v === 'boolean' ? undefined : bad('a boolean');
    case 'bytes':
      return v instanceof Uint8Array ? undefined : bad('bytes (Uint8Array)');
    case 'int32':
    case 'uint32': {
      if (typeof v !== 'number' || !Number.isInteger(v)) return bad(`an integer (${f.type})`);
      const [lo, hi] = SCALAR_RANGES[f.type];
      return v >= lo && v <= hi ? undefined : { path, message: `${v} is out of ${f.type} range` };
    }
    case 'int64':
    case 'uint64': {
      if (typeof v !== 'bigint') return bad(`a bigint (${f.type})`);
      const [lo, hi] = SCALAR_RANGES[f.type];
      return v >= lo && v <= hi ? undefined : { path, message: `${v} is out of ${f.type} range` };
    }
  }
}

/**
 * Throws PolicyError E_INVALID unless `policy` is a policy object: known fields only, each of
 * its type and range, required fields present. Checked against the descriptors (the same
 * verdicts as `policySchema().parse`, without building the zod schema).
 */
export function assertPolicy(policy: unknown): asserts policy is NsJailConfig {
  const issue = shapeIssue(policy, policyDescriptor, '');
  if (issue) {
    throw new PolicyError(`invalid policy at ${issue.path || '(root)'}: ${issue.message}`, {
      code: 'E_INVALID',
    });
  }
}

/**
 * The text of a policy that sets nothing. nsjail (and ktl) refuse an empty file, and an editor
 * that trims blank lines would make a lone newline one; a comment-only file is the empty policy.
 */
export const EMPTY_POLICY_TEXT = '# empty policy: every field has its nsjail default\n';

/** Canonical text: `parsePolicy(emitPolicy(p)).policy` deep-equals `p`. */
export function emitPolicy(policy: NsJailConfig): string {
  assertPolicy(policy);
  const out: string[] = [];
  emitMessage(policy as Record<string, unknown>, policyDescriptor, '', out);
  return out.length ? `${out.join('\n')}\n` : EMPTY_POLICY_TEXT;
}
