/**
 * nsjail's NsJailConfig (config.proto) as of nsjail revision NSJAIL_REVISION, field for field:
 * names, numbers, types, labels and proto2 defaults are nsjail's; the descriptions are ours.
 * Unset means "nsjail's default" (shown per field); for repeated fields unset and empty mean
 * the same thing: nothing of that kind.
 */
import type { z } from 'zod';
import { defineEnum, defineMessage, field } from './builders';

/** The nsjail commit this schema mirrors (main branch, June 2026, after 3.6). */
export const NSJAIL_REVISION = 'd6454b4640b6d8699b532a8afa37e4d67e477078';

export const Mode = defineEnum(
  'nsjail.Mode',
  'How nsjail runs the command.',
  ['LISTEN', 'ONCE', 'RERUN', 'EXECVE'],
  [
    [0, 'Serve a TCP port, one jail per connection.'],
    [1, 'Run the command once and exit with its status.'],
    [2, 'Run the command again every time it exits.'],
    [3, 'Exec the command directly, with no supervising nsjail process.'],
  ],
);

export const LogLevel = defineEnum(
  'nsjail.LogLevel',
  "Lowest severity of nsjail's own log lines that is shown.",
  ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'FATAL'],
  [
    [0, 'Everything (like -v).'],
    [1, 'Informational and above (the default).'],
    [2, 'Warnings and above (like -q).'],
    [3, 'Errors and above.'],
    [4, 'Fatal errors only.'],
  ],
);

export const RLimitType = defineEnum(
  'nsjail.RLimit',
  'Where a resource limit comes from.',
  ['VALUE', 'SOFT', 'HARD', 'INF'],
  [
    [0, "The number in the matching rlimit_* field (in that field's unit)."],
    [1, "nsjail's own current soft limit."],
    [2, "nsjail's own current hard limit."],
    [3, 'Unlimited (RLIM64_INFINITY).'],
  ],
);

export const IdMap = defineMessage(
  'nsjail.IdMap',
  'One uid or gid mapping of the user namespace.',
  {
    inside_id: field.string(1, 'First id inside the jail; empty means the current id.', {
      default: '',
    }),
    outside_id: field.string(2, 'First id outside the jail; empty means the current id.', {
      default: '',
    }),
    count: field.uint32(3, 'How many consecutive ids are mapped (see user_namespaces(7)).', {
      default: 1,
    }),
    use_newidmap: field.bool(4, 'Write the map with the setuid newuidmap/newgidmap helpers.', {
      default: false,
    }),
  },
);

export const MountPt = defineMessage(
  'nsjail.MountPt',
  'One mount (or symlink, or file) inside the jail.',
  {
    src: field.string(1, 'Host path (bind) or source; may be empty for proc, tmpfs and the like.', {
      default: '',
    }),
    prefix_src_env: field.string(
      2,
      'Name of an environment variable whose value is prepended to src.',
      {
        default: '',
      },
    ),
    src_content: field.bytes(3, 'Bytes written to a new file at dst instead of mounting src.', {
      default: '',
    }),
    dst: field.requiredString(4, 'Path inside the jail.'),
    prefix_dst_env: field.string(
      5,
      'Name of an environment variable whose value is prepended to dst.',
      {
        default: '',
      },
    ),
    fstype: field.string(6, 'Filesystem type (tmpfs, proc, ...); empty for bind mounts.', {
      default: '',
    }),
    options: field.string(7, 'Mount data, e.g. "size=5000000" for tmpfs.', { default: '' }),
    is_bind: field.bool(8, 'A bind mount of src at dst.', { default: false }),
    rw: field.bool(9, 'Writable; otherwise the mount is read-only.', { default: false }),
    is_dir: field.bool(10, 'Whether dst is a directory; unset lets nsjail look at src.'),
    mandatory: field.bool(11, 'Fail the jail when this mount cannot be made.', { default: true }),
    is_symlink: field.bool(12, 'Create dst as a symlink pointing at src instead of mounting.', {
      default: false,
    }),
    nosuid: field.bool(13, 'Mount with MS_NOSUID.', { default: false }),
    nodev: field.bool(14, 'Mount with MS_NODEV.', { default: false }),
    noexec: field.bool(15, 'Mount with MS_NOEXEC.', { default: false }),
  },
);

