/**
 * cgroup limits for the bubblewrap backend, laid out as nsjail lays them out (cgroup.cc,
 * cgroup2.cc): v1 puts the jail in `<mount>/<parent>/NSJAIL.<pid>` per controller, v2 in
 * `<cgroupv2_mount>/NSJAIL.<pid>`. The runner creates the cgroup and moves the jail's first
 * process in while bwrap holds it before exec (--block-fd), so the command and everything it
 * forks are charged from the start.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, statfsSync, writeFileSync } from 'node:fs';
import type { NsJailConfig } from '@ktl/nsjail-config';
import { eff } from './eff';
import { SandboxError } from './errors';

const CGROUP2_SUPER_MAGIC = 0x63677270;

export interface CgroupDir {
  /** The policy field that asked for this cgroup, for error messages. */
  readonly field: string;
  /** The controller's (v1) or the unified (v2) mount point. */
  readonly mount: string;
  /** Directory that must exist (created by the runner when missing). */
  readonly parent: string;
  /** Files written in order, after mkdir of the leaf. */
  readonly files: readonly [string, string][];
  /** `tasks` (v1) or `cgroup.procs` (v2). */
  readonly procs: string;
  /** For v2: controllers enabled in the parent's cgroup.subtree_control. */
  readonly controllers: readonly string[];
}

export interface CgroupPlan {
  readonly version: 1 | 2;
  readonly dirs: readonly CgroupDir[];
}

