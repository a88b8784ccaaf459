/**
 * doctor(): what this host can enforce, checked rather than assumed. The live probes run a
 * tiny jail per runtime and look from inside: a host marker file must be invisible, a bound
 * directory visible and read-only, and a fresh network namespace must hold only `lo`.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NsJailConfig } from '@ktl/nsjail-config';
import { type RuntimeName, SandboxError } from './errors';
import { run } from './run';
import { type DetectedRuntimes, detectRuntimes } from './runtimes';

export interface Check {
  readonly ok: boolean;
  readonly detail: string;
}

export interface CgroupReport {
  /** v1, v2, hybrid (v1 controllers plus a v2 mount) or none. */
  readonly layout: 'v1' | 'v2' | 'hybrid' | 'none';
  readonly v1: Readonly<Record<string, string>>;
  readonly v2: { readonly mount: string; readonly controllers: readonly string[] } | undefined;
  /** Whether a jail cgroup with this limit can be created here (tried, then removed). */
  readonly limits: Readonly<Record<'memory' | 'pids' | 'cpu', Check>>;
}

export interface Probe {
  readonly runtime: RuntimeName;
  readonly name: 'host-marker-invisible' | 'bind-visible-readonly' | 'network-isolated';
  readonly ok: boolean;
  readonly detail: string;
}

export interface DoctorReport {
  readonly runtimes: DetectedRuntimes;
  /** What `runtime: 'auto'` would use. */
  readonly selected: RuntimeName | undefined;
  readonly userNamespaces: Check;
  readonly cgroups: CgroupReport;
  readonly seccomp: Check;
  readonly probes: readonly Probe[];
  /** A runtime exists and every probe passed. */
  readonly ok: boolean;
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return fallback;
  }
}

function userNamespaces(): Check {
  const max = Number(readOr('/proc/sys/user/max_user_namespaces', '0'));
  if (max === 0) return { ok: false, detail: 'user.max_user_namespaces is 0' };
  const deb = readOr('/proc/sys/kernel/unprivileged_userns_clone', '');
  const aa = readOr('/proc/sys/kernel/apparmor_restrict_unprivileged_userns', '');
  const root = process.getuid?.() === 0;
  if (!root && deb === '0') return { ok: false, detail: 'kernel.unprivileged_userns_clone is 0' };
  if (!root && aa === '1') {
    return { ok: false, detail: 'AppArmor restricts unprivileged user namespaces' };
  }
  return {
    ok: true,
    detail: `allowed (max_user_namespaces ${max}${root ? ', running as root' : ''})`,
  };
}

function seccomp(): Check {
  const status = readOr('/proc/self/status', '');
  if (!/^Seccomp:/m.test(status)) return { ok: false, detail: 'kernel without seccomp' };
  const actions = readOr('/proc/sys/kernel/seccomp/actions_avail', 'unknown');
  return {
    ok: true,
    detail: `filters available (actions: ${actions}); kafel policies apply under both runtimes: nsjail compiles them itself, for bwrap ktl compiles them to BPF (x32 system calls killed, USER_NOTIF refused)`,
  };
}

