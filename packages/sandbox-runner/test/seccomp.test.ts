import { describe, expect, test } from '@jest/globals';
import { explainPolicy, syscallNames } from '@ktl/nsjail-config';
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

  // x32 numbers have the 0x40000000 bit set; SYSCALL[-1] is 0xffffffff. kafel (nsjail) lets the
  // rule apply; ktl's filter for bubblewrap kills every x32 call first. explain says which.
  (arch === 'x86_64' ? t : test.skip)(
    named(
      arch === 'x86_64'
        ? 'a rule for an x32 number (SYSCALL[-1]) does what explain says for this runtime'
        : 'a rule for an x32 number [skipped: x32 numbers exist on x86_64 only]',
    ),
    async () => {
      const lines = ['ERRNO(1) { SYSCALL[-1] }', 'DEFAULT ALLOW'];
      const r = await withFilter(lines, '/usr/bin/perl', [
        '-e',
        'my $r = syscall(-1); printf "rc=%d errno=%d\\n", $r, $! + 0',
      ]);
      const said = explainPolicy({ seccomp_string: lines }, { runtime: rt, arch }).find(
        (s) => s.title === 'System calls',
      )?.lines;
      if (rt === 'nsjail') {
        expect(r.stdout).toBe('rc=-1 errno=1\n');
        expect(said).toContain('syscall 4294967295: fails with errno 1');
      } else {
        expect([r.exitCode, r.signal, r.stdout]).toEqual([159, 'SIGSYS', '']);
        expect(said).toContain('x32 system calls (nr >= 0x40000000): the process is killed');
        expect(said).toContain(
          'syscall 4294967295 (never applies: x32 system calls are killed first): fails with errno 1',
        );
      }
    },
  );

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
