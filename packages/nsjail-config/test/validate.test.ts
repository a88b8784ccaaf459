import { describe, expect, test } from '@jest/globals';
import {
  explainPolicy,
  parsePolicy,
  renderExplanation,
  validatePolicy,
  withBinds,
  withEnv,
} from '../src/index';

function codes(text: string): string[] {
  return validatePolicy(parsePolicy(text, { filename: 'v.cfg' })).map((d) => d.code);
}

describe('rules that keep a policy from running as written', () => {
  test.each([
    ['memsw with swap', 'cgroup_mem_memsw_max: 1\ncgroup_mem_swap_max: 0', 'NSJ-V001'],
    [
      'seccomp file and strings',
      'seccomp_policy_file: "/p"\nseccomp_string: "DEFAULT ALLOW"',
      'NSJ-V002',
    ],
    ['user_net without clone_newnet', 'clone_newnet: false\nuser_net {}', 'NSJ-V003'],
    [
      'pasta with no IP family',
      'user_net { backend: PASTA pasta { ip4_enabled: false ip6_enabled: false } }',
      'NSJ-V004',
    ],
    ['macvlan mode', 'macvlan_vs_mo: "weird"', 'NSJ-V005'],
    ['unknown capability', 'cap: "CAP_NET_BIND_SERVIC"', 'NSJ-V006'],
    ['LISTEN without port', 'mode: LISTEN', 'NSJ-V007'],
    ['oom_score_adj range', 'oom_score_adj: 5000', 'NSJ-V008'],
    ['id out of range', 'uidmap { inside_id: "4294967295" }', 'NSJ-V009'],
    ['mount with nothing to mount', 'mount { dst: "/x" }', 'NSJ-V010'],
    ['symlink without target', 'mount { dst: "/x" is_symlink: true }', 'NSJ-V011'],
    ['seccomp file missing', 'seccomp_policy_file: "/nonexistent/ktl/policy.kafel"', 'NSJ-V013'],
  ])('%s', (_n, text, code) => {
    expect(codes(text)).toContain(code);
  });

  test('user_net is fine with the default network namespace', () => {
    expect(codes('user_net {}')).toEqual([]);
  });

  test('an unknown capability gets a did-you-mean', () => {
    const [d] = validatePolicy(parsePolicy('\ncap: "CAP_NET_BIND_SERVIC"', { filename: 'v.cfg' }));
    expect(d).toMatchObject({
      line: 2,
      column: 1,
      path: 'cap[0]',
      hint: 'did you mean "CAP_NET_BIND_SERVICE"?',
    });
  });
});

describe('seccomp policies are checked at their position inside the .cfg', () => {
  test('an unknown syscall points into the right string, with the kafel name as hint', () => {
    const text =
      'name: "s"\nseccomp_string: "ALLOW {"\nseccomp_string: "  read, uname"\nseccomp_string: "}"\nseccomp_string: "DEFAULT KILL"\n';
    const [d] = validatePolicy(parsePolicy(text, { filename: 's.cfg' }), { arch: 'x86_64' });
    expect(d).toMatchObject({ code: 'NSJ-V012', file: 's.cfg', line: 3, column: 26 });
    expect(d!.hint).toContain('newuname');
  });

  test('a syntax error after escapes and concatenation still lands on the right column', () => {
    const text = 'seccomp_string: "ALLOW { read }\\n" "DEFAULT KIL"\n';
    const [d] = validatePolicy(parsePolicy(text, { filename: 's.cfg' }));
    expect(d).toMatchObject({ code: 'NSJ-V012', line: 1, column: 45, hint: 'did you mean KILL?' });
  });

  test('a valid policy passes', () => {
    expect(codes('seccomp_string: "ALLOW { read, write, newuname } DEFAULT KILL"')).toEqual([]);
  });
});

