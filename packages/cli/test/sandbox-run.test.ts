import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { ktl } from './helpers';

// Real bubblewrap, through the built CLI. bubblewrap is installed by scripts/setup.sh.
const hasBwrap = ktl(['sandbox', 'doctor', '--json']).stdout.includes('"bwrap"');
const bwrapTest = hasBwrap ? test : test.skip;
const why = hasBwrap ? '' : ' [skipped: no bubblewrap on this machine; apt-get install bubblewrap]';
const dir = mkdtempSync(join(tmpdir(), 'ktl-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'host-marker'), 'host secret');

describe('ktl sandbox run', () => {
  bwrapTest(`exits with the command's status and hides the host${why}`, () => {
    const r = ktl([
      'sandbox',
      'run',
      '--',
      '/bin/sh',
      '-c',
      `cat ${dir}/host-marker; echo "host=$(hostname)"; exit 7`,
    ]);
    expect(r.code).toBe(7);
    expect(r.stdout).toContain('host=ktl-sandbox');
    expect(r.stderr).toContain('No such file or directory');
    expect(r.stdout).not.toContain('host secret');
  });

  bwrapTest(`--bind makes a host dir visible, read-only with :ro${why}`, () => {
    const r = ktl([
      'sandbox',
      'run',
      '--bind',
      `${dir}:/data:ro`,
      '--',
      '/bin/sh',
      '-c',
      'cat /data/host-marker; touch /data/x 2>/dev/null && echo writable || echo read-only',
    ]);
    expect(r.stdout).toBe('host secretread-only\n');
    expect(r.code).toBe(0);
  });

  bwrapTest(`--env and --cwd${why}`, () => {
    const r = ktl([
      'sandbox',
      'run',
      '--env',
      'GREETING=hello',
      '--cwd',
      '/usr',
      '--',
      '/bin/sh',
      '-c',
      'echo "$GREETING $(pwd)"',
    ]);
    expect(r.stdout).toBe('hello /usr\n');
  });

  bwrapTest(`128+N when the command is killed by a signal${why}`, () => {
    // The command is pid 1 of its namespace, which the kernel shields from its own signals;
    // a process it starts is not.
    expect(
      ktl(['sandbox', 'run', '--', '/bin/sh', '-c', '/bin/sh -c "kill -9 \\$\\$"; exit $?']).code,
    ).toBe(137);
  });

  bwrapTest(`--timeout kills the jail: 124${why}`, () => {
    const r = ktl(['sandbox', 'run', '--timeout', '1', '--', '/bin/sleep', '30']);
    expect(r.code).toBe(124);
    expect(r.stderr).toContain('timed out after 1 s');
  });

  bwrapTest(`the runtime failing before the command is 71 with its own words${why}`, () => {
    // bubblewrap named: with nsjail installed too, auto would pick nsjail (its words differ).
    const r = ktl([
      'sandbox',
      'run',
      '--runtime',
      'bwrap',
      '--bind',
      `${dir}/nope:/x`,
      '--',
      '/bin/true',
    ]);
    expect(r.code).toBe(71);
    expect(r.stderr).toContain("Can't find source path");
  });

  test('a malformed policy fails with FILE:LINE:COL before anything runs', () => {
    const f = join(dir, 'bad.cfg');
    writeFileSync(f, 'mount { dst: "/x" fstype: tmpfs }\n');
    const r = ktl(['sandbox', 'run', '--policy', f, '--', '/bin/true']);
    expect(r.code).toBe(71);
    expect(r.stderr).toContain(`${f}:1:27: Expected string, got: tmpfs`);
  });

  bwrapTest(`a seccomp policy is enforced under bubblewrap${why}`, () => {
    const f = join(dir, 'seccomp-ok.cfg');
    writeFileSync(
      f,
      'mount { src: "/" dst: "/" is_bind: true }\nseccomp_string: "ERRNO(1) { newuname } DEFAULT ALLOW"\n',
    );
    const r = ktl([
      'sandbox',
      'run',
      '--runtime',
      'bwrap',
      '--policy',
      f,
      '--',
      '/bin/sh',
      '-c',
      'uname; echo rc=$?',
    ]);
    expect(r.stdout).toContain('rc=1');
    expect(r.stderr).toContain('Operation not permitted');
  });

  test('a field bubblewrap cannot enforce is refused, naming the field and the way out', () => {
    const f = join(dir, 'notify.cfg');
    writeFileSync(
      f,
      'mount { src: "/" dst: "/" is_bind: true }\nseccomp_string: "USER_NOTIF { read } DEFAULT ALLOW"\n',
    );
    const r = ktl(['sandbox', 'run', '--runtime', 'bwrap', '--policy', f, '--', '/bin/true']);
    expect(r.code).toBe(71);
    expect(r.stderr).toContain('seccomp_string');
    expect(r.stderr).toContain('allowUnenforced');
  });

  test('a policy nsjail would refuse is refused before anything runs, pointing into the file', () => {
    const f = join(dir, 'kafel.cfg');
    writeFileSync(f, 'name: "k"\nseccomp_string: "ALLOW { uname }"\n');
    const r = ktl(['sandbox', 'run', '--policy', f, '--', '/bin/true']);
    expect(r.code).toBe(71);
    expect(r.stderr).toContain(
      `${f}:2:26: NSJ-V012: seccomp policy: Undefined identifier \`uname'`,
    );
    expect(r.stderr).toContain('kafel calls it `newuname`');
  });

  test('bad usage is 2', () => {
    expect(ktl(['sandbox', 'run', '--bind', 'nocolon', '--', '/bin/true']).code).toBe(2);
    expect(ktl(['sandbox', 'run', '--runtime', 'docker', '--', '/bin/true']).code).toBe(2);
    expect(ktl(['sandbox', 'run', '--timeout', '0', '--', '/bin/true']).code).toBe(2);
  });

  test('--dry-run prints the runtime command line', () => {
    const r = ktl(['sandbox', 'run', '--dry-run', '--runtime', 'bwrap', '--', '/bin/true']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# runtime: bwrap\n.*bwrap .*--unshare-user .* -- \/bin\/true\n/);
  });
});

describe('ktl sandbox doctor', () => {
  bwrapTest(`reports runtimes and live probes${why}`, () => {
    const r = ktl(['sandbox', 'doctor', '--json']);
    const rep = JSON.parse(r.stdout) as {
      selected: string;
      probes: { name: string; ok: boolean }[];
    };
    expect(rep.probes.map((p) => [p.name, p.ok])).toEqual(
      expect.arrayContaining([
        ['host-marker-invisible', true],
        ['network-isolated', true],
      ]),
    );
    const text = ktl(['sandbox', 'doctor']);
    expect(text.stdout).toContain('bwrap probe host-marker-invisible');
  });
});

describe('ktl sandbox run --dry-run --dump-seccomp', () => {
  test('prints the compiled filter, disassembled', () => {
    const f = join(dir, 'dump.cfg');
    writeFileSync(
      f,
      'mount { src: "/" dst: "/" is_bind: true }\nseccomp_string: "ERRNO(1) { socket { family == 2 } } DEFAULT ALLOW"\n',
    );
    const r = ktl([
      'sandbox',
      'run',
      '--dry-run',
      '--dump-seccomp',
      '--policy',
      f,
      '--',
      '/bin/true',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /# seccomp: \d+ instructions for (x86_64|aarch64)\n0000: ld {2}A = arch\n/,
    );
    expect(r.stdout).toContain('ld  A = args[0].lo');
    expect(r.stdout).toContain('ret ERRNO(1)');
  });
  test('--dump-seccomp needs --dry-run', () => {
    expect(ktl(['sandbox', 'run', '--dump-seccomp', '--', '/bin/true']).code).toBe(2);
  });
});
