/** Everything `ktl sandbox policy validate` reports for one file: parse, validate, lint. */
import { type Diagnostic, sortDiagnostics } from './diagnostics';
import { PolicyError } from './errors';
import { lintPolicy } from './lint';
import { type ParsedPolicy, parsePolicyFile } from './parse';
import { type ValidateOptions, validatePolicy } from './validate';

export interface CheckResult {
  file: string;
  /** False when any diagnostic is an error. */
  valid: boolean;
  diagnostics: Diagnostic[];
  parsed?: ParsedPolicy;
}

export function errorDiagnostic(e: PolicyError): Diagnostic {
  return {
    severity: 'error',
    code: `NSJ-${e.code}`,
    message: e.shortMessage,
    ...(e.hint ? { hint: e.hint } : {}),
    ...(e.file ? { file: e.file } : {}),
    ...(e.line !== undefined ? { line: e.line, column: e.column ?? 1 } : {}),
  };
}

export async function checkPolicyFile(
  file: string,
  opts: ValidateOptions = {},
): Promise<CheckResult> {
  let parsed: ParsedPolicy;
  try {
    parsed = await parsePolicyFile(file);
  } catch (e) {
    return { file, valid: false, diagnostics: [errorDiagnostic(PolicyError.from(e, file))] };
  }
  const diagnostics = sortDiagnostics([...validatePolicy(parsed, opts), ...lintPolicy(parsed)]);
  return { file, valid: !diagnostics.some((d) => d.severity === 'error'), diagnostics, parsed };
}
