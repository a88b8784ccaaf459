/**
 * `formatPolicy` never changes a value, as nsjail itself reads the policy: nsjail (KTL_NSJAIL_BIN)
 * parses the original and the formatted file, and the messages it logs (`-v` prints the parsed
 * config) must be the same, and the formatted file accepted.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { formatPolicy } from '../src/index';
import { findNsjail, repoRoot } from './helpers';

const nsjail = findNsjail();
const gate = nsjail.path ? test : test.skip;
const label = (s: string) => (nsjail.path ? s : `${s} (skipped: ${nsjail.reason})`);
const dir = mkdtempSync(join(tmpdir(), 'ktl-fmt-nsjail-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The message nsjail parsed from `file` (its debug dump), or why it did not parse it. */
function nsjailParsed(file: string): { message?: string; log: string } {
  // A mount of / gives the jail a /bin/true; whether it runs does not matter, the dump comes first.
  const r = spawnSync(nsjail.path!, ['-v', '--config', file, '--', '/bin/true'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  const log = r.stderr ?? '';
  const m = /Parsed (?:JSON|TextProto) config from '[^']*':\n'([\s\S]*?)'\n\[/.exec(log);
  return m?.[1] !== undefined ? { message: m[1], log } : { log };
}

const cases: { name: string; bytes: Buffer }[] = [
  {
    name: 'ProtoJSON with 64-bit integers past 2^53',
    bytes: Buffer.from(
      '{"rlimitAs": 9007199254740993, "cgroupMemMax": "18446744073709551615",' +
        '"cgroupPidsMax": 9223372036854775807, "rlimitFsize": 1e3, "timeLimit": 10.0}',
    ),
  },
  {
    name: 'ProtoJSON with escapes and non-ASCII text',
    bytes: Buffer.from(
      '{"hostname":"caf\u00e9","envar":["A=\\u00e9\\/\\ud83d\\ude00","B=\\"q\\""],' +
        '"mount":[{"dst":"/t","fstype":"tmpfs","options":"size=1"}],"uidmap":[]}',
    ),
  },
  { name: 'a policy of only white space', bytes: Buffer.from(' \n\t\n') },
  {
    name: 'text with a byte that is not UTF-8 in a comment',
    bytes: Buffer.from('hostname:"h" # caf\xe9\n', 'latin1'),
  },
  ...readdirSync(join(repoRoot, 'testdata', 'sandbox'))
    .filter((f) => f.endsWith('.cfg'))
    .map((f) => ({
      name: `testdata/${f}`,
      bytes: readFileSync(join(repoRoot, 'testdata', 'sandbox', f)),
    })),
];

describe('formatting keeps every value, as nsjail reads it', () => {
  gate.each(cases)(label('$name'), (c) => {
    const base = join(dir, c.name.replace(/[^a-z0-9]+/gi, '_'));
    writeFileSync(`${base}.orig`, c.bytes);
    writeFileSync(`${base}.fmt`, formatPolicy(c.bytes, { filename: c.name }));
    const before = nsjailParsed(`${base}.orig`);
    const after = nsjailParsed(`${base}.fmt`);
    expect(before.message).toBeDefined();
    expect({ formatted: after.message, log: after.message === undefined ? after.log : '' }).toEqual(
      { formatted: before.message, log: '' },
    );
  });
});
