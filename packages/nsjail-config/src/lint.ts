/**
 * Lints: policies nsjail runs happily but that are probably not what their author meant, or
 * that hand the jail a way out. Codes NSJ-L0xx are stable; each message names the risk and
 * each hint the fix.
 */
import { effective, effectiveIn } from './defaults';
import {
  type Diagnostic,
  diagnosticFactory,
  type PolicyInput,
  sortDiagnostics,
  splitInput,
} from './diagnostics';
import { flattenRules, parseKafel } from './kafel';
import { MountPt, type NsJailConfig } from './schema/nsjail';
import { seccompText } from './seccomp';

/** rlimits with a size unit, and the unit's size in bytes (nsjail multiplies by it). */
const SIZED_RLIMITS = {
  rlimit_as: ['MiB', 1n << 20n],
  rlimit_core: ['MiB', 1n << 20n],
  rlimit_fsize: ['MiB', 1n << 20n],
  rlimit_stack: ['MiB', 1n << 20n],
  rlimit_memlock: ['KiB', 1n << 10n],
} as const;
const ALL_RLIMITS = [
  'as',
  'core',
  'cpu',
  'fsize',
  'nofile',
  'nproc',
  'stack',
  'memlock',
  'rtprio',
  'msgqueue',
] as const;

const TIB = 1n << 40n;

/** Host paths whose read-write bind gives the jail the host. */
const SENSITIVE_RW = [
  '/',
  '/etc',
  '/root',
  '/home',
  '/proc',
  '/sys',
  '/boot',
  '/usr',
  '/var',
  '/run',
  '/var/run',
];
/** Sockets that are root on the host (or control its builds); a read-only bind does not help. */
const DAEMON_SOCKETS = [
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/run/containerd/containerd.sock',
  '/var/run/containerd/containerd.sock',
  '/run/buildkit/buildkitd.sock',
  '/var/run/buildkit/buildkitd.sock',
  '/run/podman/podman.sock',
  '/var/run/crio/crio.sock',
];
const SOCKET_DIRS = [
  '/run',
  '/var/run',
  '/run/docker',
  '/run/containerd',
  '/var/run/containerd',
  '/run/buildkit',
  '/var/run/buildkit',
  '/var/lib/docker',
];

function humanBytes(n: bigint): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

function norm(path: string): string {
  const p = path.replace(/\/+/g, '/').replace(/\/$/, '');
  return p === '' ? '/' : p;
}

