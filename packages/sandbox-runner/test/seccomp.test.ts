import { describe, expect, test } from '@jest/globals';
import { syscallNames } from '@ktl/nsjail-config';
import { run } from '../src/run';
import { gate, opts, type Runtime } from './helpers';

// The same kafel policies, under bubblewrap (compiled by ktl) and nsjail (compiled by its own
// kafel): the command must see the same results.
const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const unameName = 'newuname';

describe.each(['bwrap', 'nsjail'] as Runtime[])('seccomp under %s', (rt) => {
  const g = gate(rt);
  const t = g.ok ? test : test.skip;
  const named = (name: string) => (g.ok ? name : `${name} [skipped: ${g.why}]`);
  const withFilter = (lines: string[], file: string, args: string[]) =>
    run(file, args, opts(rt, { policy: { seccomp_string: lines }, reject: false }));

  t(named('ERRNO(n) is seen by the command as errno n'), async () => {
    const r = await withFilter([`ERRNO(42) { ${unameName} }`, 'DEFAULT ALLOW'], '/bin/sh', [
      '-c',
      'uname; echo "rc=$?"',
    ]);
    expect(r.stdout).toContain('rc=1');
    expect(r.stderr).toContain('No message of desired type'); // strerror(42), ENOMSG
  });

  t(named('KILL_PROCESS is seen as death by SIGSYS (exit 159)'), async () => {
    const r = await withFilter(
      [`KILL_PROCESS { ${unameName} }`, 'DEFAULT ALLOW'],
      '/usr/bin/uname',
      [],
    );
    expect([r.exitCode, r.signal]).toEqual([159, 'SIGSYS']);
  });

  t(named('an argument filter: socket denied for AF_INET, allowed for AF_UNIX'), async () => {
    const r = await withFilter(
      ['#define AF_INET 2', 'ERRNO(1) { socket { family == AF_INET } }', 'DEFAULT ALLOW'],
      '/usr/bin/node',
      ['/fixtures/sock.js'],
    );
    expect(r.stdout).toBe('unix=ENOENT inet=EPERM\n');
  });

  t(named('without the filter the same program creates both sockets'), async () => {
    const r = await withFilter(['DEFAULT ALLOW'], '/usr/bin/node', ['/fixtures/sock.js']);
    expect(r.stdout).toBe('unix=ENOENT inet=ECONNREFUSED\n');
  });

  t(
    named('a 400-entry allow-list without uname, DEFAULT ERRNO(38), POLICY/USE and #define'),
    async () => {
      // Every syscall kafel knows but uname, plus raw numbers: over 400 entries, long jumps.
      const allowed = [
        ...syscallNames(arch).filter((n) => n !== unameName),
        ...Array.from({ length: 40 }, (_, i) => `SYSCALL[${2000 + i}]`),
      ];
      const r = await withFilter(
        [
          '#define ENOSYS 38',
          `POLICY everything { ALLOW { ${allowed.join(', ')} } }`,
          'USE everything',
          'DEFAULT ERRNO(38)',
        ],
        '/bin/sh',
        ['-c', 'uname; echo "rc=$?"'],
      );
      expect(allowed.length).toBeGreaterThan(arch === 'x86_64' ? 400 : 350);
      expect(r.stdout).toContain('rc=1');
      expect(r.stderr).toContain('Function not implemented'); // strerror(38)
    },
  );
});
