/**
 * kafel's statements, with the checks kafel makes while it parses (each at kafel's position):
 * a policy must be defined before USE (so it cannot use itself), no policy or DEFAULT twice,
 * a #define may repeat only with the same value. Then parseKafel runs kafel's name checks.
 *
 * Grammar quirks kept: top-level statements may be separated by commas or nothing at all, but
 * inside POLICY braces they need commas; `#define` names are substituted as they are read, so
 * a name used before its #define stays a name — even one that matches an argument: after
 * `#define fd 1`, `fd == 1` compares 1 with 1.
 */
import type { Action, KafelError, KafelProgram, Policy, PolicyEntry, SyscallFilter } from './ast';
import { checkReferences } from './check';
import { Cursor } from './cursor';
import { fail, KafelFailure, lineColumn, toKafelError } from './errors';
import { type Token, tokenize } from './lexer';
import { nearest } from './nearest';
import { ACTION_WORDS, isAction, keywordHint, RuleParser, STATEMENT_WORDS } from './rules';
import { hostKafelArch, type KafelArch } from './syscalls';

export interface ParsedKafel {
  policies: Map<string, Policy>;
  main: Policy | undefined;
  defaultAction: Action | undefined;
  constants: Map<string, bigint>;
  /** Where each constant was first defined (for "defined later" hints). */
  constantAt: Map<string, number>;
}

export class Parser {
  private readonly c: Cursor;
  private readonly rules: RuleParser;
  readonly out: ParsedKafel = {
    policies: new Map(),
    main: undefined,
    defaultAction: undefined,
    constants: new Map(),
    constantAt: new Map(),
  };
  /** The POLICY being parsed, for the "cannot USE itself" hint. */
  private defining: string | undefined;

  constructor(
    tokens: Token[],
    private readonly source: string,
  ) {
    this.c = new Cursor(tokens);
    this.rules = new RuleParser(this.c, this.out.constants);
  }

  program(): ParsedKafel {
    if (this.c.at('EOF'))
      this.c.unexpected([], 'a kafel policy needs at least one statement, e.g. `DEFAULT ALLOW`');
    while (!this.c.at('EOF')) this.statement();
    const main = this.out.main;
    const last = main?.entries[main.entries.length - 1];
    if (main && last) {
      // @main keeps its place in the policy order (kafel checks names in that order).
      this.out.main = { ...main, length: last.offset + last.length - main.offset };
      this.out.policies.set('@main', this.out.main);
    }
    return this.out;
  }

  private statement(): void {
    const t = this.c.peek();
    if (t.kind === '#') {
      this.define();
      return;
    }
    if (t.kind === 'POLICY') {
      this.policy();
      return;
    }
    if (t.kind === 'DEFAULT') {
      this.c.next();
      const action = this.rules.action();
      if (this.out.defaultAction)
        fail(
          'E_KAFEL_REDEFINED',
          'Redefinition of default action',
          t,
          `the first DEFAULT is at line ${this.line(this.out.defaultAction.offset)}; keep one`,
        );
      this.out.defaultAction = action;
      return;
    }
    if (t.kind === 'USE' || isAction(t)) {
      const entries = this.statements();
      if (!this.out.main) {
        const first = entries[0]!;
        const last = entries[entries.length - 1]!;
        this.out.main = {
          name: '@main',
          entries,
          offset: first.offset,
          length: last.offset + last.length - first.offset,
        };
        this.out.policies.set('@main', this.out.main);
      } else {
        this.out.main.entries.push(...entries);
      }
      return;
    }
    this.c.unexpected(
      ['POLICY', 'USE', 'DEFAULT', '#define', 'an action'],
      keywordHint(t, STATEMENT_WORDS),
    );
  }

  private line(offset: number): number {
    return lineColumn(this.source, offset).line;
  }

  private define(): void {
    const hash = this.c.next();
    this.c.expect(
      'DEFINE',
      ["`define'"],
      this.c.at('IDENTIFIER') && this.c.peek().text === 'include'
        ? 'write `#include` without a space (and note nsjail gives kafel no include path)'
        : undefined,
    );
    const name = this.c.expect(
      'IDENTIFIER',
      ['identifier'],
      this.c.at('NUMBER') ? 'a constant needs a name before its value' : undefined,
    );
    const value = this.c.expect(
      'NUMBER',
      ['number'],
      this.c.at('IDENTIFIER') ? 'a #define takes a literal number, not another name' : undefined,
    ).value!;
    const old = this.out.constants.get(name.text);
    if (old !== undefined) {
      if (old !== value)
        fail(
          'E_KAFEL_REDEFINED',
          `Redefinition of constant \`${name.text}' with different value (was: ${old} is: ${value})`,
          hash,
          `first defined at line ${this.line(this.out.constantAt.get(name.text)!)}`,
        );
      return;
    }
    this.out.constants.set(name.text, value);
    this.out.constantAt.set(name.text, hash.offset);
  }

