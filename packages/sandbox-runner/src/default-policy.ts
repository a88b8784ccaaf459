/**
 * The policy run() uses when given neither policy nor policyFile: ktl's linux-ci policy
 * (testdata/sandbox/linux-ci.cfg), compiled into the library at build time so that what a run
 * is confined by never depends on a file someone could change on disk. Every namespace private,
 * the network too (loopback only); read-only /usr, /bin, /lib; a private /tmp; a seccomp
 * deny-list (no ptrace, mount, unshare/setns, bpf, keyrings, module loading, ...).
 */
import { type NsJailConfig, type ParsedPolicy, parsePolicy } from '@ktl/nsjail-config';
import text from '../../../testdata/sandbox/linux-ci.cfg';

/** How messages name the embedded default policy. */
export const DEFAULT_POLICY_ORIGIN = '<embedded default>';

/** The embedded default, parsed afresh on each call (with positions, for diagnostics). */
export function parsedDefaultPolicy(): ParsedPolicy {
  return parsePolicy(text, { filename: DEFAULT_POLICY_ORIGIN });
}

/**
 * The policy run() uses without policy or policyFile, as a new object each call: a starting
 * point to change (`{ ...defaultPolicy(), time_limit: 60 }`) and pass as `policy`.
 */
export function defaultPolicy(): NsJailConfig {
  return parsedDefaultPolicy().policy;
}