export const Exe = defineMessage('nsjail.Exe', 'The program to run, when not given after `--`.', {
  path: field.requiredString(1, 'Path of the program; also argv[0] unless arg0 is set.'),
  arg: field.repeatedString(2, 'argv[1] onwards.'),
  arg0: field.string(3, 'Replacement for argv[0].'),
  exec_fd: field.bool(4, 'Run the program through execveat() on an open descriptor.', {
    default: false,
  }),
});

export const TrafficAction = defineEnum(
  'nsjail.NsJailConfig.TrafficRule.TrafficAction',
  'What a traffic rule does with matching packets.',
  ['UNKNOWN_ACTION', 'DROP', 'REJECT', 'ALLOW'],
  [
    [0, 'Not set.'],
    [1, 'Discard silently.'],
    [2, 'Discard and answer with ICMP unreachable or TCP RST.'],
    [3, 'Let through.'],
  ],
);
export const IpFamily = defineEnum(
  'nsjail.NsJailConfig.TrafficRule.IpFamily',
  'Address family of a traffic rule.',
  ['IPV4', 'IPV6'],
  [
    [0, 'IPv4.'],
    [1, 'IPv6.'],
  ],
);
export const TrafficProtocol = defineEnum(
  'nsjail.NsJailConfig.TrafficRule.Protocol',
  'Transport protocol a traffic rule matches.',
  ['UNKNOWN_PROTO', 'TCP', 'UDP', 'ICMP', 'ICMPV6'],
  [
    [0, 'Any protocol.'],
    [1, 'TCP.'],
    [2, 'UDP.'],
    [3, 'ICMP.'],
    [4, 'ICMPv6.'],
  ],
);

export const TrafficRule = defineMessage(
  'nsjail.NsJailConfig.TrafficRule',
  'A packet filter rule for the jail network.',
  {
    src_ip: field.string(1, 'Source address or CIDR to match.'),
    dst_ip: field.string(2, 'Destination address or CIDR to match.'),
    iif: field.string(3, 'Input interface to match.'),
    oif: field.string(4, 'Output interface to match.'),
    proto: field.enum(5, TrafficProtocol, 'Protocol to match.', { default: 'UNKNOWN_PROTO' }),
    sport: field.uint32(6, 'Source port (start of range).'),
    dport: field.uint32(7, 'Destination port (start of range).'),
    sport_end: field.uint32(8, 'End of the source port range.'),
    dport_end: field.uint32(9, 'End of the destination port range.'),
    action: field.enum(10, TrafficAction, 'What to do with matching packets.', { default: 'DROP' }),
    ip_family: field.enum(15, IpFamily, 'Address family.', { default: 'IPV4' }),
  },
);

export const UserNetBackend = defineEnum(
  'nsjail.NsJailConfig.UserNet.Backend',
  'Which user-mode network stack gives the jail its network.',
  ['NSTUN', 'PASTA'],
  [
    [0, "nsjail's built-in TUN stack."],
    [1, 'The external pasta program.'],
  ],
);

export const Pasta = defineMessage(
  'nsjail.NsJailConfig.UserNet.Pasta',
  'Settings of the pasta backend.',
  {
    nat: field.bool(1, 'Translate addresses (user-mode NAT).', { default: true }),
    enable_tcp: field.bool(2, 'Forward TCP.', { default: true }),
    enable_udp: field.bool(3, 'Forward UDP.', { default: true }),
    enable_icmp: field.bool(4, 'Forward ICMP.', { default: true }),
    ip4_enabled: field.bool(5, 'Give the jail IPv4.', { default: true }),
    mask4: field.string(6, 'IPv4 netmask inside the jail.', { default: '255.255.255.0' }),
    enable_ip4_dhcp: field.bool(7, 'Answer DHCPv4 from pasta.', { default: false }),
    ip6_enabled: field.bool(8, 'Give the jail IPv6.', { default: true }),
    mask6: field.string(9, 'IPv6 prefix length inside the jail.', { default: '64' }),
    enable_ip6_dhcp: field.bool(10, 'Answer DHCPv6 from pasta.', { default: false }),
    enable_ip6_ra: field.bool(11, 'Send IPv6 router advertisements.', { default: false }),
    enable_dns: field.bool(12, 'Announce a DNS server to the jail.', { default: false }),
    dns_forward: field.string(13, 'Address the jail sees that is forwarded to the host resolver.', {
      default: '',
    }),
    map_gw: field.bool(14, 'Connections to the gateway address reach the host.', { default: true }),
    tcp_map_in: field.string(15, 'TCP ports forwarded from the host into the jail.', {
      default: 'none',
    }),
    udp_map_in: field.string(16, 'UDP ports forwarded from the host into the jail.', {
      default: 'none',
    }),
    tcp_map_out: field.string(17, 'TCP ports forwarded from the jail to the host.', {
      default: 'none',
    }),
    udp_map_out: field.string(18, 'UDP ports forwarded from the jail to the host.', {
      default: 'none',
    }),
  },
);

