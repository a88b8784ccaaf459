import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { parseKafel } from '../../src/kafel';
import { invalidKafel, validKafel } from './cases';

describe('kafel: valid policies', () => {
  test.each(validKafel)('$name', ({ src }) => {
    const r = parseKafel(src, { arch: 'x86_64' });
    expect(r.ok ? 'ok' : r.error.message).toBe('ok');
  });

  test('the AST keeps structure, spans and constants', () => {
    const src =
      '#define ONE 1\nPOLICY p { ERRNO(13) { write { fd == ONE } } }\nUSE p\nDEFAULT KILL_PROCESS';
    const r = parseKafel(src, { arch: 'x86_64' });
    if (!r.ok) throw new Error(r.error.message);
    const p = r.program.policies.get('p')!;
    const entry = p.entries[0]!;
    expect(entry.type).toBe('action');
    if (entry.type !== 'action') return;
    expect(entry.action).toMatchObject({ kind: 'ERRNO', value: 13 });
    const f = entry.filters[0]!;
    expect(src.slice(f.syscall.offset, f.syscall.offset + f.syscall.length)).toBe('write');
    expect(f.expr).toMatchObject({
      type: 'binary',
      op: '==',
      left: { type: 'ident', name: 'fd' },
      right: { type: 'number', value: 1n },
    });
    expect(r.program.main?.entries).toEqual([
      expect.objectContaining({ type: 'use', policy: 'p' }),
    ]);
    expect(r.program.defaultAction).toMatchObject({ kind: 'KILL_PROCESS' });
  });

  test('operator precedence: && binds tighter than || and comma', () => {
    const r = parseKafel('ALLOW { write { fd == 1, fd == 2 && count < 3 || fd == 4 } }', {
      arch: 'x86_64',
    });
    if (!r.ok) throw new Error(r.error.message);
    const e = (r.program.main!.entries[0] as unknown as { filters: { expr: unknown }[] })
      .filters[0]!.expr as {
      op: string;
      left: { op: string };
      right: { op: string };
    };
    expect(e.op).toBe('||');
    expect(e.left.op).toBe('==');
    expect(e.right.op).toBe('||');
  });

  test('negative decimals wrap like strtoull', () => {
    const r = parseKafel('ALLOW { write { fd == -1 } }', { arch: 'x86_64' });
    if (!r.ok) throw new Error(r.error.message);
    const f = (
      r.program.main!.entries[0] as unknown as { filters: { expr: { right: { value: bigint } } }[] }
    ).filters[0]!;
    expect(f.expr.right.value).toBe(2n ** 64n - 1n);
  });
});

describe('kafel: invalid policies', () => {
  test.each(invalidKafel)('$name', (c) => {
    const r = parseKafel(c.src, { arch: 'x86_64' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.message).toContain(c.message);
    expect([r.error.line, r.error.column]).toEqual([c.line, c.column]);
    if (c.hint) expect(r.error.hint).toContain(c.hint);
  });

  test('names are checked per architecture', () => {
    expect(parseKafel('ALLOW { open }', { arch: 'x86_64' }).ok).toBe(true);
    const r = parseKafel('ALLOW { open }', { arch: 'aarch64' });
    expect(r.ok ? '' : `${r.error.message} ${r.error.hint}`).toContain('openat');
    expect(parseKafel('ALLOW { open ON x86_64 }', { arch: 'aarch64' }).ok).toBe(true);
  });
});

describe('kafel: fuzz', () => {
  const pieces = [
    'ALLOW',
    'KILL',
    'ERRNO',
    'POLICY',
    'USE',
    'DEFAULT',
    'ON',
    'SYSCALL',
    '#',
    'define',
    '{',
    '}',
    '(',
    ')',
    '[',
    ']',
    ',',
    '==',
    '&',
    '|',
    '&&',
    '||',
    '!',
    'read',
    'write',
    'fd',
    'x',
    '1',
    '0x',
    '-',
    '/*',
    '*/',
    '//',
    '\n',
    ' ',
    '"',
    '#include',
    '\r',
    '_',
  ];
  test('10000 random token soups never throw', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...pieces), { maxLength: 40 }),
        fc.string({ maxLength: 4 }),
        (parts, junk) => {
          const r = parseKafel(parts.join(' ') + junk, { arch: 'x86_64' });
          expect(typeof r.ok).toBe('boolean');
          if (!r.ok) expect(r.error.offset).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 10000 },
    );
  });

  test('deep nesting is an error, not a crash', () => {
    const deep = `ALLOW { write { ${'('.repeat(5000)}fd == 1${')'.repeat(5000)} } }`;
    expect(typeof parseKafel(deep).ok).toBe('boolean');
    const chain = `ALLOW { write { ${Array.from({ length: 300 }, () => 'fd == 1').join(' || ')} } }`;
    const r = parseKafel(chain, { arch: 'x86_64' });
    expect(r.ok ? '' : r.error.message).toContain('Max expression depth (200) exceeded');
  });
});
