/**
 * The checks nsjail itself makes when it starts (after parsing): a policy that fails one of
 * these parses fine but nsjail refuses to run it. Codes NSJ-V0xx are stable.
 */
import { effective, effectiveIn } from './defaults';
import {
  type Diagnostic,
  diagnosticFactory,
  type PolicyInput,
  sortDiagnostics,
  splitInput,
} from './diagnostics';
import { MountPt } from './schema/nsjail';
import { checkSeccomp } from './seccomp';
import { didYouMean } from './suggest';

/** Capability names nsjail knows (caps.cc), CAP_CHOWN (0) .. CAP_CHECKPOINT_RESTORE (40). */
export const CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;

const MACVLAN_MODES = ['private', 'vepa', 'bridge', 'passthru'];

export interface ValidateOptions {
  /** Architecture whose syscall names seccomp policies are checked against. */
  arch?: 'x86_64' | 'aarch64';
}

/** Returns every reason nsjail would refuse to start with this policy (severity error). */
export function validatePolicy(input: PolicyInput, opts: ValidateOptions = {}): Diagnostic[] {
  const { policy: p, source } = splitInput(input);
  const d = diagnosticFactory(source);
  const out: Diagnostic[] = [];

  if ((p.cgroup_mem_memsw_max ?? 0n) > 0n && (p.cgroup_mem_swap_max ?? -1n) >= 0n) {
    out.push(
      d(
        'error',
        'NSJ-V001',
        'cgroup_mem_swap_max',
        'cannot set both cgroup_mem_memsw_max and cgroup_mem_swap_max',
        'memsw is memory+swap (cgroup v1), swap_max is swap alone: keep one',
      ),
    );
  }
  if (
    p.seccomp_policy_file !== undefined &&
    p.seccomp_policy_file !== '' &&
    (p.seccomp_string?.length ?? 0) > 0
  ) {
    out.push(
      d(
        'error',
        'NSJ-V002',
        'seccomp_policy_file',
        'both seccomp_policy_file and seccomp_string are set; nsjail takes only one',
        'move the policy into one of them',
      ),
    );
  }
  if (p.user_net !== undefined && !effective(p, 'clone_newnet')) {
    out.push(
      d(
        'error',
        'NSJ-V003',
        'user_net',
        'user_net needs a network namespace, but clone_newnet is false',
        'set clone_newnet: true or remove user_net',
      ),
    );
  }
  const pasta = p.user_net?.pasta;
  if (pasta && pasta.ip4_enabled === false && pasta.ip6_enabled === false) {
    out.push(
      d(
        'error',
        'NSJ-V004',
        'user_net.pasta',
        'both IPv4 and IPv6 are disabled for user networking',
        'enable ip4_enabled or ip6_enabled',
      ),
    );
  }
  const macMode = effective(p, 'macvlan_vs_mo')!;
  if (!MACVLAN_MODES.includes(macMode.toLowerCase())) {
    out.push(
      d(
        'error',
        'NSJ-V005',
        'macvlan_vs_mo',
        `macvlan mode "${macMode}" is not one of ${MACVLAN_MODES.join(', ')}`,
      ),
    );
  }
  (p.cap ?? []).forEach((c, i) => {
    if (!(CAPABILITIES as readonly string[]).includes(c)) {
      out.push(
        d(
          'error',
          'NSJ-V006',
          `cap[${i}]`,
          `unknown capability "${c}"`,
          didYouMean(c, CAPABILITIES) ?? 'capabilities are written like "CAP_NET_BIND_SERVICE"',
        ),
      );
    }
  });
  const port = effective(p, 'port')!;
  if (effective(p, 'mode') === 'LISTEN' && (port < 1 || port > 65535)) {
    out.push(
      d(
        'error',
        'NSJ-V007',
        'port',
        `TCP port ${port} out of bounds for mode LISTEN (1 to 65535)`,
        'set port',
      ),
    );
  }
  if (p.oom_score_adj !== undefined && (p.oom_score_adj < -1000 || p.oom_score_adj > 1000)) {
    out.push(
      d(
        'error',
        'NSJ-V008',
        'oom_score_adj',
        `oom_score_adj ${p.oom_score_adj} is outside -1000..1000; the kernel refuses it`,
      ),
    );
  }
  for (const key of ['uidmap', 'gidmap'] as const) {
    (p[key] ?? []).forEach((m, i) => {
      for (const side of ['inside_id', 'outside_id'] as const) {
        const id = m[side] ?? '';
        if (/^[0-9]+$/.test(id) && BigInt(id) > 0xfffffffen) {
          out.push(
            d(
              'error',
              'NSJ-V009',
              `${key}[${i}].${side}`,
              `${side} ${id} is not a valid id (at most 4294967294)`,
            ),
          );
        }
      }
    });
  }
  (p.mount ?? []).forEach((m, i) => {
    const get = (k: string) => effectiveIn(m as Record<string, unknown>, MountPt.descriptor, k);
    const hasContent = m.src_content !== undefined;
    if (!m.src && !m.fstype && !hasContent && !get('is_symlink') && !m.prefix_src_env) {
      out.push(
        d(
          'error',
          'NSJ-V010',
          `mount[${i}]`,
          `mount[${i}] (dst "${m.dst}") has no src, fstype or src_content: there is nothing to mount`,
          'add fstype: "tmpfs", a src with is_bind: true, or src_content',
        ),
      );
    }
    if (get('is_symlink') && !m.src) {
      out.push(
        d('error', 'NSJ-V011', `mount[${i}]`, `mount[${i}] is a symlink without a target (src)`),
      );
    }
  });
  out.push(...checkSeccomp(p, source, opts.arch ?? 'x86_64'));
  return sortDiagnostics(out);
}
