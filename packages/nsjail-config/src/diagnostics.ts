/** Diagnostics shared by validation and lints: one shape, one rendering. */
import type { ParsedPolicy } from './parse';
import type { NsJailConfig } from './schema/nsjail';
import type { FieldSpan, PolicySource } from './source';

export type Severity = 'error' | 'warning' | 'info';

export interface Diagnostic {
  readonly severity: Severity;
  /** Stable code, e.g. `NSJ-V001` (validation) or `NSJ-L010` (lint). */
  readonly code: string;
  readonly message: string;
  /** What to do about it. */
  readonly hint?: string;
  /** The field it is about: `mount[2].rw`. */
  readonly path?: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
}

export type PolicyInput = ParsedPolicy | NsJailConfig;

export function splitInput(input: PolicyInput): {
  policy: NsJailConfig;
  source: PolicySource | undefined;
} {
  if ('source' in input && 'policy' in input && typeof input.source === 'object') {
    return { policy: (input as ParsedPolicy).policy, source: (input as ParsedPolicy).source };
  }
  return { policy: input as NsJailConfig, source: undefined };
}

/** Builds diagnostics positioned at a field (or its closest positioned parent). */
export function diagnosticFactory(source: PolicySource | undefined) {
  return (
    severity: Severity,
    code: string,
    path: string | undefined,
    message: string,
    hint?: string,
  ): Diagnostic => {
    let span: FieldSpan | undefined;
    for (let p = path; p && !span; p = parentPath(p)) span = source?.fields.get(p);
    return {
      severity,
      code,
      message,
      ...(hint ? { hint } : {}),
      ...(path ? { path } : {}),
      ...(source?.file ? { file: source.file } : {}),
      ...(span ? { line: span.name.line, column: span.name.column } : {}),
    };
  };
}

function parentPath(p: string): string | undefined {
  const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
  return cut > 0 ? p.slice(0, cut) : undefined;
}

/** `FILE:LINE:COL: error CODE: message` (+ an indented hint line). */
export function formatDiagnostic(d: Diagnostic, fallbackFile = '<policy>'): string {
  const where = `${d.file ?? fallbackFile}${d.line !== undefined ? `:${d.line}:${d.column ?? 1}` : ''}`;
  return `${where}: ${d.severity} ${d.code}: ${d.message}${d.hint ? `\n  hint: ${d.hint}` : ''}`;
}

export function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return [...ds].sort(
    (a, b) =>
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.column ?? 0) - (b.column ?? 0) ||
      a.code.localeCompare(b.code),
  );
}
