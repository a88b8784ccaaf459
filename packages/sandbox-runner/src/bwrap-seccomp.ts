/**
 * Seccomp under bubblewrap: nsjail compiles the policy's kafel text itself; bwrap only takes a
 * ready classic-BPF program (`--seccomp FD`). ktl compiles the same text, with the same
 * semantics, for the machine's architecture, and hands bwrap the bytes.
 */
import { readFileSync } from 'node:fs';
import {
  compileKafel,
  flattenKafelRules,
  hostKafelArch,
  type NsJailConfig,
  parseKafel,
  type SockFilter,
  seccompText,
  serializeBpf,
} from '@ktl/nsjail-config';
import type { Refusals } from './bwrap-support';
import { SandboxError } from './errors';

const HOST_ARCH = hostKafelArch();

/** The kafel text nsjail would compile: the inline strings, else the policy file. */
function kafelSource(p: NsJailConfig): { text: string; where: string } | undefined {
  const inline = seccompText(p);
  if (inline) return { text: inline.text, where: 'seccomp_string' };
  const file = p.seccomp_policy_file;
  if (!file) return undefined;
  try {
    return { text: readFileSync(file, 'utf8'), where: file };
  } catch (e) {
    throw new SandboxError(`policy error: seccomp_policy_file ${file}: ${(e as Error).message}`, {
      code: 'E_POLICY',
      hint: 'nsjail resolves it from its working directory; use an absolute path',
    });
  }
}

/** The compiled filter for a policy, or undefined when it has none. */
export function seccompProgram(p: NsJailConfig, refusals: Refusals): SockFilter[] | undefined {
  const src = kafelSource(p);
  if (!src) return undefined;
  const r = parseKafel(src.text, { arch: HOST_ARCH });
  if (!r.ok) {
    throw new SandboxError(
      `policy error: ${src.where}:${r.error.line}:${r.error.column}: ${r.error.message}`,
      {
        code: 'E_POLICY',
        hint: r.error.hint ?? 'check it with `ktl sandbox policy validate`',
      },
    );
  }
  // USER_NOTIF needs a supervisor listening on the notification fd; under bwrap nobody is,
  // and the call would hang forever.
  const rules = flattenKafelRules(r.program, r.program.main);
  const notify = [...rules.map((x) => x.action), r.program.defaultAction].some(
    (a) => a?.kind === 'USER_NOTIF',
  );
  if (notify) {
    refusals.refuse(
      'seccomp_string',
      'USER_NOTIF needs a supervisor on the notification fd, which bwrap does not provide',
    );
    return undefined;
  }
  return compileKafel(r.program, { arch: HOST_ARCH });
}

export function seccompBytes(prog: readonly SockFilter[]): Uint8Array {
  return serializeBpf(prog);
}
