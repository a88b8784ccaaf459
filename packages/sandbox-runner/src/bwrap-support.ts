/**
 * What the bubblewrap backend does with every field of nsjail's policy schema. A test checks
 * that SUPPORT covers `policyDescriptor.fields` exactly (and the mount/idmap tables their
 * messages), so a field added to the schema cannot be silently ignored by this backend.
 *
 * - enforced: translated into a bwrap flag, a host-side wrapper (prlimit, nice, taskset,
 *   setarch, choom), a cgroup the runner creates, or the runner's own supervision.
 * - refused: bwrap cannot enforce it; setting it is an E_UNENFORCEABLE error naming the field
 *   unless the caller lists it in `allowUnenforced` (or uses nsjail, where `refusedUnderNsjail`
 *   does not say the runner refuses it there as well).
 * - irrelevant: it configures nsjail itself (logging, LISTEN mode) or only matters together
 *   with a refused field; nothing in the jail depends on it.
 * An enforced field may still refuse particular values (`refuse` answers why).
 */
import { type IdMap, type MountPt, type NsJailConfig, policyDescriptor } from '@ktl/nsjail-config';
import { eff } from './eff';

export type SupportKind = 'enforced' | 'refused' | 'irrelevant';

export interface FieldSupport {
  readonly kind: SupportKind;
  /** How it is enforced, or why it cannot be / need not be. */
  readonly note: string;
  /** Why this policy's value of the field cannot be enforced; undefined when it can. */
  readonly refuse?: (p: NsJailConfig) => string | undefined;
  /** The runner refuses it under nsjail too (plan.ts), so nsjail is no way around it. */
  readonly refusedUnderNsjail?: true;
}

type Table<K extends string> = Readonly<Record<K, FieldSupport>>;

const enforced = (note: string, refuse?: FieldSupport['refuse']): FieldSupport =>
  refuse ? { kind: 'enforced', note, refuse } : { kind: 'enforced', note };
const irrelevant = (note: string): FieldSupport => ({ kind: 'irrelevant', note });
const refused = (
  note: string,
  isSet: (p: NsJailConfig) => boolean,
  where?: { underNsjailToo: true },
): FieldSupport => ({
  kind: 'refused',
  note,
  refuse: (p) => (isSet(p) ? note : undefined),
  ...(where ? { refusedUnderNsjail: true } : {}),
});

const RLIMIT = enforced(
  "prlimit (util-linux) wraps bwrap and sets soft = hard = nsjail's value in nsjail's units; " +
    'limits are inherited by the jailed command',
);
const PERSONA = enforced('setarch wraps bwrap; the personality is inherited across exec');
const CGROUP_WHERE = enforced('where the runner creates the jail cgroup (as nsjail does)');
const CGROUP_LIMIT = enforced(
  'the runner creates NSJAIL.<pid> under the parent, writes the limit and moves the jail in ' +
    'while bwrap is held before exec (--block-fd), so nothing escapes the limit',
);
const NS = (flag: string) => enforced(`${flag} when true`);
const LISTEN_ONLY = irrelevant('only used by mode LISTEN, which bwrap refuses');
const MACVLAN = irrelevant('only used with macvlan_iface, which bwrap refuses');
const nonEmpty = (v: readonly unknown[] | undefined) => (v?.length ?? 0) > 0;

