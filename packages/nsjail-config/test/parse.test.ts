import { describe, expect, test } from '@jest/globals';
import { PolicyError, parsePolicy } from '../src/index';
import { badCases, badJsonBytes, goodCases } from './cases';

function parseError(text: string): PolicyError {
  try {
    parsePolicy(text, { filename: 'p.cfg' });
  } catch (e) {
    if (PolicyError.is(e)) return e;
    throw new Error(`threw something that is not a PolicyError: ${String(e)}`);
  }
  throw new Error('expected the policy to be rejected');
}

describe('malformed policies', () => {
  test.each(badCases)('$name', (c) => {
    const err = parseError(c.text);
    expect(err.code).toBe(c.code);
    expect(err.shortMessage).toContain(c.message);
    if (c.line !== undefined) {
      expect([err.line, err.column]).toEqual([c.line, c.column]);
      expect(err.message.startsWith(`p.cfg:${c.line}:${c.column}: `)).toBe(true);
    } else expect(err.message.startsWith('p.cfg: ')).toBe(true);
    if (c.hint) expect(err.hint).toContain(c.hint);
  });
});

describe('a ProtoJSON file is UTF-8', () => {
  test.each(badJsonBytes)('$name is refused where the bad byte is', (c) => {
    let err: unknown;
    try {
      parsePolicy(c.bytes, { filename: 'p.json' });
    } catch (e) {
      err = e;
    }
    expect(PolicyError.is(err)).toBe(true);
    const e = err as PolicyError;
    expect([e.code, e.shortMessage, e.line, e.column]).toEqual([
      'E_SYNTAX',
      c.message,
      c.line,
      c.column,
    ]);
    expect(e.hint).toContain('save the file as UTF-8');
  });

  test('its strings are read as UTF-8, not byte by byte', () => {
    const bytes = Buffer.from('{"hostname": "café", "envar": ["K=\u{1F600}"]}', 'utf8');
    expect(parsePolicy(bytes).policy).toEqual({ hostname: 'café', envar: ['K=\u{1F600}'] });
  });
});

describe('valid but unusual policies', () => {
  test.each(goodCases)('$name', (c) => {
    expect(parsePolicy(c.text).policy).toEqual(c.expect);
  });
});

describe('positions', () => {
  test('every field and list element has a position', () => {
    const { source } = parsePolicy('hostname: "a"\nmount {\n  dst: "/x"\n}\nenvar: ["A", "B"]\n');
    expect(source.fields.get('hostname')?.name).toMatchObject({ line: 1, column: 1 });
    expect(source.fields.get('mount[0]')?.value).toMatchObject({ line: 2, column: 7 });
    expect(source.fields.get('mount[0].dst')?.value).toMatchObject({ line: 3, column: 8 });
    expect(source.fields.get('envar[1]')?.value).toMatchObject({ line: 5, column: 14 });
  });

  test('string characters map back to the file, across escapes and concatenation', () => {
    const text = 'seccomp_string: "ab\\ncd" # c\n  "ef"\n';
    const { source, policy } = parsePolicy(text);
    expect(policy.seccomp_string).toEqual(['ab\ncdef']);
    const offs = source.stringOffsets.get('seccomp_string[0]')!;
    expect(offs.map((o) => text[o])).toEqual(['a', 'b', '\\', 'c', 'd', 'e', 'f']);
  });

  test('a file read as bytes keeps non-UTF-8 bytes in bytes fields and UTF-8 text in strings', () => {
    const bytes = Buffer.concat([
      Buffer.from('hostname: "h\u00e9"\nmount { dst: "/f" src_content: "'),
      Buffer.from([0xff, 0x41]),
      Buffer.from('" }\n'),
    ]);
    const { policy } = parsePolicy(bytes);
    expect(policy.hostname).toBe('hé');
    expect(policy.mount?.[0]?.src_content).toEqual(Uint8Array.from([0xff, 0x41]));
  });
});
