import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { formatPolicy, parsePolicy } from '../src/index';
import { nsjailExamples, repoRoot } from './helpers';

describe('formatPolicy', () => {
  test('normalizes layout, keeps comments, order and literal spellings', () => {
    const src = [
      '# header comment',
      'hostname:"box" ; time_limit : 0x10 # hex stays',
      '',
      '',
      '# about mounts',
      'mount < src: "/usr" dst: "/usr" is_bind: true >',
      'mount [{ dst: "/tmp" fstype: "tmpfs" }, { dst: "/proc" fstype: "proc" }]',
      'envar: ["A=1","B=2"]',
      'seccomp_string: "ALLOW { read }"',
      '   "DEFAULT KILL" # why',
      'nice_level: -5',
      'user_net {}',
      '',
    ].join('\n');
    expect(formatPolicy(src)).toBe(
      [
        '# header comment',
        'hostname: "box"',
        'time_limit: 0x10 # hex stays',
        '',
        '# about mounts',
        'mount { src: "/usr" dst: "/usr" is_bind: true }',
        'mount { dst: "/tmp" fstype: "tmpfs" }',
        'mount { dst: "/proc" fstype: "proc" }',
        'envar: ["A=1", "B=2"]',
        'seccomp_string: "ALLOW { read }"',
        '    "DEFAULT KILL" # why',
        'nice_level: -5',
        'user_net {}',
        '',
      ].join('\n'),
    );
  });

  test('a one-line block that grows too long is split, and multi-line blocks stay multi-line', () => {
    const long = `mount { src: "${'a'.repeat(60)}" dst: "${'b'.repeat(30)}" is_bind: true }\n`;
    expect(formatPolicy(long)).toBe(
      `mount {\n  src: "${'a'.repeat(60)}"\n  dst: "${'b'.repeat(30)}"\n  is_bind: true\n}\n`,
    );
    expect(formatPolicy('mount {\n dst: "/x" }\n')).toBe('mount {\n  dst: "/x"\n}\n');
    expect(formatPolicy('user_net { rule4 { action: DROP } }\n')).toBe(
      'user_net {\n  rule4 { action: DROP }\n}\n',
    );
  });

  test('comments inside blocks stay inside', () => {
    const src = 'mount {\n# inner\n  dst: "/x" # trailing\n# last\n}\n';
    expect(formatPolicy(src)).toBe('mount {\n  # inner\n  dst: "/x" # trailing\n  # last\n}\n');
  });

  test('ProtoJSON: re-indented, every value as written (64-bit integers past 2^53 too)', () => {
    const src =
      '{"rlimitAs":9007199254740993, "cgroupMemMax": "18446744073709551615","envar":["A=\\u00e9\\/"],\n' +
      '"mount":[{"dst":"/t","fstype":"tmpfs","mandatory":false}],"uidmap":[],"user_net":{}, "timeLimit": 1e2}';
    const out = formatPolicy(src);
    expect(out).toBe(
      [
        '{',
        '  "rlimitAs": 9007199254740993,',
        '  "cgroupMemMax": "18446744073709551615",',
        '  "envar": [',
        '    "A=\\u00e9\\/"',
        '  ],',
        '  "mount": [',
        '    {',
        '      "dst": "/t",',
        '      "fstype": "tmpfs",',
        '      "mandatory": false',
        '    }',
        '  ],',
        '  "uidmap": [],',
        '  "user_net": {},',
        '  "timeLimit": 1e2',
        '}',
        '',
      ].join('\n'),
    );
    expect(parsePolicy(out).policy).toEqual(parsePolicy(src).policy);
    expect(parsePolicy(out).policy.rlimit_as).toBe(9007199254740993n);
    expect(formatPolicy(out)).toBe(out);
  });

  test('a policy of only white space becomes the empty policy, not an empty file', () => {
    const out = formatPolicy(' \n\t\n');
    expect(out).toBe('# empty policy: every field has its nsjail default\n');
    expect(parsePolicy(out).policy).toEqual({});
    expect(formatPolicy(out)).toBe(out);
  });

  test('bytes in, bytes out: text kept byte for byte, ProtoJSON as UTF-8', () => {
    const text = Buffer.from('hostname:"caf\xe9" # \xff\n', 'latin1');
    expect(Buffer.from(formatPolicy(text)).toString('latin1')).toBe('hostname: "caf\xe9" # \xff\n');
    const json = Buffer.from('{"hostname":"café"}', 'utf8');
    expect(Buffer.from(formatPolicy(json)).toString('utf8')).toBe('{\n  "hostname": "café"\n}\n');
    expect(() => formatPolicy(Buffer.from('{"hostname":"caf\xe9"}', 'latin1'))).toThrow(
      /non UTF-8/,
    );
  });

  test('refuses a policy that does not parse', () => {
    expect(() => formatPolicy('hostnme: "x"', { filename: 'a.cfg' })).toThrow(/^a\.cfg:1:1: /);
  });

  // Ours are always here; nsjail's examples only when KTL_NSJAIL_EXAMPLES names their folder.
  const oursDir = join(repoRoot, 'testdata', 'sandbox');
  const examples = nsjailExamples();
  const exampleDir = examples.dir;
  const files = [
    ...readdirSync(oursDir)
      .filter((f) => f.endsWith('.cfg'))
      .map((f) => join(oursDir, f)),
    ...(exampleDir ? examples.files.map((f) => join(exampleDir, f)) : []),
  ];
  if (!exampleDir || examples.files.length === 0) {
    test.skip(`formatting nsjail's example policies: ${examples.reason}`, () => {});
  }
  test.each(files)('formatting %s is idempotent and meaning-preserving', (f) => {
    const text = readFileSync(f, 'utf8');
    const once = formatPolicy(text);
    expect(formatPolicy(once)).toBe(once);
    expect(parsePolicy(once).policy).toEqual(parsePolicy(text).policy);
    const comments = (t: string) =>
      t
        .split('\n')
        .filter((l) => /^[^"]*#/.test(l))
        .map((l) => l.slice(l.indexOf('#')).trim());
    expect(comments(once)).toEqual(comments(text));
  });
});
