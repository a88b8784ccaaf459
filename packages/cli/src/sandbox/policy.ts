/**
 * The policy a sandboxed build runs under: the file the user chose, or one compiled into ktl
 * (linux-ci by default, hermetic under --hermetic). A bad file fails before anything runs.
 */
import {
  type NsJailConfig,
  type ParsedPolicy,
  parsePolicy,
  parsePolicyFile,
  validatePolicy,
} from '@ktl/nsjail-config';
import hermeticText from '../../../../testdata/sandbox/hermetic.cfg';
import defaultText from '../../../../testdata/sandbox/linux-ci.cfg';

export const EMBEDDED_POLICIES = { default: defaultText, hermetic: hermeticText } as const;

export interface LoadedPolicy {
  policy: NsJailConfig;
  /** The file, or `embedded default` / `embedded hermetic`, for the banner. */
  label: string;
  parsed: ParsedPolicy;
}

export class PolicyLoadError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'PolicyLoadError';
  }
}

export async function loadSandboxPolicy(
  file: string | undefined,
  hermetic: boolean,
): Promise<LoadedPolicy> {
  const parsed = file
    ? await parsePolicyFile(file)
    : parsePolicy(hermetic ? hermeticText : defaultText, {
        filename: hermetic ? '<embedded hermetic>' : '<embedded default>',
      });
  const errors = validatePolicy(parsed).filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    const e = errors[0]!;
    throw new PolicyLoadError(
      `${e.file ?? file}:${e.line ?? 1}:${e.column ?? 1}: ${e.code}: ${e.message}`,
      e.hint,
    );
  }
  return {
    policy: parsed.policy,
    label: file ?? (hermetic ? 'embedded hermetic' : 'embedded default'),
    parsed,
  };
}
