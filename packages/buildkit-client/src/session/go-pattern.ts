/**
 * The two Go grammars a `.dockerignore` pattern goes through in BuildKit's client (moby's
 * patternmatcher), written out because JavaScript's differ and a pattern must select the same
 * files, or fail the same way, as it does for buildx:
 *
 * 1. `filepath.Match(pattern, ".")` is called on every pattern when the matcher is made, only
 *    for its error: a pattern Go's glob grammar rejects (`[]a]`, `[-]`, `[x-]`, `[a-b-c]`, a
 *    trailing `\`, an unclosed `[`) fails the whole listing ("syntax error in pattern").
 * 2. The pattern is then turned into a Go regexp (patterns.ts compile) and matched with Go's
 *    regexp package (RE2 syntax, Perl flags). Its meaning differs from JavaScript's in ways a
 *    pattern can reach: `\a` is BEL, not `a`; `[[:alpha:]]` is a POSIX class; `\s` is ASCII
 *    whitespace only; `\Q…\E` quotes; `.` excludes only `\n`; `\q` or a reversed range `[z-a]`
 *    is an error. goRegExp translates such a regexp into an equivalent JavaScript RegExp, or
 *    throws where Go's compiler would fail; the matcher reports that as Go's matcher does, the
 *    first time the pattern is evaluated.
 */

/** Go's filepath.ErrBadPattern. */
export const BAD_PATTERN = 'syntax error in pattern';

export class GoPatternError extends Error {
  override name = 'GoPatternError';
  constructor() {
    super(BAD_PATTERN);
  }
}

/** One chunk of a glob: what lies between runs of `*` (Go's scanChunk). */
function scanChunk(p: readonly string[], at: number): { start: number; end: number } {
  let i = at;
  while (i < p.length && p[i] === '*') i++;
  const start = i;
  let inRange = false;
  for (; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      if (i + 1 < p.length) i++;
    } else if (c === '[') inRange = true;
    else if (c === ']') inRange = false;
    else if (c === '*' && !inRange) break;
  }
  return { start, end: i };
}

/** Go's getEsc: one (possibly escaped) character of a class; the index after it, or -1. */
function classChar(c: readonly string[], i: number, end: number): number {
  if (i >= end || c[i] === '-' || c[i] === ']') return -1;
  if (c[i] === '\\') {
    i++;
    if (i >= end) return -1;
  }
  i++;
  // The class must go on after it (a range's end, more ranges or the closing bracket).
  return i >= end ? -1 : i;
}

/** Go's matchChunk on an empty name: only the syntax check of the chunk. */
function chunkValid(c: readonly string[], start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const ch = c[i];
    if (ch === '[') {
      i++;
      if (i < end && c[i] === '^') i++;
      let ranges = 0;
      for (;;) {
        if (i < end && c[i] === ']' && ranges > 0) {
          i++;
          break;
        }
        i = classChar(c, i, end);
        if (i < 0) return false;
        if (c[i] === '-') {
          i = classChar(c, i + 1, end);
          if (i < 0) return false;
        }
        ranges++;
      }
    } else if (ch === '\\') {
      i++;
      if (i >= end) return false;
      i++;
    } else i++;
  }
  return true;
}

/** Whether Go's filepath.Match accepts `pattern` (on Unix), which it checks whole. */
export function goGlobValid(pattern: string): boolean {
  const p = [...pattern];
  let at = 0;
  while (at < p.length) {
    const { start, end } = scanChunk(p, at);
    if (!chunkValid(p, start, end)) return false;
    at = end;
  }
  return true;
}

// --- Go regexp (RE2, syntax.Perl) to JavaScript ---

type Range = readonly [number, number];
const MAX = 0x10ffff;

const POSIX: Record<string, Range[]> = {
  alnum: [
    [0x30, 0x39],
    [0x41, 0x5a],
    [0x61, 0x7a],
  ],
  alpha: [
    [0x41, 0x5a],
    [0x61, 0x7a],
  ],
  ascii: [[0, 0x7f]],
  blank: [
    [9, 9],
    [0x20, 0x20],
  ],
  cntrl: [
    [0, 0x1f],
    [0x7f, 0x7f],
  ],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [
    [0x21, 0x2f],
    [0x3a, 0x40],
    [0x5b, 0x60],
    [0x7b, 0x7e],
  ],
  space: [
    [9, 0xd],
    [0x20, 0x20],
  ],
  upper: [[0x41, 0x5a]],
  word: [
    [0x30, 0x39],
    [0x41, 0x5a],
    [0x5f, 0x5f],
    [0x61, 0x7a],
  ],
  xdigit: [
    [0x30, 0x39],
    [0x41, 0x46],
    [0x61, 0x66],
  ],
};

