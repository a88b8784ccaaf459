/** plan(): the exact argv and config a run would use, without running anything. */
import { closeSync, openSync } from 'node:fs';
import { getPriority } from 'node:os';
import { describe, expect, test } from '@jest/globals';
import { parsePolicy } from '@ktl/nsjail-config';
import { CONFIG_PLACEHOLDER, plan } from '../src/index';
import { resolveRuntime } from '../src/runtimes';
import { gate, opts, TEST_POLICY } from './helpers';

const bw = gate('bwrap');
const tb = bw.ok ? test : test.skip;
const nj = gate('nsjail');
const tn = nj.ok ? test : test.skip;
const named = (g: { ok: boolean; why: string }, n: string) =>
  g.ok ? n : `${n} [skipped: ${g.why}]`;

/** The bwrap part of the argv (after the host wrappers). */
function bwrapArgv(argv: readonly string[]): string[] {
  const i = argv.findIndex((a) => a.endsWith('/bwrap'));
  return argv.slice(i + 1);
}

const after = (argv: readonly string[], flag: string) => argv[argv.indexOf(flag) + 1];

describe('bwrap', () => {
  tb(
    named(
      bw,
      'a pinned bind is --ro-bind-fd/--bind-fd on a descriptor of its own, after the status fd',
    ),
    () => {
      const a = openSync('/usr', 0o10000000);
      const b = openSync('/tmp', 0o10000000);
      try {
        const p = plan(
          '/bin/true',
          [],
          opts('bwrap', {
            binds: [
              { src: '/usr', dst: '/pin-ro', readonly: true, fd: a },
              { src: '/tmp', dst: '/plain', readonly: true },
              { src: '/tmp', dst: '/pin-rw', fd: b },
            ],
          }),
        );
        const argv = bwrapArgv(p.argv);
        expect(argv.join(' ')).toContain(
          '--ro-bind-fd 4 /pin-ro --ro-bind /tmp /plain --bind-fd 5 /pin-rw',
        );
        expect(p.fds.filter((f) => f.purpose === 'bind')).toEqual([
          { fd: 4, purpose: 'bind' },
          { fd: 5, purpose: 'bind' },
        ]);
      } finally {
        closeSync(a);
        closeSync(b);
      }
    },
  );

  tb(named(bw, 'namespaces, ids, caps, env, chdir and the command'), () => {
    const p = plan(
      '/bin/echo',
      ['a b'],
      opts('bwrap', {
        policy: {
          clone_newnet: false,
          skip_setsid: true,
          cap: ['CAP_NET_RAW'],
          uidmap: [{ inside_id: '65534' }],
          gidmap: [{ inside_id: 'nogroup' }],
          envar: ['A=1', 'B'],
          cwd: '/tmp',
        },
        env: { C: '3' },
      }),
    );
    const a = bwrapArgv(p.argv);
    expect(p.runtime).toBe('bwrap');
    expect(a).not.toContain('--unshare-net');
    expect(a).not.toContain('--new-session');
    expect(a.slice(0, 6)).toEqual([
      '--unshare-user',
      '--uid',
      '65534',
      '--gid',
      '65534',
      '--unshare-pid',
    ]);
    expect(a.join(' ')).toContain(
      '--cap-drop ALL --cap-add CAP_NET_RAW --clearenv --setenv A 1 --setenv C 3',
    );
    expect(after(a, '--chdir')).toBe('/tmp');
    expect(a.slice(-5)).toEqual(['--json-status-fd', '3', '--', '/bin/echo', 'a b']);
    expect(p.fds).toEqual([{ fd: 3, purpose: 'status' }]);
  });

  tb(
    named(bw, 'mounts in order: root tmpfs, binds, data, symlink, tmpfs options, ro remounts'),
    () => {
      const p = plan(
        '/bin/true',
        [],
        opts('bwrap', {
          policy: {
            mount: [
              { src: '/usr', dst: '/usr', is_bind: true },
              { src: '/nope', dst: '/opt', is_bind: true, rw: true, mandatory: false },
              { src: '/dev/null', dst: '/dev/null', is_bind: true, rw: true },
              { dst: '/etc/hello', src_content: new TextEncoder().encode('hi\n') },
              { src: '/usr/bin', dst: '/bin', is_symlink: true },
              { dst: '/tmp', fstype: 'tmpfs', options: 'size=4m,mode=1777' },
              { dst: '/dev/mqueue', fstype: 'mqueue', rw: true },
            ],
            mount_proc: true,
          },
          binds: [],
          cwd: '/',
        }),
      );
      const a = bwrapArgv(p.argv).join(' ');
      expect(a).toContain(
        '--size 16777216 --tmpfs / --ro-bind /usr /usr --bind-try /nope /opt ' +
          '--dev-bind /dev/null /dev/null --perms 0644 --ro-bind-data 4 /etc/hello ' +
          '--symlink /usr/bin /bin --size 4194304 --perms 1777 --tmpfs /tmp --mqueue /dev/mqueue ' +
          '--proc /proc --remount-ro /tmp --remount-ro /proc --remount-ro / --chdir /',
      );
      expect(p.fds).toEqual([
        { fd: 3, purpose: 'status' },
        { fd: 4, purpose: 'data' },
      ]);
    },
  );

  tb(named(bw, 'host wrappers: nice, taskset, setarch, choom, prlimit with nsjail units'), () => {
    const p = plan(
      '/bin/true',
      [],
      opts('bwrap', {
        policy: {
          nice_level: 5,
          max_cpus: 1,
          persona_addr_no_randomize: true,
          oom_score_adj: 500,
          rlimit_as: 16n,
          rlimit_as_type: 'VALUE',
          rlimit_memlock: 64n,
          rlimit_memlock_type: 'VALUE',
          rlimit_cpu_type: 'INF',
        },
      }),
    );
    const w = p.argv
      .slice(
        0,
        p.argv.findIndex((a) => a.endsWith('/bwrap')),
      )
      .join(' ');
    const adj = 5 - getPriority(0);
    expect(w).toMatch(
      new RegExp(
        `nice -n ${adj} \\S*taskset -c \\d+ \\S*setarch \\S+ --addr-no-randomize \\S*choom -n 500 -- \\S*prlimit `,
      ),
    );
    expect(w).toContain('--as=16777216:16777216');
    expect(w).toContain('--memlock=65536:65536');
    expect(w).toContain('--cpu=unlimited:unlimited');
    expect(w).toContain('--nofile=256:256');
    const none = plan(
      '/bin/true',
      [],
      opts('bwrap', { policy: { disable_rl: true, nice_level: getPriority(0) } }),
    );
    expect(none.argv[0]).toMatch(/bwrap$/);
  });

  tb(named(bw, 'cgroup limits hold bwrap on --block-fd'), () => {
    const p = plan(
      '/bin/true',
      [],
      opts('bwrap', {
        policy: { cgroup_pids_max: 10n, mount: [{ dst: '/x', src_content: new Uint8Array([1]) }] },
      }),
    );
    const a = bwrapArgv(p.argv);
    expect(after(a, '--block-fd')).toBe('4');
    expect(after(a, '--ro-bind-data')).toBe('5');
    expect(p.fds.map((f) => f.purpose)).toEqual(['status', 'block', 'data']);
  });
});