export const SUPPORT: Table<string> = {
  name: irrelevant('a label for people; nothing in the jail depends on it'),
  description: irrelevant('free text for people; nothing in the jail depends on it'),
  mode: enforced('ONCE and EXECVE run the command once under bwrap', (p) => {
    const m = eff(p, 'mode');
    return m === 'LISTEN' || m === 'RERUN'
      ? `mode ${m} needs nsjail's supervisor (serving a port / re-running); bwrap runs once`
      : undefined;
  }),
  hostname: enforced('--hostname (with clone_newuts, like nsjail)'),
  cwd: enforced('--chdir'),
  no_pivotroot: irrelevant('bwrap always uses pivot_root, the stronger choice'),
  port: LISTEN_ONLY,
  bindhost: LISTEN_ONLY,
  max_conns: LISTEN_ONLY,
  max_conns_per_ip: LISTEN_ONLY,
  time_limit: enforced('the runner kills the jail when it runs out (not in mode EXECVE)'),
  daemon: refused(
    'daemon detaches the jail from its supervisor; the runner must supervise the command',
    (p) => p.daemon === true,
    { underNsjailToo: true },
  ),
  max_cpus: enforced('taskset wraps bwrap with max_cpus CPUs of the current affinity'),
  nice_level: enforced('nice wraps bwrap; the niceness is inherited'),
  log_fd: irrelevant("nsjail's own log; the runner collects the runtime log itself"),
  log_file: irrelevant("nsjail's own log; the runner collects the runtime log itself"),
  log_level: irrelevant("verbosity of nsjail's own log"),
  keep_env: enforced('--clearenv unless true'),
  envar: enforced("--setenv; a bare K copies K from the caller's environment"),
  keep_caps: enforced('--cap-drop ALL unless true (bwrap as root keeps every capability)'),
  cap: enforced('--cap-add for each'),
  silent: enforced('the runner gives the command /dev/null-like stdio and discards its output'),
  skip_setsid: enforced('--new-session unless true'),
  stderr_to_null: enforced("the runner discards the command's stderr"),
  pass_fd: refused('the runner passes only descriptors 0, 1 and 2 into the jail', (p) =>
    nonEmpty(p.pass_fd),
  ),
  disable_no_new_privs: refused(
    'bwrap always sets no_new_privs',
    (p) => p.disable_no_new_privs === true,
  ),
  forward_signals: enforced(
    "the runner sends the signal to the command's pid instead of SIGKILLing the jail",
  ),
  disable_tsc: refused(
    'bwrap has no way to call prctl(PR_SET_TSC) in the jail',
    (p) => p.disable_tsc === true,
  ),
  oom_score_adj: enforced('choom wraps bwrap; the score is inherited'),
  rlimit_as: RLIMIT,
  rlimit_as_type: RLIMIT,
  rlimit_core: RLIMIT,
  rlimit_core_type: RLIMIT,
  rlimit_cpu: RLIMIT,
  rlimit_cpu_type: RLIMIT,
  rlimit_fsize: RLIMIT,
  rlimit_fsize_type: RLIMIT,
  rlimit_nofile: RLIMIT,
  rlimit_nofile_type: RLIMIT,
  rlimit_nproc: RLIMIT,
  rlimit_nproc_type: RLIMIT,
  rlimit_stack: RLIMIT,
  rlimit_stack_type: RLIMIT,
  rlimit_memlock: RLIMIT,
  rlimit_memlock_type: RLIMIT,
  rlimit_rtprio: RLIMIT,
  rlimit_rtprio_type: RLIMIT,
  rlimit_msgqueue: RLIMIT,
  rlimit_msgqueue_type: RLIMIT,
  disable_rl: enforced('no prlimit wrapper: the command inherits the caller limits'),
  persona_addr_compat_layout: PERSONA,
  persona_mmap_page_zero: PERSONA,
  persona_read_implies_exec: PERSONA,
  persona_addr_limit_3gb: PERSONA,
  persona_addr_no_randomize: PERSONA,
  clone_newnet: NS('--unshare-net (only lo, up)'),
  clone_newuser: NS('--unshare-user with --uid/--gid'),
  clone_newns: enforced('bwrap always makes a mount namespace', (p) =>
    eff(p, 'clone_newns') ? undefined : 'bwrap always creates a new mount namespace',
  ),
  clone_newpid: NS('--unshare-pid --as-pid-1 (the command is pid 1, as in nsjail)'),
  clone_newipc: NS('--unshare-ipc'),
  clone_newuts: NS('--unshare-uts'),
  clone_newcgroup: NS('--unshare-cgroup (never the -try form: failing is safer)'),
  clone_newtime: refused('bwrap cannot create a time namespace', (p) => p.clone_newtime === true),
  uidmap: enforced('one map of count 1 from the current uid: --uid (see IDMAP_SUPPORT)'),
  gidmap: enforced('one map of count 1 from the current gid: --gid (see IDMAP_SUPPORT)'),
  mount_proc: enforced('--proc /proc, remounted read-only'),
  mount: enforced('translated in order (see MOUNT_SUPPORT), then / is remounted read-only'),
  seccomp_policy_file: enforced(
    'kafel file compiled to BPF by ktl (same semantics as nsjail; x32 refused) and passed with --seccomp FD',
  ),
  seccomp_string: enforced(
    'kafel compiled to BPF by ktl (same semantics as nsjail; x32 refused) and passed with --seccomp FD; USER_NOTIF refused',
  ),
  seccomp_log: refused('bwrap cannot set SECCOMP_FILTER_FLAG_LOG', (p) => p.seccomp_log === true),
  seccomp_unotify: refused(
    "nsjail's seccomp user-notification tracer has no bwrap equivalent",
    (p) => p.seccomp_unotify === true,
  ),
  seccomp_unotify_report: refused(
    "nsjail's seccomp user-notification report has no bwrap equivalent",
    (p) => (p.seccomp_unotify_report ?? '') !== '',
  ),
  use_core_scheduling: refused(
    'bwrap cannot call prctl(PR_SCHED_CORE) in the jail',
    (p) => p.use_core_scheduling === true,
  ),
  cgroup_mem_max: CGROUP_LIMIT,
  cgroup_mem_memsw_max: CGROUP_LIMIT,
  cgroup_mem_swap_max: CGROUP_LIMIT,
  cgroup_mem_mount: CGROUP_WHERE,
  cgroup_mem_parent: CGROUP_WHERE,
  cgroup_pids_max: CGROUP_LIMIT,
  cgroup_pids_mount: CGROUP_WHERE,
  cgroup_pids_parent: CGROUP_WHERE,
  cgroup_net_cls_classid: enforced(
    'cgroup v1 net_cls.classid (nsjail ignores it under cgroup v2, and so does the runner)',
  ),
  cgroup_net_cls_mount: CGROUP_WHERE,
  cgroup_net_cls_parent: CGROUP_WHERE,
  cgroup_cpu_ms_per_sec: CGROUP_LIMIT,
  cgroup_cpu_mount: CGROUP_WHERE,
  cgroup_cpu_parent: CGROUP_WHERE,
  cgroupv2_mount: CGROUP_WHERE,
  use_cgroupv2: CGROUP_WHERE,
  detect_cgroupv2: CGROUP_WHERE,
  iface_no_lo: refused(
    'bwrap always brings lo up in a new network namespace',
    (p) => p.iface_no_lo === true,
  ),
  iface_own: refused('bwrap cannot move host interfaces into the jail', (p) =>
    nonEmpty(p.iface_own),
  ),
  macvlan_iface: refused(
    'bwrap cannot give the jail a MACVLAN interface',
    (p) => (p.macvlan_iface ?? '') !== '',
  ),
  macvlan_vs_ip: MACVLAN,
  macvlan_vs_nm: MACVLAN,
  macvlan_vs_gw: MACVLAN,
  macvlan_vs_ma: MACVLAN,
  macvlan_vs_mo: MACVLAN,
  traffic_rule: refused('bwrap has no packet filter for the jail network', (p) =>
    nonEmpty(p.traffic_rule),
  ),
  user_net: refused(
    'bwrap has no user-mode network stack (nstun/pasta)',
    (p) => p.user_net !== undefined,
  ),
  exec_bin: refused(
    'the runner runs the command given to run(); a policy exec_bin would replace it',
    (p) => p.exec_bin !== undefined,
    { underNsjailToo: true },
  ),
};

