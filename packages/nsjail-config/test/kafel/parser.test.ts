import { execFileSync } from 'node:child_process';
import { describe, expect, test } from '@jest/globals';
import { quoteString } from '../../src/emit';
import { parsePolicy, validatePolicy } from '../../src/index';
import { type Expr, type KafelProgram, type PolicyEntry, parseKafel } from '../../src/kafel';
import { dirFromEnv } from '../helpers';
import { invalidKafel, validKafel } from './cases';

function program(src: string, arch: 'x86_64' | 'aarch64' = 'x86_64'): KafelProgram {
  const r = parseKafel(src, { arch });
  if (!r.ok) throw new Error(`${r.error.line}:${r.error.column}: ${r.error.message}`);
  return r.program;
}

function mainEntries(src: string): PolicyEntry[] {
  return program(src).main?.entries ?? [];
}

function firstExpr(src: string): Expr {
  const e = mainEntries(src)[0];
  if (e?.type !== 'action' || !e.filters[0]?.expr) throw new Error('no condition');
  return e.filters[0].expr;
}

/** An expression back as text, fully parenthesised: shows how it was grouped. */
function shape(e: Expr): string {
  switch (e.type) {
    case 'number':
      return e.constant ?? String(e.value);
    case 'ident':
      return e.name;
    case 'not':
      return `!${shape(e.operand)}`;
    case 'binary':
      return `(${shape(e.left)} ${e.op} ${shape(e.right)})`;
  }
}

const slice = (src: string, s: { offset: number; length: number }) =>
  src.slice(s.offset, s.offset + s.length);

describe('kafel: valid policies', () => {
  test.each(validKafel)('$name', ({ src, arch }) => {
    const r = parseKafel(src, { arch: arch ?? 'x86_64' });
    expect(r.ok ? 'ok' : `${r.error.line}:${r.error.column}: ${r.error.message}`).toBe('ok');
  });
});