describe('nsjail', () => {
  tn(named(nj, 'argv and the effective config text'), () => {
    const p = plan(
      '/bin/echo',
      ['x'],
      opts('nsjail', {
        policy: { log_file: '/var/log/x', log_level: 'WARNING' },
        env: { A: '1' },
        cwd: '/tmp',
      }),
    );
    expect(p.runtime).toBe('nsjail');
    const i = p.argv.indexOf('--log_fd');
    expect(p.argv.slice(i)).toEqual([
      '--log_fd',
      '3',
      '--config',
      CONFIG_PLACEHOLDER,
      '--',
      '/bin/echo',
      'x',
    ]);
    const cfg = parsePolicy(p.config!).policy;
    expect(cfg.log_file).toBeUndefined();
    expect(cfg.log_level).toBe('INFO');
    expect(cfg.cwd).toBe('/tmp');
    expect(cfg.envar).toEqual([...TEST_POLICY.envar!, 'A=1']);
    expect(cfg.mount!.at(-1)).toMatchObject({ dst: '/fixtures', is_bind: true, rw: false });
    expect(p.notes.join()).toContain('log_fd/log_file replaced');
  });
});

test('no runtime: E_NO_RUNTIME names both and how to install', () => {
  expect(() => resolveRuntime('auto', { PATH: '/nonexistent' })).toThrow(
    expect.objectContaining({
      code: 'E_NO_RUNTIME',
      message: expect.stringMatching(
        /neither nsjail .* nor bwrap .*unjailed[\s\S]*apt-get install bubblewrap[\s\S]*nsjail from source/,
      ),
    }),
  );
  expect(() => resolveRuntime('bwrap', { KTL_BWRAP_BIN: '/nonexistent/bwrap' })).toThrow(
    expect.objectContaining({
      code: 'E_NO_RUNTIME',
      message: expect.stringContaining('KTL_BWRAP_BIN'),
    }),
  );
  expect(resolveRuntime('auto', { PATH: '/nonexistent', KTL_NSJAIL_BIN: '/bin/true' })).toEqual({
    name: 'nsjail',
    path: '/bin/true',
  });
});
