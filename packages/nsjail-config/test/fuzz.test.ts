import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { formatPolicy, PolicyError, parsePolicy } from '../src/index';
import { badCases, goodCases } from './cases';
import { repoRoot } from './helpers';

/** Runs `fn` and records what it threw; anything but a PolicyError is a bug. */
function outcome(fn: () => unknown): 'ok' | 'policy-error' | string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return PolicyError.is(e) ? 'policy-error' : `unexpected ${String(e)}`;
  }
}

const seeds = [
  ...goodCases.map((c) => c.text),
  ...badCases.map((c) => c.text),
  ...readdirSync(join(repoRoot, 'testdata', 'sandbox'))
    .filter((f) => f.endsWith('.cfg'))
    .map((f) => readFileSync(join(repoRoot, 'testdata', 'sandbox', f), 'utf8')),
];

const mutation = fc.record({
  seed: fc.constantFrom(...seeds),
  at: fc.nat(),
  len: fc.nat({ max: 8 }),
  insert: fc.oneof(
    fc.string({
      unit: fc.constantFrom(
        '{',
        '}',
        '<',
        '>',
        '[',
        ']',
        ':',
        ';',
        ',',
        '"',
        "'",
        '\\',
        '#',
        '-',
        '0',
        'x',
        '9',
        '\n',
        ' ',
        'e',
        '.',
        'a',
        '\u0000',
        'é',
      ),
      maxLength: 6,
    }),
    fc.string({ unit: 'binary', maxLength: 6 }),
  ),
});

describe('fuzz: no input makes the parser throw anything but PolicyError', () => {
  test('8000 mutations of real and tricky policies', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(mutation, ({ seed, at, len, insert }) => {
        const i = seed.length ? at % seed.length : 0;
        const text = seed.slice(0, i) + insert + seed.slice(i + len);
        const r = outcome(() => parsePolicy(text));
        seen.add(r);
        expect(r === 'ok' || r === 'policy-error').toBe(true);
        if (r === 'ok') expect(outcome(() => formatPolicy(text))).toBe('ok');
      }),
      { numRuns: 8000 },
    );
    // The corpus must exercise both outcomes, or it proves nothing.
    expect([...seen].sort()).toEqual(['ok', 'policy-error']);
  });

  test('2000 random byte strings', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const r = outcome(() => parsePolicy(bytes));
        expect(r === 'ok' || r === 'policy-error').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  test('deeply nested input is an error, not a stack overflow', () => {
    expect(outcome(() => parsePolicy('user_net {'.repeat(50000)))).toBe('policy-error');
    expect(outcome(() => parsePolicy('['.repeat(50000)))).toBe('policy-error');
    expect(outcome(() => parsePolicy(`{"a":${'['.repeat(50000)}`))).toBe('policy-error');
  });
});