export function lintPolicy(input: PolicyInput): Diagnostic[] {
  const { policy: p, source } = splitInput(input);
  const d = diagnosticFactory(source);
  const out: Diagnostic[] = [];
  const userns = effective(p, 'clone_newuser');

  // Units: nsjail multiplies these by a MiB (or KiB); a byte count here is astronomically big.
  for (const [name, [unit, mult]] of Object.entries(SIZED_RLIMITS)) {
    const key = name as keyof typeof SIZED_RLIMITS;
    const v = p[key];
    if (v === undefined || effective(p, `${key}_type` as 'rlimit_as_type') !== 'VALUE') continue;
    if (v * mult >= TIB) {
      out.push(
        d(
          'warning',
          'NSJ-L001',
          key,
          `${key} is in ${unit}: ${v} means ${humanBytes(v * mult)}, which is no limit in practice`,
          `if you meant ${humanBytes(v)}, write ${key}: ${v / mult > 0n ? v / mult : 1n}; for no limit write ${key}_type: INF`,
        ),
      );
    }
  }
  for (const r of ALL_RLIMITS) {
    const key = `rlimit_${r}` as keyof NsJailConfig;
    const typeKey = `rlimit_${r}_type` as 'rlimit_as_type';
    const type = effective(p, typeKey);
    if (p[key] !== undefined && type !== 'VALUE' && !p.disable_rl) {
      out.push(
        d(
          'warning',
          'NSJ-L002',
          key,
          `${key} is ignored: ${typeKey} is ${type}${p[typeKey] === undefined ? ' (the default)' : ''}`,
          `set ${typeKey}: VALUE to apply it`,
        ),
      );
    }
  }

  (p.mount ?? []).forEach((m, i) => {
    const isBind = effectiveIn(m as Record<string, unknown>, MountPt.descriptor, 'is_bind');
    if (!isBind || !m.src) return;
    const src = norm(m.src);
    const path = `mount[${i}]`;
    if (DAEMON_SOCKETS.includes(src)) {
      out.push(
        d(
          'warning',
          'NSJ-L011',
          path,
          `mount[${i}] exposes the container daemon socket ${src}: whoever can connect to it is root on the host (a read-only bind does not stop connect())`,
          'remove it; ktl build serves the jail a filtered BuildKit socket instead',
        ),
      );
      return;
    }
    if (m.rw && src === '/dev') {
      out.push(
        d(
          'warning',
          'NSJ-L012',
          path,
          'mount[' +
            i +
            '] binds the host /dev read-write: raw disks and other devices become writable',
          'bind only the devices needed (/dev/null, /dev/zero, /dev/urandom) or use a tmpfs /dev',
        ),
      );
    } else if (m.rw && SENSITIVE_RW.includes(src)) {
      out.push(
        d(
          'warning',
          'NSJ-L010',
          path,
          `mount[${i}] binds the host's ${src} read-write: the jail can change the host (credentials, system files, other users' data)`,
          'drop rw: true, or bind a narrower directory',
        ),
      );
    } else if (SOCKET_DIRS.includes(src)) {
      out.push(
        d(
          'warning',
          'NSJ-L011',
          path,
          `mount[${i}] binds ${src}, which holds container daemon sockets (docker, containerd, buildkitd): connecting to one is root on the host`,
          'bind only what the jail needs from it',
        ),
      );
    }
  });

  if (effective(p, 'keep_caps') && !userns) {
    out.push(
      d(
        'warning',
        'NSJ-L020',
        'keep_caps',
        'keep_caps without a user namespace keeps the real capabilities of the host user (as root: all of them)',
        'set clone_newuser: true, or keep_caps: false with only the needed `cap` entries',
      ),
    );
  }
  if (!userns) {
    out.push(
      d(
        'warning',
        'NSJ-L021',
        'clone_newuser',
        "no user namespace: ids and capabilities inside the jail are the host's own",
        'set clone_newuser: true (the default)',
      ),
    );
  }
  const kafel = seccompText(p, source);
  const program = kafel ? parseKafel(kafel.text) : undefined;
  if (program?.ok) {
    const rules = flattenRules(program.program, program.program.main);
    const restrictive = rules.some(
      (r) => r.filters.length > 0 && r.action.kind !== 'ALLOW' && r.action.kind !== 'LOG',
    );
    const permissiveDefault =
      program.program.defaultAction &&
      ['ALLOW', 'LOG'].includes(program.program.defaultAction.kind);
    if (permissiveDefault && !restrictive) {
      out.push(
        d(
          'warning',
          'NSJ-L030',
          'seccomp_string',
          'the seccomp policy allows every system call (DEFAULT ALLOW with nothing denied): it filters nothing',
          'deny what the jail must not do, or better: allow-list and DEFAULT KILL',
        ),
      );
    } else if (permissiveDefault) {
      out.push(
        d(
          'info',
          'NSJ-L032',
          'seccomp_string',
          'the seccomp policy is a deny-list (DEFAULT ALLOW): system calls added to the kernel later are allowed',
          'prefer an allow-list with DEFAULT KILL or ERRNO',
        ),
      );
    }
  }
  if (
    p.seccomp_policy_file === undefined &&
    (p.seccomp_string?.length ?? 0) === 0 &&
    (p.name ?? '').includes('strict')
  ) {
    out.push(
      d(
        'info',
        'NSJ-L031',
        'seccomp_string',
        'this policy calls itself strict but has no seccomp filter',
        'add seccomp_string with an allow-list',
      ),
    );
  }
  const claimsHermetic = /hermetic|no[- ]network|offline|air[- ]?gapped/i.test(
    [p.name ?? '', ...(p.description ?? [])].join(' '),
  );
  if (!claimsHermetic && !effective(p, 'clone_newnet')) {
    out.push(
      d(
        'warning',
        'NSJ-L042',
        'clone_newnet',
        "the jail shares the host network (clone_newnet: false): a process inside can reach every TCP service on the host's 127.0.0.1, its abstract unix sockets, and list the host's sockets in /proc/net/unix",
        'set clone_newnet: true unless the jailed program needs the network itself (ktl build does not)',
      ),
    );
  }
  if (claimsHermetic && !effective(p, 'clone_newnet')) {
    out.push(
      d(
        'warning',
        'NSJ-L040',
        'clone_newnet',
        'the policy calls itself hermetic but shares the host network (clone_newnet: false)',
        'set clone_newnet: true',
      ),
    );
  }
  if (
    claimsHermetic &&
    (p.user_net !== undefined || (p.iface_own?.length ?? 0) > 0 || p.macvlan_iface !== undefined)
  ) {
    out.push(
      d(
        'warning',
        'NSJ-L041',
        'user_net',
        'the policy calls itself hermetic but gives the jail a network interface',
        'remove user_net / iface_own / macvlan_iface',
      ),
    );
  }
  if (effective(p, 'keep_env')) {
    out.push(
      d(
        'warning',
        'NSJ-L050',
        'keep_env',
        'keep_env passes the whole host environment into the jail (tokens, credentials, SSH_AUTH_SOCK)',
        'list what the jail needs in envar instead',
      ),
    );
  }
  if (effective(p, 'disable_no_new_privs')) {
    out.push(
      d(
        'warning',
        'NSJ-L051',
        'disable_no_new_privs',
        'disable_no_new_privs lets setuid binaries inside the jail gain privileges',
        'remove it unless the jail must run setuid programs',
      ),
    );
  }
  if (effective(p, 'skip_setsid')) {
    out.push(
      d(
        'warning',
        'NSJ-L052',
        'skip_setsid',
        'skip_setsid leaves the controlling terminal to the jail: it can push input into the terminal (TIOCSTI)',
        'remove it',
      ),
    );
  }
  if (effective(p, 'no_pivotroot')) {
    out.push(
      d(
        'warning',
        'NSJ-L053',
        'no_pivotroot',
        'no_pivotroot uses a chroot-style root, which is easier to escape than pivot_root',
        'remove it',
      ),
    );
  }
  return sortDiagnostics(out);
}