describe('kafel: the AST', () => {
  test('policies, USE, actions, constants and DEFAULT, with spans', () => {
    const src =
      '#define ONE 1\nPOLICY p { ERRNO(13) { write { fd == ONE } } }\nUSE p, KILL_THREAD { ptrace }\nDEFAULT KILL_PROCESS';
    const p = program(src);
    expect([...p.policies.keys()]).toEqual(['p', '@main']);
    expect(p.constants.get('ONE')).toBe(1n);
    const pol = p.policies.get('p')!;
    expect(slice(src, pol)).toBe('POLICY p { ERRNO(13) { write { fd == ONE } } }');
    const entry = pol.entries[0]!;
    if (entry.type !== 'action') throw new Error('expected an action block');
    expect(entry.action).toMatchObject({ kind: 'ERRNO', spelled: 'ERRNO', value: 13 });
    expect(slice(src, entry.action)).toBe('ERRNO(13)');
    expect(slice(src, entry)).toBe('ERRNO(13) { write { fd == ONE } }');
    const f = entry.filters[0]!;
    expect(slice(src, f)).toBe('write { fd == ONE }');
    expect(slice(src, f.syscall)).toBe('write');
    expect(f.expr).toMatchObject({
      type: 'binary',
      op: '==',
      left: { type: 'ident', name: 'fd' },
      right: { type: 'number', value: 1n, constant: 'ONE' },
    });
    expect(slice(src, f.expr!)).toBe('fd == ONE');
    const [use, kill] = p.main!.entries;
    expect(use).toMatchObject({ type: 'use', policy: 'p' });
    expect(slice(src, use!)).toBe('USE p');
    expect(kill).toMatchObject({
      type: 'action',
      action: { kind: 'KILL', spelled: 'KILL_THREAD' },
    });
    expect(p.defaultAction).toMatchObject({ kind: 'KILL_PROCESS' });
    expect(slice(src, p.defaultAction!)).toBe('KILL_PROCESS');
  });

  test('no DEFAULT and no top-level statements', () => {
    const p = program('POLICY p { ALLOW { read } }');
    expect(p.main).toBeUndefined();
    expect(p.defaultAction).toBeUndefined();
  });

  test.each([
    ['DENY', 'KILL'],
    ['KILL', 'KILL'],
    ['KILL_THREAD', 'KILL'],
    ['KILL_PROCESS', 'KILL_PROCESS'],
    ['USER_NOTIF', 'USER_NOTIF'],
    ['LOG', 'LOG'],
    ['TRAP(4)', 'TRAP'],
    ['TRACE(5)', 'TRACE'],
  ])('%s is %s', (spelled, kind) => {
    expect(mainEntries(`${spelled} { read }`)[0]).toMatchObject({ action: { kind } });
  });

  test('system call references: names, numbers, #defines (low 32 bits), declared arguments, guards', () => {
    const src =
      '#define MINE 0x100000005\nALLOW { read, SYSCALL[0x100000007], MINE(a, b) { a == 1 }, open ON { amd64, ARM64 } }';
    const e = mainEntries(src)[0];
    if (e?.type !== 'action') throw new Error('expected an action block');
    const [read, raw, mine, open] = e.filters;
    expect(read!.syscall).toMatchObject({ name: 'read' });
    expect(raw!.syscall).toMatchObject({ nr: 7 });
    expect(slice(src, raw!.syscall)).toBe('SYSCALL[0x100000007]');
    expect(mine!.syscall).toMatchObject({ nr: 5, constant: 'MINE', customArgs: ['a', 'b'] });
    expect(slice(src, mine!)).toBe('MINE(a, b) { a == 1 }');
    expect(open).toMatchObject({ syscall: { name: 'open' }, archs: ['x86_64', 'aarch64'] });
    expect(slice(src, open!)).toBe('open ON { amd64, ARM64 }');
  });

  test.each([
    // comma is the loosest OR, then ||, then &&
    [
      'fd == 1, fd == 2 && count < 3 || fd == 4',
      '((fd == 1) || (((fd == 2) && (count < 3)) || (fd == 4)))',
    ],
    ['fd == 1 || fd == 2 || fd == 3', '(((fd == 1) || (fd == 2)) || (fd == 3))'],
    ['fd == 1 && fd == 2 && fd == 3', '(((fd == 1) && (fd == 2)) && (fd == 3))'],
    // & binds tighter than |, both tighter than comparisons
    ['fd & 3 | 4 == 5', '(((fd & 3) | 4) == 5)'],
    ['fd | count & 2 == 2', '((fd | (count & 2)) == 2)'],
    ['(fd | count) & 2 == 2', '(((fd | count) & 2) == 2)'],
    // ! applies to the comparison that follows it
    ['!fd == 1', '!(fd == 1)'],
    ['!(fd == 1) || fd == 2', '(!(fd == 1) || (fd == 2))'],
    ['!!(fd == 1)', '!!(fd == 1)'],
    // parentheses: a group is a condition or a value, decided by what follows it
    ['(fd == 1)', '(fd == 1)'],
    ['((fd) | 2) == 3', '((fd | 2) == 3)'],
    ['(fd == 1 || fd == 2) && count > 0', '(((fd == 1) || (fd == 2)) && (count > 0))'],
    ['3 < fd', '(3 < fd)'],
    ['fd < count', '(fd < count)'],
  ])('precedence: %s', (cond, expected) => {
    expect(shape(firstExpr(`ALLOW { write { ${cond} } }`))).toBe(expected);
  });

  test.each([
    ['0x10', 16n],
    ['0xFFFFffffFFFFffff', 2n ** 64n - 1n],
    ['017', 15n],
    ['09', 0n], // strtoull base 8 stops at the 9
    ['0178', 15n],
    ['0b101', 5n],
    ['-1', 2n ** 64n - 1n],
    ['-18446744073709551615', 1n],
    ['18446744073709551615', 2n ** 64n - 1n],
  ])('number %s is %s', (text, value) => {
    const e = firstExpr(`ALLOW { write { fd == ${text} } }`);
    expect(e).toMatchObject({ right: { type: 'number', value } });
  });

  test('a #define substitutes only after it is read', () => {
    const p = program('#define fd 1\nALLOW { write { fd == 1 } }');
    const e = p.main!.entries[0];
    if (e?.type !== 'action') throw new Error('expected an action block');
    expect(e.filters[0]!.expr).toMatchObject({
      left: { type: 'number', value: 1n, constant: 'fd' },
    });
  });

  test('top-level statements are concatenated into @main in order', () => {
    const p = program('ALLOW { read } DEFAULT KILL POLICY x {} ERRNO(1) { write }, USE x');
    expect(
      p.main!.entries.map((e) => (e.type === 'use' ? `USE ${e.policy}` : e.action.kind)),
    ).toEqual(['ALLOW', 'ERRNO', 'USE x']);
  });

  test('names are checked for the architecture asked for (default: this machine)', () => {
    expect(parseKafel('ALLOW { open }', { arch: 'x86_64' }).ok).toBe(true);
    expect(parseKafel('ALLOW { open }', { arch: 'aarch64' }).ok).toBe(false);
    expect(parseKafel('ALLOW { open ON x86_64 }', { arch: 'aarch64' }).ok).toBe(true);
    const host = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
    expect(parseKafel('ALLOW { newuname }').ok).toBe(
      parseKafel('ALLOW { newuname }', { arch: host }).ok,
    );
  });
});

