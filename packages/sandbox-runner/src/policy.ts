/**
 * The effective policy of a run: the policy, the file, or (neither given) the embedded default,
 * plus the caller's binds, env and cwd.
 */
import { readFileSync } from 'node:fs';
import {
  assertPolicy,
  formatDiagnostic,
  type NsJailConfig,
  type ParsedPolicy,
  parsePolicy,
  validatePolicy,
  withBinds,
  withEnv,
} from '@ktl/nsjail-config';
import { DEFAULT_POLICY_ORIGIN, parsedDefaultPolicy } from './default-policy';
import { SandboxError } from './errors';
import type { NormalizedOptions, RunOptions } from './options';

export interface EffectivePolicy {
  readonly policy: NsJailConfig;
  /** Where it came from, for messages. */
  readonly origin: string;
}

function read(file: string): ParsedPolicy {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SandboxError(`cannot read policyFile ${file}: ${code ?? String(e)}`, {
      code: 'E_POLICY',
      cause: e,
      hint: code === 'ENOENT' ? 'check the path given as policyFile' : undefined,
    });
  }
  try {
    return parsePolicy(bytes, { filename: file });
  } catch (e) {
    throw SandboxError.from(e);
  }
}

export function loadPolicy(o: RunOptions, n: NormalizedOptions): EffectivePolicy {
  let input: ParsedPolicy | NsJailConfig;
  let policy: NsJailConfig;
  const origin = o.policyFile ?? (o.policy === undefined ? DEFAULT_POLICY_ORIGIN : '<policy>');
  if (o.policyFile !== undefined) {
    input = read(o.policyFile);
    policy = input.policy;
  } else if (o.policy === undefined) {
    input = parsedDefaultPolicy();
    policy = input.policy;
  } else {
    try {
      assertPolicy(o.policy);
    } catch (e) {
      throw SandboxError.from(e);
    }
    policy = o.policy;
    input = policy;
  }
  // Whatever nsjail itself would refuse is refused on every runtime, with file:line:col.
  const errors = validatePolicy(input).filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    throw new SandboxError(`policy error: nsjail would refuse ${origin}`, {
      code: 'E_POLICY',
      details: errors.map((d) => `  ${formatDiagnostic(d, origin)}`),
    });
  }
  if (n.binds.length > 0) policy = withBinds(policy, n.binds);
  if (Object.keys(n.env).length > 0) policy = withEnv(policy, n.env);
  if (n.cwd !== undefined) policy = { ...policy, cwd: n.cwd };
  return { policy, origin };
}
