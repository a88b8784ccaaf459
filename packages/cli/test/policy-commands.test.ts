import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { ktl, repoRoot } from './helpers';

const dir = mkdtempSync(join(tmpdir(), 'ktl-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const policies = ['linux-ci', 'linux-strict', 'hermetic'].map((n) =>
  join(repoRoot, 'testdata', 'sandbox', `${n}.cfg`),
);

function file(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('ktl basics', () => {
  test('--version prints the CLI version', () => {
    const r = ktl(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^@ktl\/cli\/0\.1\.0 linux-/);
  });
  test('--help lists the sandbox topic', () => {
    const r = ktl(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('sandbox');
  });
});

describe('ktl sandbox policy validate', () => {
  test('the bundled policies are valid', () => {
    const r = ktl(['sandbox', 'policy', 'validate', ...policies]);
    expect(r.stderr).toContain('linux-ci.cfg: valid (0 error(s), 0 warning(s))');
    expect(r.code).toBe(0);
  });

  test('a syntax error: exit 1, FILE:LINE:COL, code and hint', () => {
    const f = file('typo.cfg', 'name: "x"\nhostnme: "box"\n');
    const r = ktl(['sandbox', 'policy', 'validate', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${f}:2:1: error NSJ-E_UNKNOWN_FIELD: Message type "nsjail.NsJailConfig" has no field named "hostnme".`,
    );
    expect(r.stderr).toContain('hint: did you mean "hostname"?');
  });

  test('warnings alone keep exit 0', () => {
    const f = file('warn.cfg', 'rlimit_as: 8388608\n');
    const r = ktl(['sandbox', 'policy', 'validate', f]);
    expect(r.stderr).toContain(
      `${f}:1:1: warning NSJ-L001: rlimit_as is in MiB: 8388608 means 8 TiB`,
    );
    expect(r.code).toBe(0);
  });

  test('a rule nsjail enforces at start-up is an error', () => {
    const f = file('swap.cfg', 'cgroup_mem_memsw_max: 100\ncgroup_mem_swap_max: 0\n');
    const r = ktl(['sandbox', 'policy', 'validate', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${f}:2:1: error NSJ-V001: cannot set both cgroup_mem_memsw_max and cgroup_mem_swap_max`,
    );
  });

  test('a missing file is an error naming it', () => {
    const r = ktl(['sandbox', 'policy', 'validate', join(dir, 'nope.cfg')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("nope.cfg: error NSJ-E_IO: Couldn't read config file");
  });

  test('--json reports every file', () => {
    const bad = file('bad.cfg', 'mount { src: "/" }\n');
    const r = ktl(['sandbox', 'policy', 'validate', '--json', policies[0]!, bad]);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as {
      valid: boolean;
      files: { file: string; valid: boolean; diagnostics: { code: string; line: number }[] }[];
    };
    expect(out.valid).toBe(false);
    expect(out.files.map((f) => f.valid)).toEqual([true, false]);
    expect(out.files[1]!.diagnostics[0]).toMatchObject({
      code: 'NSJ-E_MISSING_REQUIRED',
      line: 1,
      column: 7,
    });
  });

  test('bad usage exits 2', () => {
    expect(ktl(['sandbox', 'policy', 'validate']).code).toBe(2);
    expect(ktl(['sandbox', 'policy', 'validate', '--arch', 'mips', policies[0]!]).code).toBe(2);
  });
});

describe('ktl sandbox policy fmt', () => {
  test('--check passes on the bundled policies', () => {
    const r = ktl(['sandbox', 'policy', 'fmt', '--check', ...policies]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  test('--write formats in place, keeping comments; --check then passes', () => {
    const f = file('messy.cfg', '# keep me\nhostname:"a";mount<dst:"/t" fstype:"tmpfs">\n');
    expect(ktl(['sandbox', 'policy', 'fmt', '--check', f]).code).toBe(1);
    expect(ktl(['sandbox', 'policy', 'fmt', '--write', f]).code).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe(
      '# keep me\nhostname: "a"\nmount { dst: "/t" fstype: "tmpfs" }\n',
    );
    expect(ktl(['sandbox', 'policy', 'fmt', '--check', f]).code).toBe(0);
  });

  test('ProtoJSON keeps 64-bit integers past 2^53 exactly', () => {
    const f = file(
      'big.json',
      '{"rlimitAs": 9007199254740993, "cgroupMemMax": "18446744073709551615"}',
    );
    const r = ktl(['sandbox', 'policy', 'fmt', f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      '{\n  "rlimitAs": 9007199254740993,\n  "cgroupMemMax": "18446744073709551615"\n}\n',
    );
  });

  test('a policy of only white space is written as the empty policy, which validates', () => {
    const f = file('blank.cfg', '  \n\n');
    expect(ktl(['sandbox', 'policy', 'fmt', '--write', f]).code).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe('# empty policy: every field has its nsjail default\n');
    expect(ktl(['sandbox', 'policy', 'validate', f]).code).toBe(0);
  });

  test('text policies are kept byte for byte, bytes that are not UTF-8 included', () => {
    const f = join(dir, 'latin1.cfg');
    writeFileSync(f, Buffer.from('hostname:"caf\xe9"\n', 'latin1'));
    expect(ktl(['sandbox', 'policy', 'fmt', '--write', f]).code).toBe(0);
    expect(readFileSync(f).toString('latin1')).toBe('hostname: "caf\xe9"\n');
  });

  test('--write and --check together are refused', () => {
    expect(ktl(['sandbox', 'policy', 'fmt', '--write', '--check', policies[0]!]).code).toBe(2);
  });

  test('a broken file is not rewritten', () => {
    const f = file('broken.cfg', 'hostname: "a\n');
    const r = ktl(['sandbox', 'policy', 'fmt', '--write', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${f}:1:11: String literals cannot cross line boundaries.`);
    expect(readFileSync(f, 'utf8')).toBe('hostname: "a\n');
  });
});

describe('ktl sandbox policy explain', () => {
  test('says what the hermetic jail sees', () => {
    const r = ktl([
      'sandbox',
      'policy',
      'explain',
      join(repoRoot, 'testdata', 'sandbox', 'hermetic.cfg'),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Network:\n  - loopback only');
    expect(r.stdout).toContain('/usr: host /usr, read-only');
    expect(r.stdout).toContain('uid 65534 inside = (caller) outside');
    expect(r.stdout).toContain('no capabilities');
  });

  test('an x32 number: nsjail applies the rule, bubblewrap kills the call; --runtime picks one', () => {
    const f = file('x32.cfg', 'seccomp_string: "ERRNO(1) { SYSCALL[-1] } DEFAULT ALLOW"\n');
    const both = ktl(['sandbox', 'policy', 'explain', '--arch', 'x86_64', f]);
    expect(both.code).toBe(0);
    expect(both.stdout).toContain(
      'syscall 4294967295: fails with errno 1 under nsjail; under bubblewrap the process is killed',
    );
    const bwrap = ktl([
      'sandbox',
      'policy',
      'explain',
      '--arch',
      'x86_64',
      '--runtime',
      'bwrap',
      f,
    ]);
    expect(bwrap.stdout).toContain(
      '  - x32 system calls (nr >= 0x40000000): the process is killed\n' +
        '  - syscall 4294967295 (never applies: x32 system calls are killed first): fails with errno 1\n',
    );
    const nsjail = ktl(['sandbox', 'policy', 'explain', '--runtime', 'nsjail', f]);
    expect(nsjail.stdout).toContain('  - syscall 4294967295: fails with errno 1\n');
    expect(ktl(['sandbox', 'policy', 'explain', '--runtime', 'docker', f]).code).toBe(2);
  });
});
