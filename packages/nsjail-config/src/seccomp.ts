/**
 * Checks the kafel policy in seccomp_string / seccomp_policy_file and reports problems at
 * their position inside the .cfg: nsjail joins the seccomp_string entries with '\n' and
 * compiles the result, so an offset in the joined text maps back to one entry, then through
 * that entry's string literal (escapes, concatenation) to the file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { type Diagnostic, diagnosticFactory } from './diagnostics';
import { type KafelArch, type KafelError, parseKafel } from './kafel';
import type { NsJailConfig } from './schema/nsjail';
import { LineIndex, type PolicySource } from './source';

export interface SeccompText {
  text: string;
  /** Maps an offset in `text` to a file position, when known. */
  locate(offset: number): { file?: string; line?: number; column?: number };
}

/** The kafel source nsjail would compile, or undefined when the policy has none. */
export function seccompText(policy: NsJailConfig, source?: PolicySource): SeccompText | undefined {
  const parts = policy.seccomp_string ?? [];
  if (parts.length > 0) {
    const text = parts.map((s) => `${s}\n`).join('');
    const lines = source ? new LineIndex(source.text) : undefined;
    return {
      text,
      locate(offset) {
        let start = 0;
        for (let i = 0; i < parts.length; i++) {
          const len = parts[i]!.length;
          if (offset <= start + len) {
            const offs = source?.stringOffsets.get(`seccomp_string[${i}]`);
            const src = offs?.[Math.min(offset - start, offs.length - 1)];
            if (src === undefined || !lines) return source?.file ? { file: source.file } : {};
            const pos = lines.position(src);
            return {
              ...(source?.file ? { file: source.file } : {}),
              line: pos.line,
              column: pos.column,
            };
          }
          start += len + 1;
        }
        return source?.file ? { file: source.file } : {};
      },
    };
  }
  return undefined;
}

export function kafelDiagnostic(
  err: KafelError,
  where: { file?: string; line?: number; column?: number },
): Diagnostic {
  return {
    severity: 'error',
    code: 'NSJ-V012',
    message: `seccomp policy: ${err.message}`,
    ...(err.hint ? { hint: err.hint } : {}),
    path: 'seccomp_string',
    ...where,
  };
}

export function checkSeccomp(
  policy: NsJailConfig,
  source: PolicySource | undefined,
  arch: KafelArch,
): Diagnostic[] {
  const inline = seccompText(policy, source);
  if (inline) {
    const r = parseKafel(inline.text, { arch });
    return r.ok ? [] : [kafelDiagnostic(r.error, inline.locate(r.error.offset))];
  }
  const file = policy.seccomp_policy_file;
  if (!file) return [];
  const d = diagnosticFactory(source);
  if (!existsSync(file)) {
    return [
      d(
        'error',
        'NSJ-V013',
        'seccomp_policy_file',
        `seccomp_policy_file "${file}" does not exist (nsjail resolves it from its working directory)`,
        'use an absolute path',
      ),
    ];
  }
  const text = readFileSync(file, 'utf8');
  const r = parseKafel(text, { arch });
  if (r.ok) return [];
  return [
    {
      ...kafelDiagnostic(r.error, { file, line: r.error.line, column: r.error.column }),
      path: 'seccomp_policy_file',
    },
  ];
}