export const NstunDirection = defineEnum(
  'nsjail.NsJailConfig.UserNet.NstunRule.Direction',
  'Which way a connection goes.',
  ['GUEST_TO_HOST', 'HOST_TO_GUEST'],
  [
    [0, 'Opened from inside the jail.'],
    [1, 'Opened from the host towards the jail.'],
  ],
);
export const NstunAction = defineEnum(
  'nsjail.NsJailConfig.UserNet.NstunRule.Action',
  'What an nstun rule does.',
  ['DROP', 'REJECT', 'ALLOW', 'REDIRECT', 'ENCAP_SOCKS5', 'ENCAP_CONNECT'],
  [
    [0, 'Discard silently.'],
    [1, 'Refuse.'],
    [2, 'Let through.'],
    [3, 'Send to redirect_ip:redirect_port instead.'],
    [4, 'Tunnel through a SOCKS5 proxy at redirect_ip:redirect_port.'],
    [5, 'Tunnel through an HTTP CONNECT proxy at redirect_ip:redirect_port.'],
  ],
);
export const NstunProtocol = defineEnum(
  'nsjail.NsJailConfig.UserNet.NstunRule.Protocol',
  'Protocol an nstun rule matches.',
  ['ANY', 'TCP', 'UDP', 'ICMP'],
  [
    [0, 'Any protocol.'],
    [1, 'TCP.'],
    [2, 'UDP.'],
    [3, 'ICMP.'],
  ],
);

export const NstunRule = defineMessage(
  'nsjail.NsJailConfig.UserNet.NstunRule',
  'A firewall/NAT rule of the nstun backend.',
  {
    direction: field.enum(11, NstunDirection, 'Direction of the connection.', {
      default: 'GUEST_TO_HOST',
    }),
    action: field.enum(1, NstunAction, 'What to do with a match.', { default: 'ALLOW' }),
    proto: field.enum(2, NstunProtocol, 'Protocol to match.', { default: 'ANY' }),
    src_ip: field.string(3, 'Source network ("x.x.x.x/yy" or an address).'),
    sport: field.uint32(4, 'Source port (start of range).'),
    sport_end: field.uint32(5, 'End of the source port range.'),
    dst_ip: field.string(6, 'Destination network.'),
    dport: field.uint32(
      7,
      'Destination port (start of range; the listening port for HOST_TO_GUEST).',
    ),
    dport_end: field.uint32(8, 'End of the destination port range.'),
    redirect_ip: field.string(9, 'Target address of REDIRECT and ENCAP_* actions.'),
    redirect_port: field.uint32(10, 'Target port of REDIRECT and ENCAP_* actions.'),
  },
);

export const UserNet = defineMessage(
  'nsjail.NsJailConfig.UserNet',
  'User-mode networking for a jail in its own network namespace (needs clone_newnet).',
  {
    backend: field.enum(1, UserNetBackend, 'Which stack provides the network.', {
      default: 'NSTUN',
    }),
    pasta: field.message(2, Pasta, 'pasta settings (backend PASTA).'),
    rule4: field.repeatedMessage(
      3,
      NstunRule,
      'IPv4 rules of the nstun backend, first match wins.',
    ),
    rule6: field.repeatedMessage(
      12,
      NstunRule,
      'IPv6 rules of the nstun backend, first match wins.',
    ),
    ip4: field.string(4, 'IPv4 address of the jail.', { default: '10.255.255.2' }),
    gw4: field.string(5, 'IPv4 gateway of the jail.', { default: '10.255.255.1' }),
    ip6: field.string(6, 'IPv6 address of the jail.', { default: 'fc00::2' }),
    gw6: field.string(7, 'IPv6 gateway of the jail.', { default: 'fc00::1' }),
    ns_iface: field.string(8, 'Interface name inside the jail.', { default: 'eth0' }),
  },
);

