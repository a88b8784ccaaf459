import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { parseKafel } from '../../src/kafel';
import { invalidKafel, validKafel } from './cases';

// parseKafel must only ever return: random token soups, random characters, and mutations of
// real policies (deletions, insertions, duplicated slices), 10 000 cases each way.
const PIECES = [
  'ALLOW',
  'LOG',
  'KILL',
  'KILL_PROCESS',
  'ERRNO',
  'ERRNO(1)',
  'TRAP',
  'TRACE',
  'USER_NOTIF',
  'POLICY',
  'USE',
  'DEFAULT',
  'ON',
  'SYSCALL',
  'SYSCALL[1]',
  '#',
  'define',
  '#define',
  '#include',
  '"x"',
  '{',
  '}',
  '(',
  ')',
  '[',
  ']',
  ',',
  '==',
  '!=',
  '<',
  '<=',
  '>',
  '>=',
  '&',
  '|',
  '&&',
  '||',
  '!',
  'read',
  'write',
  'uname',
  'fd',
  'count',
  'x',
  'p',
  '1',
  '0x',
  '0x1f',
  '017',
  '09',
  '0b1',
  '-1',
  '-',
  '18446744073709551616',
  '/*',
  '*/',
  '**/',
  '//',
  '\n',
  ' ',
  '\t',
  '\r',
  '_',
  '\0',
  ';',
  '=',
  'x86_64',
  'amd64',
  'sparc',
  '—',
  'constructor',
  'toString',
  'hasOwnProperty',
];
const corpus = [...validKafel.map((c) => c.src), ...invalidKafel.map((c) => c.src)];

function check(src: string): void {
  const r = parseKafel(src, { arch: 'x86_64' });
  if (r.ok) {
    expect(r.program.policies).toBeInstanceOf(Map);
    return;
  }
  const e = r.error;
  expect(e.code).toMatch(/^E_KAFEL_/);
  expect(e.code).not.toBe('E_KAFEL_INTERNAL');
  expect(e.message.length).toBeGreaterThan(0);
  expect(e.offset).toBeGreaterThanOrEqual(0);
  expect(e.offset + e.length).toBeLessThanOrEqual(src.length);
  const before = src.slice(0, e.offset).split('\n');
  expect([e.line, e.column]).toEqual([before.length, before[before.length - 1]!.length + 1]);
}

interface Mutation {
  base: string;
  edits: {
    at: number;
    kind: 'delete' | 'insert' | 'copy';
    size: number;
    piece: string;
    from: number;
  }[];
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  base: fc.constantFrom(...corpus),
  edits: fc.array(
    fc.record({
      at: fc.nat(),
      kind: fc.constantFrom('delete' as const, 'insert' as const, 'copy' as const),
      size: fc.integer({ min: 1, max: 8 }),
      piece: fc.constantFrom(...PIECES),
      from: fc.nat(),
    }),
    { maxLength: 4 },
  ),
});

function mutate({ base, edits }: Mutation): string {
  let s = base;
  for (const e of edits) {
    const at = e.at % (s.length + 1);
    if (e.kind === 'delete') s = s.slice(0, at) + s.slice(at + e.size);
    else if (e.kind === 'insert') s = s.slice(0, at) + e.piece + s.slice(at);
    else {
      const from = e.from % (s.length + 1);
      s = s.slice(0, at) + s.slice(from, from + e.size) + s.slice(at);
    }
  }
  return s;
}

describe('kafel: fuzz', () => {
  test('10000 token soups never throw', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...PIECES), { maxLength: 60 }),
        fc.constantFrom('', ' ', '\n'),
        (parts, sep) => check(parts.join(sep)),
      ),
      { numRuns: 10_000 },
    );
  });

  test('10000 mutated policies never throw', () => {
    fc.assert(
      fc.property(mutation, (m) => check(mutate(m))),
      { numRuns: 10_000 },
    );
  });

  test('10000 random strings never throw', () => {
    fc.assert(fc.property(fc.string({ maxLength: 80, unit: 'binary' }), check), {
      numRuns: 10_000,
    });
  });

  test('deep nesting is an error, not a crash', () => {
    for (const src of [
      `ALLOW { write { ${'('.repeat(20_000)}fd == 1${')'.repeat(20_000)} } }`,
      `ALLOW { write { ${'!'.repeat(20_000)}(fd == 1) } }`,
      `ALLOW { write { ${Array.from({ length: 5000 }, () => 'fd == 1').join(' || ')} } }`,
      `ALLOW { write { fd == ${Array.from({ length: 5000 }, () => '1').join(' | ')} } }`,
      `ALLOW { ${Array.from({ length: 20_000 }, () => 'read').join(', ')} }`,
    ])
      check(src);
  });
});