function isCgroup2(path: string): boolean {
  try {
    return statfsSync(path).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/** The cgroups a policy needs, or undefined when it sets no cgroup limit. */
export function planCgroups(p: NsJailConfig): CgroupPlan | undefined {
  const mem = eff(p, 'cgroup_mem_max');
  const memsw = eff(p, 'cgroup_mem_memsw_max');
  const swap = eff(p, 'cgroup_mem_swap_max');
  const pids = eff(p, 'cgroup_pids_max');
  const cpu = eff(p, 'cgroup_cpu_ms_per_sec');
  const netCls = eff(p, 'cgroup_net_cls_classid');
  const v2mount = eff(p, 'cgroupv2_mount');
  const v2 = eff(p, 'use_cgroupv2') || (eff(p, 'detect_cgroupv2') && isCgroup2(v2mount));
  if (v2) {
    const files: [string, string][] = [];
    const controllers: string[] = [];
    let swapMax = swap;
    if (memsw > 0n) swapMax = memsw - mem;
    if (mem > 0n || swapMax >= 0n) controllers.push('memory');
    if (mem > 0n) files.push(['memory.max', String(mem)]);
    if (swapMax >= 0n) files.push(['memory.swap.max', String(swapMax)]);
    if (pids > 0n) {
      controllers.push('pids');
      files.push(['pids.max', String(pids)]);
    }
    if (cpu > 0) {
      controllers.push('cpu');
      files.push(['cpu.max', `${cpu * 1000} 1000000`]);
    }
    if (files.length === 0) return undefined;
    return {
      version: 2,
      dirs: [
        {
          field:
            mem > 0n ? 'cgroup_mem_max' : pids > 0n ? 'cgroup_pids_max' : 'cgroup_cpu_ms_per_sec',
          mount: v2mount,
          parent: v2mount,
          files,
          procs: 'cgroup.procs',
          controllers,
        },
      ],
    };
  }
  const dirs: CgroupDir[] = [];
  const v1 = (field: string, mount: string, parent: string, files: [string, string][]) =>
    dirs.push({
      field,
      mount,
      parent: `${mount}/${parent}`,
      files,
      procs: 'tasks',
      controllers: [],
    });
  const memswMax = swap >= 0n ? BigInt(swap) + mem : memsw;
  if (mem > 0n || memswMax > 0n) {
    // oom_control 0: the OOM killer kills the jail instead of the jail hanging at the limit.
    const files: [string, string][] = [['memory.oom_control', '0']];
    if (mem > 0n) files.push(['memory.limit_in_bytes', String(mem)]);
    if (memswMax > 0n) files.push(['memory.memsw.limit_in_bytes', String(memswMax)]);
    v1(
      mem > 0n ? 'cgroup_mem_max' : 'cgroup_mem_memsw_max',
      eff(p, 'cgroup_mem_mount'),
      eff(p, 'cgroup_mem_parent'),
      files,
    );
  }
  if (pids > 0n) {
    v1('cgroup_pids_max', eff(p, 'cgroup_pids_mount'), eff(p, 'cgroup_pids_parent'), [
      ['pids.max', String(pids)],
    ]);
  }
  if (netCls > 0) {
    v1('cgroup_net_cls_classid', eff(p, 'cgroup_net_cls_mount'), eff(p, 'cgroup_net_cls_parent'), [
      ['net_cls.classid', `0x${netCls.toString(16)}`],
    ]);
  }
  if (cpu > 0) {
    v1('cgroup_cpu_ms_per_sec', eff(p, 'cgroup_cpu_mount'), eff(p, 'cgroup_cpu_parent'), [
      ['cpu.cfs_period_us', '1000000'],
      ['cpu.cfs_quota_us', String(cpu * 1000)],
    ]);
  }
  return dirs.length > 0 ? { version: 1, dirs } : undefined;
}

function notPermitted(dir: CgroupDir, what: string, e: unknown): SandboxError {
  const code = (e as NodeJS.ErrnoException).code ?? String(e);
  return new SandboxError(`cannot apply ${dir.field}: ${what}: ${code}`, {
    code: 'E_UNENFORCEABLE',
    cause: e,
    hint:
      code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? 'cgroup limits need root (or a delegated cgroup); run as root, or drop the limit'
        : 'check that the cgroup controller is mounted where the policy says (cgroup_*_mount)',
  });
}

/** Makes sure each parent exists and (v2) has the controllers enabled; before spawning. */
export function prepareCgroups(plan: CgroupPlan): void {
  for (const dir of plan.dirs) {
    if (!existsSync(dir.mount)) {
      throw notPermitted(dir, `${dir.mount} is not mounted`, { code: 'ENOENT' });
    }
    try {
      mkdirSync(dir.parent, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw notPermitted(dir, `mkdir ${dir.parent}`, e);
    }
    if (plan.version === 2) {
      const have = readFileSync(`${dir.parent}/cgroup.subtree_control`, 'utf8').split(/\s+/);
      for (const c of dir.controllers) {
        if (have.includes(c)) continue;
        try {
          writeFileSync(`${dir.parent}/cgroup.subtree_control`, `+${c}`);
        } catch (e) {
          throw notPermitted(dir, `enable +${c} in ${dir.parent}/cgroup.subtree_control`, e);
        }
      }
    }
  }
}

/** Creates NSJAIL.<pid> under each parent, writes the limits, moves pid in. Returns the leaves. */
export function attachCgroups(plan: CgroupPlan, pid: number): string[] {
  const leaves: string[] = [];
  try {
    for (const dir of plan.dirs) {
      const leaf = `${dir.parent}/NSJAIL.${pid}`;
      try {
        mkdirSync(leaf, { mode: 0o700 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
          throw notPermitted(dir, `mkdir ${leaf}`, e);
      }
      leaves.push(leaf);
      for (const [name, value] of dir.files) {
        try {
          writeFileSync(`${leaf}/${name}`, value);
        } catch (e) {
          throw notPermitted(dir, `write ${value} to ${leaf}/${name}`, e);
        }
      }
      try {
        writeFileSync(`${leaf}/${dir.procs}`, String(pid));
      } catch (e) {
        throw notPermitted(dir, `move pid ${pid} into ${leaf}`, e);
      }
    }
  } catch (e) {
    removeCgroups(leaves, 0);
    throw e;
  }
  return leaves;
}

/** True when the kernel OOM-killed something in one of these cgroups. */
export function oomKilled(leaves: readonly string[]): boolean {
  for (const leaf of leaves) {
    for (const file of ['memory.events', 'memory.oom_control']) {
      try {
        const m = /^oom_kill (\d+)$/m.exec(readFileSync(`${leaf}/${file}`, 'utf8'));
        if (m && Number(m[1]) > 0) return true;
      } catch {
        // not a memory cgroup
      }
    }
  }
  return false;
}

/**
 * Removes the leaves. The jail's last processes may still be exiting when bwrap returns
 * (rmdir fails with EBUSY until they are gone), so it retries for a short while.
 */
export function removeCgroups(leaves: readonly string[], retries = 50): Promise<void> | void {
  const left = leaves.filter((leaf) => {
    try {
      rmdirSync(leaf);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code !== 'ENOENT';
    }
  });
  if (left.length === 0 || retries <= 0) return;
  return new Promise((resolve) => {
    setTimeout(() => resolve(removeCgroups(left, retries - 1)), 20);
  });
}
