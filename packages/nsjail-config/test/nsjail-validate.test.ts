/**
 * Every validation error says truthfully what nsjail does with the policy: each case runs the
 * real nsjail (KTL_NSJAIL_BIN) on it and checks what happened against ktl's words. "refuses":
 * nsjail exits non-zero and the command never runs; "runs": the command runs (nsjail at most
 * warns), so ktl's message must say that ktl is the one refusing, and why.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { parsePolicy, validatePolicy } from '../src/index';
import { findNsjail } from './helpers';

const MARK = 'ktl-validate-ran';
const ROOT = 'mount { src: "/" dst: "/" is_bind: true }\n';
const dir = mkdtempSync(join(tmpdir(), 'ktl-validate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  ran: boolean;
  log: string;
}

function nsjailRun(nsjail: string, name: string, policy: string, timeout = 20_000): Run {
  const f = join(dir, `${name.replace(/[^a-z0-9]+/gi, '_')}.cfg`);
  writeFileSync(f, policy);
  const r = spawnSync(nsjail, ['--config', f, '--', '/bin/echo', MARK], {
    encoding: 'utf8',
    timeout,
  });
  return { code: r.status, ran: (r.stdout ?? '').includes(MARK), log: r.stderr ?? '' };
}

const nsjail = findNsjail();
/** nsjail must be able to start a jail here for its verdicts to mean anything. */
const probe = nsjail.path ? nsjailRun(nsjail.path, 'probe', `name: "probe"\n${ROOT}`) : undefined;
const skipReason = !nsjail.path
  ? nsjail.reason
  : !probe?.ran
    ? `nsjail cannot start a jail on this machine: ${probe?.log.trim().split('\n').pop()}`
    : '';
const gate = skipReason ? test.skip : test;
const label = (s: string) => (skipReason ? `${s} (skipped: ${skipReason})` : s);

/** A host interface a macvlan can be cloned from (nsjail needs one for macvlan_iface). */
function macvlanParent(): { iface?: string; reason: string } {
  if (skipReason) return { reason: skipReason };
  const ifaces = readdirSync('/sys/class/net').filter((i) => {
    try {
      return i !== 'lo' && readFileSync(`/sys/class/net/${i}/type`, 'utf8').trim() === '1';
    } catch {
      return false;
    }
  });
  for (const iface of ifaces) {
    const policy = `name: "m"\n${ROOT}macvlan_iface: "${iface}"\nmacvlan_vs_mo: "private"\n`;
    if (nsjailRun(nsjail.path!, `macvlan-probe-${iface}`, policy).ran) return { iface, reason: '' };
  }
  return { reason: 'no host interface nsjail can clone a macvlan from' };
}

interface Case {
  name: string;
  policy: string;
  code: string;
  nsjail: 'refuses' | 'runs' | 'kills' | 'listens';
  /** A line nsjail logs for it. */
  log: RegExp;
  /** What ktl's message must say. */
  words: RegExp;
}

