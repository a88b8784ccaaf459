/** A policy in plain words: what the jail sees and may do. */
import { effective, effectiveIn } from './defaults';
import {
  compileKafel,
  describeKafel,
  explain as explainFilter,
  hostKafelArch,
  type KafelArch,
  KafelCompileError,
  parseKafel,
} from './kafel';
import { MountPt, type NsJailConfig } from './schema/nsjail';
import { seccompText } from './seccomp';

export interface ExplainSection {
  title: string;
  lines: string[];
}

/** Words for the seccomp section; the default reads the kafel policy. */
export type SeccompExplainer = (policy: NsJailConfig) => string[] | undefined;

export interface ExplainOptions {
  /**
   * The runtime whose seccomp filter to describe: nsjail compiles the kafel policy itself,
   * ktl compiles it for bubblewrap, and the two differ on x32 calls (ktl's filter kills them
   * before any rule). Unset: kafel's rules, with what bubblewrap does otherwise where it does.
   */
  runtime?: 'nsjail' | 'bwrap' | undefined;
  /** The architecture the jail runs on. Defaults to this machine's. */
  arch?: KafelArch | undefined;
  /** Replaces the seccomp section's words altogether. */
  seccomp?: SeccompExplainer | undefined;
}

const NAMESPACES = [
  ['clone_newuser', 'user', 'ids and capabilities are private to the jail'],
  ['clone_newns', 'mount', 'the jail has its own filesystem tree'],
  ['clone_newpid', 'pid', 'the command is pid 1 and sees no host process'],
  ['clone_newnet', 'network', 'only a loopback interface unless configured'],
  ['clone_newipc', 'ipc', 'no shared memory or message queues with the host'],
  ['clone_newuts', 'uts', 'its own hostname'],
  ['clone_newcgroup', 'cgroup', 'its own view of the cgroup tree'],
  ['clone_newtime', 'time', 'its own monotonic and boot clocks'],
] as const;

function kafelInWords(p: NsJailConfig, opts: ExplainOptions): string[] | undefined {
  const text = seccompText(p);
  if (!text) return undefined;
  const arch = opts.arch ?? hostKafelArch();
  const r = parseKafel(text.text, { arch });
  if (!r.ok) return [`the kafel policy does not compile: ${r.error.message}`];
  if (opts.runtime !== 'bwrap')
    return describeKafel(r.program, { arch, bwrapDifferences: opts.runtime === undefined });
  try {
    compileKafel(r.program, { arch });
  } catch (e) {
    if (!(e instanceof KafelCompileError)) throw e;
    return [`ktl cannot compile the kafel policy for bubblewrap: ${e.message}`];
  }
  return explainFilter(r.program, arch);
}

function limit(v: bigint, unit: string, type: string): string {
  if (type === 'INF') return 'unlimited';
  if (type === 'SOFT') return "nsjail's own soft limit";
  if (type === 'HARD') return "nsjail's own hard limit";
  return `${v} ${unit}`;
}

/**
 * The policy in plain words, section by section. The second argument is the options, or (as
 * before options existed) a SeccompExplainer for the seccomp section.
 */