/** Go's Perl classes: ASCII only (JavaScript's \s is Unicode whitespace). */
const PERL: Record<string, Range[]> = {
  d: POSIX.digit!,
  s: [
    [9, 0xa],
    [0xc, 0xd],
    [0x20, 0x20],
  ],
  w: POSIX.word!,
};

/** The Unicode classes Go names with one letter (\pL): its general categories. */
const ONE_LETTER_CATEGORIES = new Set(['C', 'L', 'M', 'N', 'P', 'S', 'Z']);

function complement(rs: readonly Range[]): Range[] {
  const sorted = [...rs].sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  let next = 0;
  for (const [lo, hi] of sorted) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= MAX) out.push([next, MAX]);
  return out;
}

const cp = (n: number) => `\\u{${n.toString(16)}}`;
const jsRanges = (rs: readonly Range[]) =>
  rs.map(([lo, hi]) => (lo === hi ? cp(lo) : `${cp(lo)}-${cp(hi)}`)).join('');
const jsChar = (c: string) => (/^[A-Za-z0-9_]$/.test(c) ? c : cp(c.codePointAt(0)!));

const isOctal = (c: string | undefined) => c !== undefined && c >= '0' && c <= '7';
const isHex = (c: string | undefined) => c !== undefined && /^[0-9A-Fa-f]$/.test(c);
const isAsciiAlnum = (c: string) => /^[A-Za-z0-9]$/.test(c);

const C_ESCAPES: Record<string, number> = { a: 7, f: 0xc, n: 0xa, r: 0xd, t: 9, v: 0xb };

class GoRegexpTranslator {
  private i = 0;
  private readonly s: string[];
  constructor(src: string) {
    this.s = [...src];
  }

  /** Go's parseEscape at `\`: the code point it stands for. */
  private escape(): number {
    const { s } = this;
    this.i++; // the backslash
    const c = s[this.i++];
    if (c === undefined) throw new GoPatternError(); // trailing backslash
    if (c.codePointAt(0)! < 0x80 && !isAsciiAlnum(c)) return c.codePointAt(0)!;
    if (c >= '1' && c <= '7' && !isOctal(s[this.i])) throw new GoPatternError(); // a backreference
    if (c >= '0' && c <= '7') {
      let r = c.charCodeAt(0) - 0x30;
      for (let k = 1; k < 3 && isOctal(s[this.i]); k++)
        r = r * 8 + s[this.i++]!.charCodeAt(0) - 0x30;
      return r;
    }
    if (c === 'x') {
      const a = s[this.i];
      if (a === '{') {
        let hex = '';
        this.i++;
        while (isHex(s[this.i])) hex += s[this.i++];
        if (s[this.i] !== '}' || hex === '') throw new GoPatternError();
        this.i++;
        const v = Number.parseInt(hex, 16);
        if (v > MAX) throw new GoPatternError();
        return v;
      }
      const b = s[this.i + 1];
      if (!isHex(a) || !isHex(b)) throw new GoPatternError();
      this.i += 2;
      return Number.parseInt(`${a}${b}`, 16);
    }
    const ctl = C_ESCAPES[c];
    if (ctl !== undefined) return ctl;
    throw new GoPatternError();
  }

  /** \d \D \s \S \w \W at `\` (Go's parsePerlClassEscape), as ranges, or undefined. */
  private perlClass(): Range[] | undefined {
    const { s, i } = this;
    if (s[i] !== '\\') return undefined;
    const c = s[i + 1];
    if (c === undefined) return undefined;
    const base = PERL[c.toLowerCase()];
    if (!base || !/[dDsSwW]/.test(c)) return undefined;
    this.i += 2;
    return c === c.toLowerCase() ? base : complement(base);
  }