const cases: Case[] = [
  {
    name: 'memsw and swap together',
    policy: 'cgroup_mem_memsw_max: 100000000\ncgroup_mem_swap_max: 0',
    code: 'NSJ-V001',
    nsjail: 'refuses',
    log: /cannot set both cgroup_mem_memsw_max and cgroup_mem_swap_max/,
    words: /nsjail refuses to start/,
  },
  {
    name: 'seccomp file and strings',
    policy: 'seccomp_policy_file: "/dev/null"\nseccomp_string: "DEFAULT ALLOW"',
    code: 'NSJ-V002',
    nsjail: 'refuses',
    log: /Specify one only/,
    words: /nsjail refuses to start/,
  },
  {
    name: 'user_net without a network namespace',
    policy: 'clone_newnet: false\nuser_net {}',
    code: 'NSJ-V003',
    nsjail: 'refuses',
    log: /CLONE_NEWNET is not enabled/,
    words: /nsjail cannot start the jail/,
  },
  {
    name: 'pasta with neither IPv4 nor IPv6',
    policy: 'user_net { backend: PASTA pasta { ip4_enabled: false ip6_enabled: false } }',
    code: 'NSJ-V004',
    nsjail: 'kills',
    log: /Both IPv4 and IPv6 disabled for user networking/,
    words: /nsjail kills the jail/,
  },
  {
    name: 'unknown macvlan mode, no macvlan_iface',
    policy: 'macvlan_vs_mo: "weird"',
    code: 'NSJ-V005',
    nsjail: 'runs',
    log: /Executing/,
    words: /nsjail ignores it while macvlan_iface is unset/,
  },
  {
    name: 'unknown capability',
    policy: 'cap: "CAP_NET_BIND_SERVIC"',
    code: 'NSJ-V006',
    nsjail: 'runs',
    log: /Unknown capability/,
    words: /nsjail only warns/,
  },
  {
    name: 'LISTEN on a port above 65535',
    policy: 'mode: LISTEN\nport: 70000',
    code: 'NSJ-V007',
    nsjail: 'refuses',
    log: /TCP port 70000 out of bounds/,
    words: /nsjail refuses to start/,
  },
  {
    name: 'LISTEN without a port',
    policy: 'mode: LISTEN\nbindhost: "127.0.0.1"',
    code: 'NSJ-V007',
    nsjail: 'listens',
    log: /Listening on \[::ffff:127\.0\.0\.1\]:[1-9][0-9]*/,
    words: /nsjail listens on a port the kernel picks/,
  },
  {
    name: 'oom_score_adj above 1000',
    policy: 'oom_score_adj: 2000',
    code: 'NSJ-V008',
    nsjail: 'runs',
    log: /Couldn't set \/proc\/self\/oom_score_adj to '2000'/,
    words: /nsjail only warns/,
  },
  {
    name: 'oom_score_adj below -1000',
    policy: 'oom_score_adj: -2000',
    code: 'NSJ-V008',
    nsjail: 'runs',
    log: /Couldn't set \/proc\/self\/oom_score_adj to '-2000'/,
    words: /nsjail only warns/,
  },
  {
    name: 'uid 4294967295',
    policy: 'uidmap { inside_id: "4294967295" }',
    code: 'NSJ-V009',
    nsjail: 'refuses',
    log: /Cannot parse '4294967295' as UID/,
    words: /nsjail refuses the policy/,
  },
  {
    name: 'uid past 2^32',
    policy: 'uidmap { inside_id: "4294968296" }',
    code: 'NSJ-V009',
    nsjail: 'runs',
    log: /Uid map: inside_uid:1000 /,
    words: /nsjail takes it modulo 2\^32, as UID 1000/,
  },
  {
    name: 'mount with nothing to mount',
    policy: 'mount { dst: "/x" }',
    code: 'NSJ-V010',
    nsjail: 'refuses',
    log: /Failed to mount mandatory point: '\/x'/,
    words: /nsjail refuses to start the jail/,
  },
  {
    name: 'optional mount with nothing to mount',
    policy: 'mount { dst: "/x" mandatory: false }',
    code: 'NSJ-V010',
    nsjail: 'runs',
    log: /No such device/,
    words: /nsjail skips it with a warning/,
  },
  {
    name: 'symlink without a target',
    policy: 'mount { dst: "/x" is_symlink: true }',
    code: 'NSJ-V011',
    nsjail: 'refuses',
    log: /Failed to mount mandatory point: '\/x'/,
    words: /nsjail refuses to start the jail/,
  },
  {
    name: 'optional symlink without a target',
    policy: 'mount { dst: "/x" is_symlink: true mandatory: false }',
    code: 'NSJ-V011',
    nsjail: 'runs',
    log: /failed \(non-mandatory\)/,
    words: /nsjail skips it with a warning/,
  },
  {
    name: 'seccomp policy that does not compile',
    policy: 'seccomp_string: "ALLOW { uname }"',
    code: 'NSJ-V012',
    nsjail: 'refuses',
    log: /Couldn't prepare sandboxing policy/,
    words: /seccomp policy: Undefined identifier/,
  },
  {
    name: 'seccomp file missing',
    policy: 'seccomp_policy_file: "/nonexistent/ktl/policy.kafel"',
    code: 'NSJ-V013',
    nsjail: 'refuses',
    log: /Couldn't open the kafel seccomp policy file/,
    words: /does not exist/,
  },
  {
    name: 'exec_bin with an empty path',
    policy: 'exec_bin { path: "" }',
    code: 'NSJ-V014',
    nsjail: 'refuses',
    log: /execve\(''\) failed/,
    words: /the jail never runs/,
  },
  {
    name: 'exec_bin with an empty path and exec_fd',
    policy: 'exec_bin { path: "" exec_fd: true }',
    code: 'NSJ-V014',
    nsjail: 'refuses',
    log: /Couldn't open '' file/,
    words: /refuses to start/,
  },
];

function ktlError(policy: string, code: string) {
  const ds = validatePolicy(parsePolicy(policy, { filename: 'v.cfg' }), { arch: 'x86_64' });
  return ds.find((d) => d.code === code && d.severity === 'error');
}

describe('validation errors say what nsjail really does', () => {
  test.each(cases)('$name: ktl reports $code in these words', (c) => {
    const d = ktlError(`name: "v"\n${ROOT}${c.policy}\n`, c.code);
    expect(d?.message).toMatch(c.words);
    // Where nsjail runs the jail, the refusal is ktl's own and the message says so.
    if (c.nsjail === 'runs' || c.nsjail === 'listens') expect(d?.message).toMatch(/ktl refuses/);
    else expect(d?.message).not.toMatch(/only warns|ktl refuses/);
  });

  gate.each(cases)(label('$name: nsjail $nsjail'), (c) => {
    const r = nsjailRun(
      nsjail.path!,
      c.name,
      `name: "v"\n${ROOT}${c.policy}\n`,
      c.nsjail === 'listens' ? 3_000 : 20_000,
    );
    expect(r.log).toMatch(c.log);
    if (c.nsjail === 'refuses') {
      expect({ ran: r.ran, failed: r.code !== 0 }).toEqual({ ran: false, failed: true });
    } else if (c.nsjail === 'runs') {
      expect({ ran: r.ran, code: r.code }).toEqual({ ran: true, code: 0 });
    } else if (c.nsjail === 'kills') {
      expect(r.log).toMatch(/Killing the jail/);
    } else {
      // Still listening when the timeout ended it: nothing refused the policy.
      expect(r.ran).toBe(false);
    }
  });

  const macvlan = macvlanParent();
  (macvlan.iface ? test : test.skip)(
    macvlan.iface
      ? 'unknown macvlan mode with macvlan_iface: nsjail refuses'
      : `unknown macvlan mode with macvlan_iface (skipped: ${macvlan.reason})`,
    () => {
      const policy = `name: "v"\n${ROOT}macvlan_iface: "${macvlan.iface}"\nmacvlan_vs_mo: "weird"\n`;
      expect(ktlError(policy, 'NSJ-V005')?.message).toMatch(
        /the kernel refuses to create the interface and nsjail does not start the jail/,
      );
      const r = nsjailRun(nsjail.path!, 'macvlan-weird', policy);
      expect(r.log).toMatch(/rtnl_link_add/);
      expect({ ran: r.ran, failed: r.code !== 0 }).toEqual({ ran: false, failed: true });
    },
  );
});