describe('kafel: invalid policies (message, line, column as kafel reports them)', () => {
  test.each(invalidKafel)('$name', (c) => {
    const r = parseKafel(c.src, { arch: c.arch ?? 'x86_64' });
    if (r.ok) throw new Error('accepted');
    expect({
      message: r.error.message,
      line: r.error.line,
      column: r.error.column,
      code: r.error.code,
    }).toEqual({
      message: expect.stringContaining(c.message),
      line: c.line,
      column: c.column,
      code: c.code,
    });
    if (c.hint) expect(r.error.hint).toContain(c.hint);
    expect(r.error.offset).toBeGreaterThanOrEqual(0);
    expect(r.error.offset + r.error.length).toBeLessThanOrEqual(c.src.length);
  });

  // As a seccomp_string (nsjail and ktl end each with '\n'), the source never ends there.
  test.each(invalidKafel.filter((c) => c.validWithNewline))(
    '$name: valid once followed by a newline, and so in a seccomp_string',
    (c) => {
      expect(parseKafel(`${c.src}\n`, { arch: c.arch ?? 'x86_64' }).ok).toBe(true);
      const policy = parsePolicy(`seccomp_string: ${quoteString(c.src)}\n`);
      expect(validatePolicy(policy, { arch: c.arch ?? 'x86_64' })).toEqual([]);
    },
  );

  test('the error span covers the offending text', () => {
    const src = 'ALLOW { read, uname }';
    const r = parseKafel(src, { arch: 'x86_64' });
    if (r.ok) throw new Error('accepted');
    expect(slice(src, r.error)).toBe('uname');
  });

  test('a non-string never throws', () => {
    const r = parseKafel(undefined as unknown as string);
    expect(r.ok).toBe(false);
  });
});

// kafel's own sample policies, read with git from the kafel repository (a clone or a bare
// mirror) that KTL_KAFEL_REPO names; never a path of this machine.
function kafelSamples(): { repo?: string; names: string[]; reason: string } {
  const { dir: repo, reason } = dirFromEnv(
    'KTL_KAFEL_REPO',
    'a git repository of google/kafel, clone or bare mirror; .ci/run leaves it to the environment',
  );
  if (!repo) return { names: [], reason };
  try {
    const out = execFileSync('git', ['-C', repo, 'ls-tree', '--name-only', 'HEAD', 'samples/'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const names = out.split('\n').filter((n) => n.endsWith('.policy'));
    return names.length > 0
      ? { repo, names, reason: '' }
      : { names, reason: `KTL_KAFEL_REPO=${repo} has no samples/*.policy at HEAD` };
  } catch (e) {
    const err = e as Error & { stderr?: string };
    const why = (err.stderr ?? '').trim() || err.message;
    return {
      names: [],
      reason: `cannot read KTL_KAFEL_REPO=${repo} with git: ${why.split('\n')[0]}`,
    };
  }
}
const samples = kafelSamples();

describe("kafel's samples", () => {
  const { repo, names, reason } = samples;
  if (!repo || names.length === 0) {
    test.skip(`kafel samples/*.policy: ${reason}`, () => {});
  } else {
    test.each(names)('%s parses (x86_64; on aarch64 only x86-only calls fail)', (name) => {
      const src = execFileSync('git', ['-C', repo, 'show', `HEAD:${name}`], {
        encoding: 'utf8',
      });
      const x86 = parseKafel(src, { arch: 'x86_64' });
      expect(x86.ok ? 'ok' : `${x86.error.line}:${x86.error.column}: ${x86.error.message}`).toBe(
        'ok',
      );
      // The samples were written for x86_64: some use `open`, which aarch64 lacks (kafel agrees).
      const arm = parseKafel(src, { arch: 'aarch64' });
      if (!arm.ok) {
        expect(arm.error.code).toBe('E_KAFEL_UNKNOWN_SYSCALL');
        expect(arm.error.hint).toContain('exists on x86_64');
      }
    });
  }
});