export const MOUNT_SUPPORT: Table<keyof MountPt> = {
  src: enforced('bind source'),
  prefix_src_env: enforced("resolved from the caller's environment when planning"),
  src_content: enforced('--ro-bind-data/--bind-data from a pipe, mode 0644'),
  dst: enforced('mount point in the jail'),
  prefix_dst_env: enforced("resolved from the caller's environment when planning"),
  fstype: enforced('tmpfs (--tmpfs), proc (--proc), mqueue (--mqueue); others are refused'),
  options: enforced('tmpfs size= and mode= (--size/--perms); any other option is refused'),
  is_bind: enforced('--bind/--ro-bind, or --dev-bind when nodev is false'),
  rw: enforced('read-only unless rw (--ro-bind, or --remount-ro after tmpfs/proc)'),
  is_dir: enforced('bwrap derives it from the source, as nsjail does when unset'),
  mandatory: enforced('--*-try forms for binds when false; other mounts always fail hard'),
  is_symlink: enforced('--symlink'),
  nosuid: enforced('bwrap always mounts nosuid (and sets no_new_privs)'),
  nodev: enforced('--bind is nodev; nodev false binds with --dev-bind; tmpfs/proc are nodev'),
  noexec: enforced('only proc mounts are noexec under bwrap; noexec elsewhere is refused'),
};

export const IDMAP_SUPPORT: Table<keyof IdMap> = {
  inside_id: enforced('--uid/--gid (numbers or names from the host passwd/group)'),
  outside_id: enforced('must be the caller id: bwrap maps only the caller id without helpers'),
  count: enforced('must be 1: bwrap maps exactly one id'),
  use_newidmap: { kind: 'refused', note: 'bwrap does not use newuidmap/newgidmap' },
};

const SUB: Record<string, Table<string>> = {
  mount: MOUNT_SUPPORT,
  uidmap: IDMAP_SUPPORT,
  gidmap: IDMAP_SUPPORT,
};

/** `seccomp_string`, `mount`, `mount.noexec`, `uidmap.count`: names allowUnenforced accepts. */
export function isKnownFieldPath(path: string): boolean {
  const [top, sub, ...rest] = path.split('.');
  if (rest.length > 0 || top === undefined || !policyDescriptor.byName.has(top)) return false;
  if (sub === undefined) return true;
  return SUB[top]?.[sub] !== undefined;
}

export interface Refusal {
  readonly field: string;
  readonly why: string;
}

/** Collects fields bwrap cannot enforce; those the caller allowed are noted instead. */
export class Refusals {
  readonly refused: Refusal[] = [];
  readonly allowed: Refusal[] = [];
  constructor(private readonly allow: ReadonlySet<string>) {}

  /** Returns true when the caller allowed leaving `field` unenforced. */
  refuse(field: string, why: string): boolean {
    const top = field.split(/[.[]/)[0]!;
    const generic = field.replace(/\[\d+\]/g, '');
    if (this.allow.has(field) || this.allow.has(generic) || this.allow.has(top)) {
      this.allowed.push({ field, why });
      return true;
    }
    this.refused.push({ field, why });
    return false;
  }
}

/** Checks every top-level field; mounts and id maps are checked while translating them. */
export function checkTopLevel(p: NsJailConfig, refusals: Refusals): void {
  for (const f of policyDescriptor.fields) {
    const why = SUPPORT[f.name]?.refuse?.(p);
    if (why !== undefined) refusals.refuse(f.name, why);
  }
}