function tryCgroup(dir: string): Check {
  const probe = join(dir, `ktl-doctor.${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return { ok: true, detail: `can create cgroups under ${dir}` };
  } catch (e) {
    return {
      ok: false,
      detail: `cannot create a cgroup under ${dir}: ${(e as NodeJS.ErrnoException).code}`,
    };
  }
}

function cgroups(): CgroupReport {
  const v1: Record<string, string> = {};
  let v2: CgroupReport['v2'];
  for (const line of readOr('/proc/self/mounts', '').split('\n')) {
    const [, mnt, type, opts] = line.split(' ');
    if (type === 'cgroup2' && mnt && !v2) {
      const controllers = readOr(join(mnt, 'cgroup.controllers'), '').split(/\s+/).filter(Boolean);
      v2 = { mount: mnt, controllers };
    } else if (type === 'cgroup' && mnt && opts) {
      for (const o of opts.split(',')) {
        if (['memory', 'pids', 'cpu', 'net_cls'].includes(o)) v1[o] = mnt;
      }
    }
  }
  const layout = Object.keys(v1).length > 0 ? (v2 ? 'hybrid' : 'v1') : v2 ? 'v2' : 'none';
  const limit = (c: 'memory' | 'pids' | 'cpu'): Check => {
    if (v1[c]) return tryCgroup(v1[c]!);
    if (v2?.controllers.includes(c)) return tryCgroup(v2.mount);
    return { ok: false, detail: `no ${c} controller mounted (v1) or available (v2)` };
  };
  return {
    layout,
    v1,
    v2,
    limits: { memory: limit('memory'), pids: limit('pids'), cpu: limit('cpu') },
  };
}

const SYSTEM_MOUNTS = ['/usr', '/lib', '/lib64', '/bin', '/sbin'].map((d) => ({
  src: d,
  dst: d,
  is_bind: true,
  mandatory: false,
}));

async function probes(runtime: RuntimeName): Promise<Probe[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ktl-doctor-'));
  const marker = join(dir, 'host-marker');
  writeFileSync(marker, 'visible\n');
  const policy: NsJailConfig = {
    name: 'ktl-doctor',
    time_limit: 20,
    clone_newnet: true,
    mount_proc: true,
    mount: SYSTEM_MOUNTS,
    envar: ['PATH=/usr/bin:/bin'],
  };
  const sh = async (
    script: string,
    binds: { src: string; dst: string; readonly: boolean }[] = [],
  ) => {
    const r = await run('/bin/sh', ['-c', script], {
      policy,
      runtime,
      binds,
      stdin: 'ignore',
      reject: false,
      timeout: 15000,
    });
    return r;
  };
  const describe = (r: Awaited<ReturnType<typeof sh>>) =>
    SandboxError.is(r) ? r.shortMessage : (r.stdout ?? '').trim();
  try {
    const hidden = await sh(`test -e ${marker} && echo visible || echo hidden`);
    const bound = await sh(
      'cat /probe/host-marker; touch /probe/x 2>/dev/null && echo writable || echo read-only',
      [{ src: dir, dst: '/probe', readonly: true }],
    );
    const net = await sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' '");
    const ifaces = (net.stdout ?? '').trim();
    return [
      {
        runtime,
        name: 'host-marker-invisible',
        ok: !hidden.failed && hidden.stdout?.trim() === 'hidden',
        detail: `host file ${marker}: ${describe(hidden)}`,
      },
      {
        runtime,
        name: 'bind-visible-readonly',
        ok: !bound.failed && bound.stdout === 'visible\nread-only\n',
        detail: `bound ${dir} at /probe: ${describe(bound).replace(/\n/g, ', ')}`,
      },
      {
        runtime,
        name: 'network-isolated',
        ok: !net.failed && ifaces === 'lo',
        detail: net.failed ? describe(net) : `interfaces in the jail: ${ifaces || '(none)'}`,
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A structured report of runtimes, kernel features and live jail probes. */
export async function doctor(): Promise<DoctorReport> {
  const runtimes = await detectRuntimes();
  const usable = (['nsjail', 'bwrap'] as const).filter(
    (r) => runtimes[r] && !runtimes[r]!.note?.startsWith('does not'),
  );
  const results = await Promise.all(usable.map((r) => probes(r)));
  const all = results.flat();
  const selected = runtimes.nsjail ? 'nsjail' : runtimes.bwrap ? 'bwrap' : undefined;
  return {
    runtimes,
    selected,
    userNamespaces: userNamespaces(),
    cgroups: cgroups(),
    seccomp: seccomp(),
    probes: all,
    ok: usable.length > 0 && all.every((p) => p.ok),
  };
}
