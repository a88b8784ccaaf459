import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { formatDiagnostic } from '../src/diagnostics';
import { lintPolicy } from '../src/lint';
import { parsePolicy } from '../src/parse';
import { repoRoot } from './helpers';

function codes(text: string): string[] {
  return lintPolicy(parsePolicy(text, { filename: 'l.cfg' })).map((d) => d.code);
}

describe('lints', () => {
  test.each([
    ['rlimit_as given in bytes', 'rlimit_as: 8388608', 'NSJ-L001'],
    [
      'rlimit_memlock in KiB, huge',
      'rlimit_memlock: 2147483648\nrlimit_memlock_type: VALUE',
      'NSJ-L001',
    ],
    ['rlimit value ignored by SOFT type', 'rlimit_stack: 64', 'NSJ-L002'],
    ['rw bind of /', 'mount { src: "/" dst: "/" is_bind: true rw: true }', 'NSJ-L010'],
    ['rw bind of /etc', 'mount { src: "/etc/" dst: "/etc" is_bind: true rw: true }', 'NSJ-L010'],
    ['rw bind of /home', 'mount { src: "/home" dst: "/home" is_bind: true rw: true }', 'NSJ-L010'],
    ['rw bind of /root', 'mount { src: "/root" dst: "/root" is_bind: true rw: true }', 'NSJ-L010'],
    ['rw bind of /proc', 'mount { src: "/proc" dst: "/proc" is_bind: true rw: true }', 'NSJ-L010'],
    ['rw bind of /sys', 'mount { src: "/sys" dst: "/sys" is_bind: true rw: true }', 'NSJ-L010'],
    [
      'docker socket, even read-only',
      'mount { src: "/var/run/docker.sock" dst: "/s" is_bind: true }',
      'NSJ-L011',
    ],
    [
      'containerd socket',
      'mount { src: "/run/containerd/containerd.sock" dst: "/s" is_bind: true }',
      'NSJ-L011',
    ],
    [
      'buildkitd socket',
      'mount { src: "/run/buildkit/buildkitd.sock" dst: "/s" is_bind: true }',
      'NSJ-L011',
    ],
    ['/run holds sockets', 'mount { src: "/run" dst: "/run" is_bind: true }', 'NSJ-L011'],
    ['/dev rw', 'mount { src: "/dev" dst: "/dev" is_bind: true rw: true }', 'NSJ-L012'],
    ['keep_caps without user namespace', 'keep_caps: true\nclone_newuser: false', 'NSJ-L020'],
    ['no user namespace', 'clone_newuser: false', 'NSJ-L021'],
    ['hermetic name, shared network', 'name: "hermetic build"\nclone_newnet: false', 'NSJ-L040'],
    ['offline description, user_net', 'description: "offline"\nuser_net {}', 'NSJ-L041'],
    ['host network', 'clone_newnet: false', 'NSJ-L042'],
    ['keep_env', 'keep_env: true', 'NSJ-L050'],
    ['setuid allowed', 'disable_no_new_privs: true', 'NSJ-L051'],
    ['skip_setsid', 'skip_setsid: true', 'NSJ-L052'],
    ['no_pivotroot', 'no_pivotroot: true', 'NSJ-L053'],
  ])('%s', (_name, text, code) => {
    expect(codes(text)).toContain(code);
  });

  test.each([
    ['read-only bind of /etc', 'mount { src: "/etc" dst: "/etc" is_bind: true }'],
    ['rlimit_as in MiB', 'rlimit_as: 4096'],
    ['rlimit_as INF', 'rlimit_as_type: INF'],
    ['rw tmpfs', 'mount { dst: "/tmp" fstype: "tmpfs" rw: true }'],
    ['rw bind of a work dir', 'mount { src: "/work/ctx" dst: "/ctx" is_bind: true rw: true }'],
  ])('no finding: %s', (_name, text) => {
    expect(codes(text)).toEqual([]);
  });

  test('messages explain the unit and the fix, positioned at the field', () => {
    const [d] = lintPolicy(parsePolicy('name: "x"\nrlimit_as: 8388608\n', { filename: 'l.cfg' }));
    expect(formatDiagnostic(d!)).toBe(
      'l.cfg:2:1: warning NSJ-L001: rlimit_as is in MiB: 8388608 means 8 TiB, which is no limit in practice\n' +
        '  hint: if you meant 8 MiB, write rlimit_as: 8; for no limit write rlimit_as_type: INF',
    );
  });

  test('a lint on a nested field points at that mount', () => {
    const ds = lintPolicy(
      parsePolicy(
        'mount { dst: "/a" fstype: "tmpfs" }\n\nmount {\n  src: "/"\n  dst: "/"\n  is_bind: true\n  rw: true\n}\n',
        { filename: 'l.cfg' },
      ),
    );
    expect(ds.map((d) => [d.code, d.line, d.column, d.path])).toEqual([
      ['NSJ-L010', 3, 1, 'mount[1]'],
    ]);
  });

  test('the testdata policies are lint-clean apart from notes', () => {
    for (const name of ['linux-ci', 'linux-strict', 'hermetic']) {
      const text = readFileSync(join(repoRoot, 'testdata', 'sandbox', `${name}.cfg`), 'utf8');
      expect({
        name,
        findings: lintPolicy(parsePolicy(text)).filter((d) => d.severity !== 'info'),
      }).toEqual({ name, findings: [] });
    }
  });
});

describe('seccomp lints', () => {
  test('DEFAULT ALLOW with nothing denied filters nothing', () => {
    expect(codes('seccomp_string: "ALLOW { read } DEFAULT ALLOW"')).toContain('NSJ-L030');
    expect(codes('seccomp_string: "DEFAULT ALLOW"')).toContain('NSJ-L030');
  });
  test('a deny-list is noted', () => {
    expect(codes('seccomp_string: "ERRNO(1) { ptrace } DEFAULT ALLOW"')).toEqual(['NSJ-L032']);
  });
  test('an allow-list is fine', () => {
    expect(codes('seccomp_string: "ALLOW { read, write } DEFAULT KILL"')).toEqual([]);
  });
});
