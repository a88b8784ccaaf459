/**
 * Errors in a policy that parses: what nsjail refuses when it starts (or the jail cannot run
 * under it at all), and what nsjail only warns about but ktl refuses, because the jail would
 * not be what the policy says. Each message says which of the two it is, as checked against
 * nsjail itself (test/nsjail-validate.test.ts). Codes NSJ-V0xx are stable.
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

/**
 * Returns every reason the policy cannot run as written (severity error): nsjail refuses it,
 * or nsjail would run a jail other than the one written and ktl refuses it.
 */
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
        'cannot set both cgroup_mem_memsw_max and cgroup_mem_swap_max: nsjail refuses to start',
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
        'both seccomp_policy_file and seccomp_string are set: nsjail refuses to start ("Specify one only")',
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
        'user_net needs a network namespace, but clone_newnet is false: nsjail cannot start the jail',
        'set clone_newnet: true or remove user_net',
      ),
    );
  }
  const pasta = p.user_net?.pasta;
  if (
    (p.user_net?.backend ?? 'NSTUN') === 'PASTA' &&
    pasta?.ip4_enabled === false &&
    pasta.ip6_enabled === false
  ) {
    out.push(
      d(
        'error',
        'NSJ-V004',
        'user_net.pasta',
        'both IPv4 and IPv6 are disabled for user networking: pasta exits at once and nsjail kills the jail (the command may already have started)',
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
        `macvlan mode "${macMode}" is not one of ${MACVLAN_MODES.join(', ')}: ${
          p.macvlan_iface
            ? 'the kernel refuses to create the interface and nsjail does not start the jail'
            : 'nsjail ignores it while macvlan_iface is unset and fails to create the interface once it is set; ktl refuses it now'
        }`,
        "use one of them (nsjail's default is private)",
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
          `unknown capability "${c}": nsjail only warns ("Unknown capability") and starts the jail without it; ktl refuses it, so a misspelt capability is not silently dropped`,
          didYouMean(c, CAPABILITIES) ?? 'capabilities are written like "CAP_NET_BIND_SERVICE"',
        ),
      );
    }
  });
  const port = effective(p, 'port')!;
  if (effective(p, 'mode') === 'LISTEN' && port > 65535) {
    out.push(
      d(
        'error',
        'NSJ-V007',
        'port',
        `TCP port ${port} out of bounds for mode LISTEN (1 to 65535): nsjail refuses to start`,
        'set port to the port to listen on',
      ),
    );
  } else if (effective(p, 'mode') === 'LISTEN' && port === 0) {
    out.push(
      d(
        'error',
        'NSJ-V007',
        'port',
        `mode LISTEN with port ${p.port === undefined ? 'unset (0)' : '0'}: nsjail listens on a port the kernel picks and names it only in its log; ktl refuses it, since no client could know where to connect`,
        'set port to the port to listen on (1 to 65535)',
      ),
    );
  }
  if (p.oom_score_adj !== undefined && (p.oom_score_adj < -1000 || p.oom_score_adj > 1000)) {
    out.push(
      d(
        'error',
        'NSJ-V008',
        'oom_score_adj',
        `oom_score_adj ${p.oom_score_adj} is outside -1000..1000: the kernel refuses it, nsjail only warns and runs the command with the score it inherited; ktl refuses it, so the policy does not claim a score the jail never gets`,
        'use a value from -1000 (never killed first) to 1000 (killed first)',
      ),
    );
  }
  for (const key of ['uidmap', 'gidmap'] as const) {
    const what = key === 'uidmap' ? 'UID' : 'GID';
    (p[key] ?? []).forEach((m, i) => {
      for (const side of ['inside_id', 'outside_id'] as const) {
        const id = m[side] ?? '';
        if (/^[0-9]+$/.test(id) && BigInt(id) > 0xfffffffen) {
          const n = BigInt(id);
          out.push(
            d(
              'error',
              'NSJ-V009',
              `${key}[${i}].${side}`,
              n === 0xffffffffn
                ? `${side} ${id} is not a valid id (at most 4294967294): nsjail refuses the policy ("Cannot parse '${id}' as ${what}")`
                : `${side} ${id} is not a valid id (at most 4294967294): nsjail takes it modulo 2^32, as ${what} ${n % 0x100000000n}; ktl refuses it, since the id mapped would not be the one written`,
              `use an id from 0 to 4294967294 (4294967295 is (${key === 'uidmap' ? 'uid' : 'gid'}_t)-1, "no id")`,
            ),
          );
        }
      }
    });
  }
  (p.mount ?? []).forEach((m, i) => {
    const get = (k: string) => effectiveIn(m as Record<string, unknown>, MountPt.descriptor, k);
    const hasContent = m.src_content !== undefined;
    // nsjail refuses to start when a mandatory mount fails; a non-mandatory one it skips with
    // a warning, which for these two is every time: ktl refuses a mount that can never exist.
    const outcome = get('mandatory')
      ? 'nsjail refuses to start the jail'
      : 'nsjail skips it with a warning every time (mandatory: false); ktl refuses a mount that can never be made';
    if (!m.src && !m.fstype && !hasContent && !get('is_symlink') && !m.prefix_src_env) {
      out.push(
        d(
          'error',
          'NSJ-V010',
          `mount[${i}]`,
          `mount[${i}] (dst "${m.dst}") has no src, fstype or src_content, so there is nothing to mount: ${outcome}`,
          'add fstype: "tmpfs", a src with is_bind: true, or src_content',
        ),
      );
    }
    if (get('is_symlink') && !m.src) {
      out.push(
        d(
          'error',
          'NSJ-V011',
          `mount[${i}]`,
          `mount[${i}] is a symlink without a target (src): ${outcome}`,
          'set src to the path the link points to',
        ),
      );
    }
  });
  if (p.exec_bin?.path === '') {
    out.push(
      d(
        'error',
        'NSJ-V014',
        'exec_bin.path',
        p.exec_bin.exec_fd
          ? 'exec_bin has an empty path: nsjail cannot open it for exec_fd and refuses to start'
          : 'exec_bin has an empty path: nsjail runs execve("") whatever command line it is given, which always fails (ENOENT), so the jail never runs',
        'set path to the program to run, or remove exec_bin to run the command given on the command line',
      ),
    );
  }
  out.push(...checkSeccomp(p, source, opts.arch ?? 'x86_64'));
  return sortDiagnostics(out);
}