export function explainPolicy(
  p: NsJailConfig,
  options: ExplainOptions | SeccompExplainer = {},
): ExplainSection[] {
  const opts = typeof options === 'function' ? { seccomp: options } : options;
  const seccomp = opts.seccomp ?? ((q: NsJailConfig) => kafelInWords(q, opts));
  const out: ExplainSection[] = [];
  const name = p.name ? `"${p.name}"` : '(unnamed)';
  out.push({
    title: 'Policy',
    lines: [
      `${name}${p.description?.length ? `: ${p.description.join(' ')}` : ''}`,
      `mode ${effective(p, 'mode')}`,
    ],
  });

  const on = NAMESPACES.filter(([k]) => effective(p, k)).map(([, n, why]) => `${n}: ${why}`);
  const off = NAMESPACES.filter(([k]) => !effective(p, k)).map(([, n]) => n);
  out.push({
    title: 'Namespaces',
    lines: [
      ...on.map((l) => `private ${l}`),
      ...(off.length ? [`shared with the host: ${off.join(', ')}`] : []),
    ],
  });

  const fs: string[] = [];
  if (!effective(p, 'clone_newns'))
    fs.push("no mount namespace: the jail sees the host's whole filesystem");
  else if (!p.mount?.length && !p.mount_proc)
    fs.push('an empty root: nothing of the host is visible');
  (p.mount ?? []).forEach((m) => {
    const get = (k: string) => effectiveIn(m as Record<string, unknown>, MountPt.descriptor, k);
    const mode = m.rw ? 'read-write' : 'read-only';
    const opt = get('mandatory') ? '' : ' (skipped if missing)';
    if (get('is_symlink')) fs.push(`${m.dst} -> symlink to ${m.src}`);
    else if (m.src_content !== undefined)
      fs.push(`${m.dst}: a file with ${m.src_content.length} bytes given in the policy (${mode})`);
    else if (get('is_bind'))
      fs.push(
        `${m.dst}: host ${m.src}${m.prefix_src_env ? ` (prefixed by $${m.prefix_src_env})` : ''}, ${mode}${opt}`,
      );
    else
      fs.push(
        `${m.dst}: ${m.fstype || 'mount'}${m.options ? ` (${m.options})` : ''}, ${mode}${opt}`,
      );
  });
  if (p.mount_proc) fs.push('/proc: proc, read-only');
  fs.push(`working directory ${effective(p, 'cwd')}`);
  out.push({ title: 'Filesystem', lines: fs });

  const net: string[] = [];
  if (!effective(p, 'clone_newnet')) net.push('the host network, fully');
  else {
    net.push(effective(p, 'iface_no_lo') ? 'no interface at all (lo is down)' : 'loopback only');
    if (p.user_net) net.push(`user-mode network via ${p.user_net.backend ?? 'NSTUN'}`);
    if (p.macvlan_iface) net.push(`a MACVLAN clone of host ${p.macvlan_iface}`);
    if (p.iface_own?.length) net.push(`host interfaces moved in: ${p.iface_own.join(', ')}`);
  }
  out.push({ title: 'Network', lines: net });

  const ids: string[] = [];
  const caps = effective(p, 'keep_caps')
    ? 'all capabilities kept'
    : p.cap?.length
      ? `capabilities: only ${p.cap.join(', ')}`
      : 'no capabilities';
  ids.push(caps);
  for (const [k, what] of [
    ['uidmap', 'uid'],
    ['gidmap', 'gid'],
  ] as const) {
    const maps = p[k] ?? [];
    if (!maps.length) ids.push(`${what}: the caller's own, mapped to itself`);
    for (const m of maps)
      ids.push(
        `${what} ${m.inside_id || '(caller)'} inside = ${m.outside_id || '(caller)'} outside, ${m.count ?? 1} id(s)`,
      );
  }
  ids.push(
    effective(p, 'keep_env')
      ? 'environment: the whole host environment'
      : `environment: ${p.envar?.length ? p.envar.map((e) => e.split('=')[0]).join(', ') : 'empty'}`,
  );
  out.push({ title: 'Identity and environment', lines: ids });

  const lim: string[] = [];
  const t = effective(p, 'time_limit')!;
  lim.push(`wall clock: ${t === 0 ? 'unlimited' : `${t} s`}`);
  if (effective(p, 'disable_rl')) lim.push("rlimits: none applied (inherits nsjail's)");
  else {
    lim.push(
      `address space: ${limit(effective(p, 'rlimit_as')!, 'MiB', effective(p, 'rlimit_as_type')!)}`,
    );
    lim.push(
      `file size: ${limit(effective(p, 'rlimit_fsize')!, 'MiB', effective(p, 'rlimit_fsize_type')!)}`,
    );
    lim.push(
      `open files: ${limit(effective(p, 'rlimit_nofile')!, '', effective(p, 'rlimit_nofile_type')!).trim()}`,
    );
    lim.push(
      `CPU time: ${limit(effective(p, 'rlimit_cpu')!, 's', effective(p, 'rlimit_cpu_type')!)}`,
    );
    lim.push(
      `processes: ${limit(effective(p, 'rlimit_nproc')!, '', effective(p, 'rlimit_nproc_type')!).trim()}`,
    );
  }
  const mem = effective(p, 'cgroup_mem_max')!;
  if (mem > 0n) lim.push(`memory (cgroup): ${mem} bytes`);
  const pids = effective(p, 'cgroup_pids_max')!;
  if (pids > 0n) lim.push(`processes (cgroup): ${pids}`);
  const cpu = effective(p, 'cgroup_cpu_ms_per_sec')!;
  if (cpu > 0) lim.push(`CPU (cgroup): ${cpu} ms per second`);
  if (effective(p, 'max_cpus')) lim.push(`at most ${effective(p, 'max_cpus')} CPU(s)`);
  out.push({ title: 'Limits', lines: lim });

  const sc: string[] = [];
  if (p.seccomp_policy_file) sc.push(`kafel policy from file ${p.seccomp_policy_file}`);
  else if (p.seccomp_string?.length)
    sc.push(...(seccomp?.(p) ?? [`kafel policy of ${p.seccomp_string.length} line(s)`]));
  else sc.push('no seccomp filter: every system call is allowed');
  out.push({ title: 'System calls', lines: sc });
  return out;
}

export function renderExplanation(sections: ExplainSection[]): string {
  return `${sections.map((s) => `${s.title}:\n${s.lines.map((l) => `  - ${l}`).join('\n')}`).join('\n\n')}\n`;
}
