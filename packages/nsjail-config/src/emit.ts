/** Canonical protobuf text of a policy: schema order, two-space indent, one field a line. */
import { PolicyError } from './errors';
import type { FieldDescriptor, MessageDescriptor } from './schema/builders';
import { type NsJailConfig, policyDescriptor, policySchema } from './schema/nsjail';

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
export function assertPolicy(policy: unknown): asserts policy is NsJailConfig {
  // jitless: one parse per process, where compiling a fast path costs more than it saves.
  const r = policySchema.safeParse(policy, { jitless: true });
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '');
    throw new PolicyError(`invalid policy at ${path || '(root)'}: ${issue.message}`, {
      code: 'E_INVALID',
    });
  }
}

/** Canonical text: `parsePolicy(emitPolicy(p)).policy` deep-equals `p`. */
export function emitPolicy(policy: NsJailConfig): string {
  assertPolicy(policy);
  const out: string[] = [];
  emitMessage(policy as Record<string, unknown>, policyDescriptor, '', out);
  // nsjail refuses an empty file; a comment-only one is the empty policy.
  return out.length
    ? `${out.join('\n')}\n`
    : '# empty policy: every field has its nsjail default\n';
}
