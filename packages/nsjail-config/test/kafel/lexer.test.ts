import { describe, expect, test } from '@jest/globals';
import { tokenize } from '../../src/kafel';

const kinds = (src: string) =>
  tokenize(src).map((t) =>
    t.kind === 'error'
      ? `error: ${t.failure!.message}`
      : t.kind === 'IDENTIFIER' || t.kind === 'NUMBER'
        ? `${t.kind}(${t.text})`
        : t.kind,
  );

describe('kafel lexer', () => {
  test.each([
    // flex takes the longest match, then the first rule: keywords beat identifiers of equal length
    ['ALLOW ALLOWED allow', ['ALLOW', 'IDENTIFIER(ALLOWED)', 'IDENTIFIER(allow)', 'EOF']],
    ['KILL_THREAD KILL DENY', ['KILL', 'KILL', 'DENY', 'EOF']],
    ['define DEFINE', ['DEFINE', 'IDENTIFIER(DEFINE)', 'EOF']],
    // numbers: a letter right after one starts a new token
    ['1abc', ['NUMBER(1)', 'IDENTIFIER(abc)', 'EOF']],
    ['0x', ['NUMBER(0)', 'IDENTIFIER(x)', 'EOF']],
    ['0x1g', ['NUMBER(0x1)', 'IDENTIFIER(g)', 'EOF']],
    ['0b12', ['NUMBER(0b1)', 'NUMBER(2)', 'EOF']],
    ['0B1', ['NUMBER(0)', 'IDENTIFIER(B1)', 'EOF']],
    ['-5 - 5', ['NUMBER(-5)', "error: unexpected char `-'"]],
    ['a_1 b2', ['IDENTIFIER(a_1)', 'IDENTIFIER(b2)', 'EOF']],
    // operators
    ['==!=<=>=<>||&&|&!', ['==', '!=', '<=', '>=', '<', '>', '||', '&&', '|', '&', '!', 'EOF']],
    ['[](){},#', ['[', ']', '(', ')', '{', '}', ',', '#', 'EOF']],
    // comments and white space
    ['a // b\nc', ['IDENTIFIER(a)', 'IDENTIFIER(c)', 'EOF']],
    ['a /* b\n * c */ d', ['IDENTIFIER(a)', 'IDENTIFIER(d)', 'EOF']],
    [
      'a /***/ b */ c',
      [
        'IDENTIFIER(a)',
        'error: kafel does not end a comment at `**/`: this one runs on to the next `*/`',
      ],
    ],
    ['/**/a', ['IDENTIFIER(a)', 'EOF']],
    ['/*** x ***/a', ['IDENTIFIER(a)', 'EOF']],
    ['a\r\n', ['IDENTIFIER(a)', "error: unexpected char `\\r'"]],
    // #include: a no-op without a file, an error with one
    ['#include\na', ['IDENTIFIER(a)', 'EOF']],
    ['#include ;a', ['IDENTIFIER(a)', 'EOF']],
    ['#include "f"', ["error: could not include file `f'"]],
    ['# include', ['#', 'IDENTIFIER(include)', 'EOF']],
  ])('%j', (src, expected) => {
    expect(kinds(src)).toEqual(expected);
  });

  test('tokens carry offsets and 64-bit values', () => {
    const [n, id] = tokenize('  0xffffffffffffffff x');
    expect(n).toMatchObject({ kind: 'NUMBER', offset: 2, length: 18, value: 2n ** 64n - 1n });
    expect(id).toMatchObject({ kind: 'IDENTIFIER', offset: 21, length: 1 });
  });

  test('a lexical error ends the token list (kafel reports it only if the parser gets there)', () => {
    const toks = tokenize('a $ b');
    expect(toks.map((t) => t.kind)).toEqual(['IDENTIFIER', 'error']);
    expect(toks[1]).toMatchObject({ offset: 2, length: 1 });
  });
});