  /** \pX or \PX at `\` (Go's parseUnicodeClass): a JavaScript class item, or undefined. */
  private unicodeClass(): string | undefined {
    const { s, i } = this;
    if (s[i] !== '\\' || (s[i + 1] !== 'p' && s[i + 1] !== 'P')) return undefined;
    let negated = s[i + 1] === 'P';
    let name: string;
    let after: number;
    if (s[i + 2] === '{') {
      const close = s.indexOf('}', i + 3);
      if (close < 0) throw new GoPatternError();
      name = s.slice(i + 3, close).join('');
      after = close + 1;
    } else {
      name = s[i + 2] ?? '';
      after = i + 3;
    }
    if (name.startsWith('^')) {
      negated = !negated;
      name = name.slice(1);
    }
    // Only one-letter names can get here: `{` is escaped in the regexp patterns make.
    if (!ONE_LETTER_CATEGORIES.has(name)) throw new GoPatternError();
    this.i = after;
    return `\\${negated ? 'P' : 'p'}{${name}}`;
  }

  /** `[...]` (Go's parseClass) as a JavaScript class. */
  private charClass(): string {
    const { s } = this;
    this.i++; // [
    let negated = false;
    if (s[this.i] === '^') {
      negated = true;
      this.i++;
    }
    const ranges: Range[] = [];
    const items: string[] = [];
    let first = true;
    while (this.i >= s.length || s[this.i] !== ']' || first) {
      first = false;
      if (s[this.i] === '[' && s[this.i + 1] === ':') {
        const rest = s.slice(this.i + 2).join('');
        const end = rest.indexOf(':]');
        if (end >= 0) {
          let name = rest.slice(0, end);
          const neg = name.startsWith('^');
          if (neg) name = name.slice(1);
          const group = POSIX[name];
          if (!group) throw new GoPatternError();
          ranges.push(...(neg ? complement(group) : group));
          this.i += 2 + [...rest.slice(0, end)].length + 2;
          continue;
        }
      }
      const uni = this.unicodeClass();
      if (uni !== undefined) {
        items.push(uni);
        continue;
      }
      const perl = this.perlClass();
      if (perl) {
        ranges.push(...perl);
        continue;
      }
      const lo = this.classChar();
      let hi = lo;
      if (s[this.i] === '-' && this.i + 1 < s.length && s[this.i + 1] !== ']') {
        this.i++;
        hi = this.classChar();
        if (hi < lo) throw new GoPatternError(); // invalid character class range
      }
      ranges.push([lo, hi]);
    }
    this.i++; // ]
    const body = jsRanges(ranges) + items.join('');
    if (body === '') return negated ? '[^]' : '[]';
    return `[${negated ? '^' : ''}${body}]`;
  }

  private classChar(): number {
    const { s } = this;
    if (this.i >= s.length) throw new GoPatternError(); // missing closing ]
    if (s[this.i] === '\\') return this.escape();
    return s[this.i++]!.codePointAt(0)!;
  }

  translate(): string {
    const { s } = this;
    let out = '';
    /** Whether the last thing written can take a repetition operator. */
    let operand = false;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (c === '\\' && s[this.i + 1] !== undefined && 'AbBCQz'.includes(s[this.i + 1]!)) {
        const k = s[this.i + 1]!;
        if (k === 'C') throw new GoPatternError();
        this.i += 2;
        if (k === 'Q') {
          let j = this.i;
          while (j < s.length && !(s[j] === '\\' && s[j + 1] === 'E')) out += jsChar(s[j++]!);
          this.i = j < s.length ? j + 2 : j;
          operand = true;
          continue;
        }
        out += k === 'A' ? '^' : k === 'z' ? '$' : `\\${k}`;
        operand = false;
        continue;
      }
      if (c === '\\') {
        const uni = this.unicodeClass();
        if (uni !== undefined) out += `[${uni}]`;
        else {
          const perl = this.perlClass();
          out += perl ? `[${jsRanges(perl)}]` : cp(this.escape());
        }
        operand = true;
        continue;
      }
      this.i++;
      switch (c) {
        case '[':
          this.i--;
          out += this.charClass();
          operand = true;
          break;
        case '^':
        case '$':
          out += c;
          operand = false;
          break;
        case '.':
          out += '[^\\n]';
          operand = true;
          break;
        case '(':
          out += '(?:';
          operand = false;
          break;
        case ')':
          out += ')';
          operand = true;
          break;
        case '*':
        case '?':
        case '+':
          if (!operand) throw new GoPatternError(); // missing or repeated argument
          out += c;
          operand = false;
          break;
        default:
          out += jsChar(c);
          operand = true;
      }
    }
    return out;
  }
}

/** The JavaScript RegExp matching what Go's regexp.MustCompile(src) matches; throws
 * GoPatternError where Go's compiler fails. */
export function goRegExp(src: string): RegExp {
  return new RegExp(new GoRegexpTranslator(src).translate(), 'u');
}