  private policy(): void {
    const start = this.c.next();
    const name = this.c.expect('IDENTIFIER', ['identifier'], keywordHintForName(this.c.peek()));
    this.c.expect('{', ["`{'"]);
    this.defining = name.text;
    const entries = this.c.at('}') ? [] : this.statements();
    this.defining = undefined;
    const end = this.c.expect(
      '}',
      ["`,'", "`}'"],
      this.c.at('USE') || isAction(this.c.peek())
        ? 'inside POLICY braces, separate statements with commas'
        : undefined,
    );
    const earlier = this.out.policies.get(name.text);
    if (earlier)
      fail(
        'E_KAFEL_REDEFINED',
        `Redefinition of policy \`${name.text}'`,
        start,
        `first defined at line ${this.line(earlier.offset)}; give each POLICY its own name`,
      );
    this.out.policies.set(name.text, {
      name: name.text,
      entries,
      offset: start.offset,
      length: end.offset + 1 - start.offset,
    });
  }

  /** One or more statements separated by commas. */
  private statements(): PolicyEntry[] {
    const out = [this.statementEntry()];
    while (this.c.at(',')) {
      this.c.next();
      out.push(this.statementEntry());
    }
    return out;
  }

  private statementEntry(): PolicyEntry {
    const t = this.c.peek();
    if (t.kind === 'USE') return this.use();
    if (isAction(t)) return this.actionBlock();
    return this.c.unexpected(['USE', 'an action'], keywordHint(t, ['USE', ...ACTION_WORDS]));
  }

  private use(): PolicyEntry {
    const start = this.c.next();
    const name = this.c.expect('IDENTIFIER', ['identifier']);
    if (this.out.policies.has(name.text))
      return {
        type: 'use',
        policy: name.text,
        offset: start.offset,
        length: name.offset + name.length - start.offset,
      };
    let hint: string;
    const later = this.c.laterPolicy(name.text);
    if (name.text === this.defining)
      hint = 'a policy cannot USE itself (it is defined only at its closing brace)';
    else if (later)
      hint = `\`${name.text}\` is defined later, at line ${this.line(later.offset)}; kafel needs a POLICY defined before its USE`;
    else {
      const near = nearest(
        name.text,
        [...this.out.policies.keys()].filter((k) => k !== '@main'),
        1,
      );
      hint =
        near.length > 0
          ? `did you mean \`${near[0]}\`?`
          : 'define it with `POLICY name { ... }` before the USE';
    }
    return fail('E_KAFEL_UNDEFINED_POLICY', `Undefined policy \`${name.text}'`, name, hint);
  }

  private actionBlock(): PolicyEntry {
    const action = this.rules.action();
    this.c.expect(
      '{',
      ["`{'"],
      this.c.at('IDENTIFIER')
        ? `list the system calls in braces: \`${action.spelled} { ${this.c.peek().text} }\``
        : undefined,
    );
    const filters: SyscallFilter[] = [];
    if (!this.c.at('}')) {
      if (!this.c.at('IDENTIFIER', 'SYSCALL')) this.c.unexpected(['identifier', 'SYSCALL', "`}'"]);
      filters.push(this.rules.filter());
      while (this.c.at(',')) {
        this.c.next();
        filters.push(this.rules.filter());
      }
    }
    const end = this.c.expect(
      '}',
      ["`,'", "`}'"],
      this.c.at('IDENTIFIER', 'SYSCALL') ? 'separate system calls with commas' : undefined,
    );
    return {
      type: 'action',
      action,
      filters,
      offset: action.offset,
      length: end.offset + 1 - action.offset,
    };
  }
}

function keywordHintForName(t: Token): string | undefined {
  return t.kind !== 'IDENTIFIER' && /^[A-Za-z]/.test(t.text)
    ? `\`${t.text}\` is a kafel keyword and cannot name a policy`
    : undefined;
}

export interface ParseKafelOptions {
  /** Architecture whose system call and argument names are checked; default: this machine's (as kafel). */
  arch?: KafelArch;
}

export type ParseKafelResult =
  | { ok: true; program: KafelProgram }
  | { ok: false; error: KafelError };

/** Parses and checks a kafel policy as nsjail's kafel would. Never throws. */
export function parseKafel(source: string, options: ParseKafelOptions = {}): ParseKafelResult {
  try {
    if (typeof source !== 'string') throw new TypeError('the policy must be a string');
    const parsed = new Parser(tokenize(source), source).program();
    checkReferences(parsed, source, options.arch ?? hostKafelArch());
    const { policies, main, defaultAction, constants } = parsed;
    return { ok: true, program: { policies, main, defaultAction, constants } };
  } catch (e) {
    if (e instanceof KafelFailure) return { ok: false, error: toKafelError(source, e) };
    const text = typeof source === 'string' ? source : '';
    const internal = new KafelFailure(
      'E_KAFEL_INTERNAL',
      `internal error in ktl's kafel parser: ${e instanceof Error ? e.message : String(e)}`,
      { offset: 0, length: 0 },
      'please report this policy to the ktl maintainers',
    );
    return { ok: false, error: toKafelError(text, internal) };
  }
}