describe('helpers', () => {
  test('withBinds and withEnv return new policies and leave the input alone', () => {
    const p = parsePolicy(
      'envar: "A=1"\nenvar: "B=2"\nmount { dst: "/tmp" fstype: "tmpfs" }',
    ).policy;
    const frozen = JSON.stringify(p);
    const q = withEnv(withBinds(p, [{ src: '/ctx', dst: '/ctx', readonly: true }]), {
      A: '9',
      C: '3',
    });
    expect(JSON.stringify(p)).toBe(frozen);
    expect(q.envar).toEqual(['B=2', 'A=9', 'C=3']);
    expect(q.mount?.[1]).toEqual({ src: '/ctx', dst: '/ctx', is_bind: true, rw: false });
  });

  test('explain covers namespaces, mounts, network, limits and seccomp', () => {
    const text = renderExplanation(
      explainPolicy(
        parsePolicy(
          'clone_newnet: false\nmount { src: "/data" dst: "/d" is_bind: true rw: true }\nrlimit_as_type: INF\ntime_limit: 0',
        ).policy,
      ),
    );
    expect(text).toContain('shared with the host: network, time');
    expect(text).toContain('/d: host /data, read-write');
    expect(text).toContain('the host network, fully');
    expect(text).toContain('address space: unlimited');
    expect(text).toContain('wall clock: unlimited');
    expect(text).toContain('no seccomp filter: every system call is allowed');
  });
});

describe('explain seccomp', () => {
  const x32 = parsePolicy('seccomp_string: "ERRNO(1) { read, SYSCALL[-1] } DEFAULT ALLOW"').policy;
  const calls = (opts: Parameters<typeof explainPolicy>[1]) =>
    explainPolicy(x32, opts).find((s) => s.title === 'System calls')?.lines;

  test('an x32 number: what nsjail does, and what bubblewrap does otherwise', () => {
    expect(calls({ arch: 'x86_64' })).toEqual([
      'read: fails with errno 1',
      "syscall 4294967295: fails with errno 1 under nsjail; under bubblewrap the process is killed (an x32 system call number: ktl's filter kills every nr >= 0x40000000 before any rule)",
      'every other system call: allowed',
    ]);
    expect(calls({ arch: 'x86_64', runtime: 'nsjail' })).toEqual([
      'read, syscall 4294967295: fails with errno 1',
      'every other system call: allowed',
    ]);
  });

  test('under bubblewrap: the compiled filter, in the order it decides', () => {
    expect(calls({ arch: 'x86_64', runtime: 'bwrap' })).toEqual([
      'architectures other than x86_64: the process is killed',
      'x32 system calls (nr >= 0x40000000): the process is killed',
      'read, syscall 4294967295 (never applies: x32 system calls are killed first): fails with errno 1',
      'everything else: allowed',
    ]);
  });

  test('aarch64 has no x32 numbers', () => {
    expect(calls({ arch: 'aarch64' })).toEqual([
      'read, syscall 4294967295: fails with errno 1',
      'every other system call: allowed',
    ]);
  });

  test('a policy ktl cannot compile for bubblewrap says so', () => {
    const many = Array.from({ length: 3000 }, (_, i) => `SYSCALL[${i * 2}]`).join(', ');
    const p = parsePolicy(`seccomp_string: "ERRNO(1) { ${many} } DEFAULT ALLOW"`).policy;
    const lines = explainPolicy(p, { arch: 'x86_64', runtime: 'bwrap' }).at(-1)?.lines;
    expect(lines?.[0]).toMatch(/^ktl cannot compile the kafel policy for bubblewrap: /);
  });

  test('rules in order, USE expanded, the default last', () => {
    const text = renderExplanation(
      explainPolicy(
        parsePolicy(
          'seccomp_string: "POLICY net { ERRNO(1) { socket { family == 2 } } }"\nseccomp_string: "USE net, ALLOW { read, write }"\nseccomp_string: "DEFAULT KILL_PROCESS"',
        ).policy,
      ),
    );
    expect(text).toContain(
      'System calls:\n  - socket when family == 2: fails with errno 1\n  - read, write: allowed\n  - every other system call: the process is killed',
    );
  });
});