const rl = (n: number, what: string, unit: string, def: bigint) =>
  field.uint64(n, `${what} limit, in ${unit}; used when the matching *_type is VALUE.`, {
    default: def,
  });
const rlType = (n: number, what: string, def: 'VALUE' | 'SOFT') =>
  field.enum(n, RLimitType, `Where the ${what} limit comes from.`, { default: def });
const cg = (what: string) => `Mount point of the cgroup v1 ${what} controller.`;
const cgParent = (what: string) =>
  `Directory under the ${what} controller, writable by nsjail, that holds the jails' cgroups.`;

export const NsJailConfig = defineMessage('nsjail.NsJailConfig', 'An nsjail sandbox policy.', {
  name: field.string(1, 'Name of the policy.', { default: '' }),
  description: field.repeatedString(2, 'Free-form description lines.'),
  mode: field.enum(3, Mode, 'How the command is run.', { default: 'ONCE' }),
  hostname: field.string(4, 'Hostname inside the jail (with clone_newuts).', { default: 'NSJAIL' }),
  cwd: field.string(5, 'Working directory of the command inside the jail.', { default: '/' }),
  no_pivotroot: field.bool(6, 'Use switch_root-style chroot instead of pivot_root (weaker).', {
    default: false,
  }),
  port: field.uint32(7, 'TCP port to serve (mode LISTEN only).', { default: 0 }),
  bindhost: field.string(8, 'Address to serve on in mode LISTEN, in IPv6 notation.', {
    default: '::',
  }),
  max_conns: field.uint32(9, 'Mode LISTEN: most connections at once; 0 is no limit.', {
    default: 0,
  }),
  max_conns_per_ip: field.uint32(
    10,
    'Mode LISTEN: most connections from one address; 0 is no limit.',
    {
      default: 0,
    },
  ),
  time_limit: field.uint32(11, 'Wall-clock limit in seconds; 0 is no limit.', { default: 600 }),
  daemon: field.bool(12, 'Detach nsjail into the background.', { default: false }),
  max_cpus: field.uint32(13, 'Most CPUs the command may run on; 0 is no limit.', { default: 0 }),
  nice_level: field.int32(14, 'Niceness of the command.', { default: 19 }),
  log_fd: field.int32(15, 'Descriptor nsjail writes its log to.'),
  log_file: field.string(16, 'File nsjail writes its log to.'),
  log_level: field.enum(17, LogLevel, "Lowest severity of nsjail's log lines shown."),
  keep_env: field.bool(18, "Pass nsjail's whole environment to the command.", { default: false }),
  envar: field.repeatedString(
    19,
    'Environment entries: "K=V" sets K; a bare "K" copies K from nsjail\'s environment.',
  ),
  keep_caps: field.bool(20, 'Keep all capabilities; otherwise all are dropped but `cap`.', {
    default: false,
  }),
  cap: field.repeatedString(
    21,
    'Capabilities kept when keep_caps is false, e.g. "CAP_SYS_PTRACE".',
  ),
  silent: field.bool(22, 'Close descriptors 0, 1 and 2 before running the command.', {
    default: false,
  }),
  skip_setsid: field.bool(
    23,
    'Do not start a new session: the command keeps the controlling terminal (it can inject input into it).',
    { default: false },
  ),
  stderr_to_null: field.bool(24, "Send the command's stderr to /dev/null.", { default: false }),
  pass_fd: field.repeatedInt32(25, 'Descriptors passed to the command besides 0, 1 and 2.'),
  disable_no_new_privs: field.bool(
    26,
    'Allow setuid binaries to gain privileges inside the jail.',
    {
      default: false,
    },
  ),
  forward_signals: field.bool(27, 'Forward fatal signals to the command instead of SIGKILL.', {
    default: false,
  }),
  disable_tsc: field.bool(
    28,
    'Make rdtsc/rdtscp fault (x86 only; also filter prctl(PR_SET_TSC)).',
    {
      default: false,
    },
  ),
  oom_score_adj: field.int32(29, 'OOM score adjustment of the command (-1000 to 1000).'),
  rlimit_as: rl(30, 'Address-space', 'MiB', 4096n),
  rlimit_as_type: rlType(31, 'address-space', 'VALUE'),
  rlimit_core: rl(32, 'Core-file size', 'MiB', 0n),
  rlimit_core_type: rlType(33, 'core-file size', 'VALUE'),
  rlimit_cpu: rl(34, 'CPU time', 'seconds', 600n),
  rlimit_cpu_type: rlType(35, 'CPU time', 'VALUE'),
  rlimit_fsize: rl(36, 'File size', 'MiB', 1n),
  rlimit_fsize_type: rlType(37, 'file size', 'VALUE'),
  rlimit_nofile: rl(38, 'Open-file', 'descriptors', 32n),
  rlimit_nofile_type: rlType(39, 'open-file', 'VALUE'),
  rlimit_nproc: rl(40, 'Process-count (per real user, system wide)', 'processes', 1024n),
  rlimit_nproc_type: rlType(41, 'process-count', 'SOFT'),
  rlimit_stack: rl(42, 'Stack size', 'MiB', 8n),
  rlimit_stack_type: rlType(43, 'stack size', 'SOFT'),
  rlimit_memlock: rl(44, 'Locked-memory', 'KiB', 64n),
  rlimit_memlock_type: rlType(45, 'locked-memory', 'SOFT'),
  rlimit_rtprio: rl(46, 'Real-time priority', 'priority levels', 0n),
  rlimit_rtprio_type: rlType(47, 'real-time priority', 'SOFT'),
  rlimit_msgqueue: rl(48, 'POSIX message-queue', 'bytes', 1024n),
  rlimit_msgqueue_type: rlType(49, 'message-queue', 'SOFT'),
  disable_rl: field.bool(50, "Apply no rlimits at all: the command inherits nsjail's.", {
    default: false,
  }),
  persona_addr_compat_layout: field.bool(51, 'personality(ADDR_COMPAT_LAYOUT).', {
    default: false,
  }),
  persona_mmap_page_zero: field.bool(52, 'personality(MMAP_PAGE_ZERO).', { default: false }),
  persona_read_implies_exec: field.bool(53, 'personality(READ_IMPLIES_EXEC).', { default: false }),
  persona_addr_limit_3gb: field.bool(54, 'personality(ADDR_LIMIT_3GB).', { default: false }),
  persona_addr_no_randomize: field.bool(55, 'personality(ADDR_NO_RANDOMIZE): no ASLR.', {
    default: false,
  }),
  clone_newnet: field.bool(56, 'New network namespace (only lo unless configured).', {
    default: true,
  }),
  clone_newuser: field.bool(57, 'New user namespace.', { default: true }),
  clone_newns: field.bool(58, 'New mount namespace (needed for any mount).', { default: true }),
  clone_newpid: field.bool(59, 'New PID namespace: the command is pid 1.', { default: true }),
  clone_newipc: field.bool(60, 'New IPC namespace.', { default: true }),
  clone_newuts: field.bool(61, 'New UTS namespace (own hostname).', { default: true }),
  clone_newcgroup: field.bool(62, 'New cgroup namespace (kernel >= 4.6).', { default: true }),
  clone_newtime: field.bool(63, 'New time namespace (kernel >= 5.3).', { default: false }),
  uidmap: field.repeatedMessage(64, IdMap, 'uid mappings; none maps the current uid to itself.'),
  gidmap: field.repeatedMessage(65, IdMap, 'gid mappings; none maps the current gid to itself.'),
  mount_proc: field.bool(66, 'Mount a read-only /proc (a `mount` entry can do the same).', {
    default: false,
  }),
  mount: field.repeatedMessage(
    67,
    MountPt,
    'Mounts, made in this order; none means an empty root.',
  ),
  seccomp_policy_file: field.string(68, 'File holding a kafel seccomp policy.'),
  seccomp_string: field.repeatedString(
    69,
    'Kafel seccomp policy, one piece per entry, joined with newlines; none means no filter.',
  ),
  seccomp_log: field.bool(70, 'Have the kernel audit-log seccomp decisions.', { default: false }),
  seccomp_unotify: field.bool(99, 'Trace file and socket access through SECCOMP_RET_USER_NOTIF.', {
    default: false,
  }),
  seccomp_unotify_report: field.string(100, 'File the seccomp_unotify report is written to.'),
  use_core_scheduling: field.bool(101, 'Use core scheduling (PR_SCHED_CORE, kernel >= 5.14).', {
    default: false,
  }),
  cgroup_mem_max: field.uint64(71, 'Memory limit of the jail in bytes; 0 is no limit.', {
    default: 0n,
  }),
  cgroup_mem_memsw_max: field.uint64(
    72,
    'Memory + swap limit in bytes (cgroup v1); 0 is no limit.',
    {
      default: 0n,
    },
  ),
  cgroup_mem_swap_max: field.int64(73, 'Swap limit in bytes; -1 is no limit.', { default: -1n }),
  cgroup_mem_mount: field.string(74, cg('memory'), { default: '/sys/fs/cgroup/memory' }),
  cgroup_mem_parent: field.string(75, cgParent('memory'), { default: 'NSJAIL' }),
  cgroup_pids_max: field.uint64(76, 'Most processes and threads in the jail; 0 is no limit.', {
    default: 0n,
  }),
  cgroup_pids_mount: field.string(77, cg('pids'), { default: '/sys/fs/cgroup/pids' }),
  cgroup_pids_parent: field.string(78, cgParent('pids'), { default: 'NSJAIL' }),
  cgroup_net_cls_classid: field.uint32(79, "net_cls class id of the jail's packets; 0 is none.", {
    default: 0,
  }),
  cgroup_net_cls_mount: field.string(80, cg('net_cls'), { default: '/sys/fs/cgroup/net_cls' }),
  cgroup_net_cls_parent: field.string(81, cgParent('net_cls'), { default: 'NSJAIL' }),
  cgroup_cpu_ms_per_sec: field.uint32(
    82,
    'CPU milliseconds per second the jail may use; 0 is no limit.',
    {
      default: 0,
    },
  ),
  cgroup_cpu_mount: field.string(83, cg('cpu'), { default: '/sys/fs/cgroup/cpu' }),
  cgroup_cpu_parent: field.string(84, cgParent('cpu'), { default: 'NSJAIL' }),
  cgroupv2_mount: field.string(85, 'Mount point of the cgroup v2 hierarchy.', {
    default: '/sys/fs/cgroup',
  }),
  use_cgroupv2: field.bool(86, 'Use cgroup v2 for the limits.', { default: false }),
  detect_cgroupv2: field.bool(87, 'Use cgroup v2 when the system has it.', { default: false }),
  iface_no_lo: field.bool(88, 'Leave the loopback interface down.', { default: false }),
  iface_own: field.repeatedString(89, 'Host interfaces moved into the jail.'),
  macvlan_iface: field.string(90, 'Host interface to clone into the jail as MACVLAN, e.g. "eth0".'),
  macvlan_vs_ip: field.string(91, 'IPv4 address of the MACVLAN interface.', {
    default: '192.168.0.2',
  }),
  macvlan_vs_nm: field.string(92, 'Netmask of the MACVLAN interface.', {
    default: '255.255.255.0',
  }),
  macvlan_vs_gw: field.string(93, 'Gateway of the MACVLAN interface.', { default: '192.168.0.1' }),
  macvlan_vs_ma: field.string(94, 'MAC address of the MACVLAN interface.', { default: '' }),
  macvlan_vs_mo: field.string(95, 'MACVLAN mode (private, vepa, bridge, passthru).', {
    default: 'private',
  }),
  traffic_rule: field.repeatedMessage(96, TrafficRule, 'Packet filter rules for the jail network.'),
  user_net: field.message(97, UserNet, 'User-mode networking (needs clone_newnet).'),
  exec_bin: field.message(98, Exe, 'The program to run when none follows `--`.'),
});

export type NsJailConfig = z.infer<NonNullable<typeof NsJailConfig.schema>>;
export type MountPt = z.infer<NonNullable<typeof MountPt.schema>>;
export type IdMap = z.infer<NonNullable<typeof IdMap.schema>>;
export type Exe = z.infer<NonNullable<typeof Exe.schema>>;
export type UserNet = z.infer<NonNullable<typeof UserNet.schema>>;
export type NstunRule = z.infer<NonNullable<typeof NstunRule.schema>>;
export type TrafficRule = z.infer<NonNullable<typeof TrafficRule.schema>>;
export type RLimitType = z.infer<NonNullable<typeof RLimitType.schema>>;

export const policyDescriptor = NsJailConfig.descriptor;
