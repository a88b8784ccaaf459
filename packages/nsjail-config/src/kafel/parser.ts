/**
 * Recursive-descent parser for kafel as nsjail embeds it, with kafel's own checks: policies
 * must be defined before USE, no redefinitions, ERRNO/TRAP/TRACE values up to 65535, and (as
 * kafel does before compiling) every syscall and argument name must exist for the target
 * architecture — in every policy, used or not.
 */

import { closest } from '../suggest';
import type {
  Action,
  ActionKind,
  Expr,
  KafelError,
  KafelProgram,
  Policy,
  PolicyEntry,
  Span,
  SyscallFilter,
  SyscallRef,
} from './ast';
import { KafelLexError, type KToken, tokenize } from './lexer';
import { hostKafelArch, type KafelArch, lookupSyscall, suggestSyscall } from './syscalls';

const MAX_DEPTH = 200;
const ARCH_NAMES: Record<string, string> = {
  arm: 'arm',
  aarch64: 'aarch64',
  arm64: 'aarch64',
  x86_64: 'x86_64',
  amd64: 'x86_64',
  x86: 'x86',
  i386: 'x86',
  mips: 'mips',
  mipso32: 'mips',
  mips64: 'mips64',
  riscv64: 'riscv64',
  rv64: 'riscv64',
  m68k: 'm68k',
};
const CMP = new Set(['==', '!=', '<', '<=', '>', '>=']);

class ParseFail extends Error {
  constructor(
    message: string,
    readonly span: Span,
    readonly code: KafelError['code'] = 'E_KAFEL_SYNTAX',
    readonly hint?: string,
  ) {
    super(message);
  }
}

function describe(t: KToken): string {
  return t.type === 'eof' ? 'end of policy' : `\`${t.text}'`;
}

class Parser {
  private i = 0;
  readonly policies = new Map<string, Policy>();
  readonly constants = new Map<string, bigint>();
  main: Policy | undefined;
  defaultAction: Action | undefined;

  constructor(private readonly toks: KToken[]) {}

  private get t(): KToken {
    return this.toks[this.i]!;
  }

  private atEnd(): boolean {
    return this.t.type === 'eof';
  }

  private is(text: string): boolean {
    return (this.t.type === 'op' || this.t.type === 'kw') && this.t.text === text;
  }

  private next(): KToken {
    return this.toks[this.i++]!;
  }

  private expect(text: string, what = `\`${text}'`): KToken {
    if (!this.is(text))
      throw new ParseFail(
        `syntax error: unexpected ${describe(this.t)}, expecting ${what}`,
        this.span(this.t),
      );
    return this.next();
  }

  private span(t: KToken): Span {
    return { offset: t.offset, length: Math.max(1, t.text.length) };
  }

  private ident(what: string): KToken {
    if (this.t.type !== 'ident')
      throw new ParseFail(
        `syntax error: unexpected ${describe(this.t)}, expecting ${what}`,
        this.span(this.t),
      );
    return this.next();
  }

  private num(): KToken {
    if (this.t.type !== 'num')
      throw new ParseFail(
        `syntax error: unexpected ${describe(this.t)}, expecting a number`,
        this.span(this.t),
      );
    return this.next();
  }

  program(): void {
    if (this.t.type === 'eof')
      throw new ParseFail(
        'syntax error: the policy is empty',
        { offset: 0, length: 0 },
        'E_KAFEL_SYNTAX',
        'write at least `DEFAULT ALLOW` or an action block',
      );
    while (!this.atEnd()) this.statement();
  }

  private statement(): void {
    if (this.is('#')) {
      this.define();
      return;
    }
    if (this.is('POLICY')) {
      const start = this.next();
      const name = this.ident('a policy name');
      this.expect('{');
      const entries = this.is('}') ? [] : this.entries();
      const end = this.expect('}', "`,' or `}'");
      if (this.policies.has(name.text))
        throw new ParseFail(
          `Redefinition of policy \`${name.text}'`,
          this.span(start),
          'E_KAFEL_REDEFINED',
          'give each POLICY its own name',
        );
      this.policies.set(name.text, {
        name: name.text,
        entries,
        offset: start.offset,
        length: end.offset + 1 - start.offset,
      });
      return;
    }
    if (this.is('DEFAULT')) {
      const start = this.next();
      const action = this.action();
      if (this.defaultAction)
        throw new ParseFail(
          'Redefinition of default action',
          this.span(start),
          'E_KAFEL_REDEFINED',
          'keep one DEFAULT',
        );
      this.defaultAction = action;
      return;
    }
    const entries = this.entries();
    if (!this.main) {
      this.main = { name: '@main', entries, offset: entries[0]!.offset, length: 0 };
      this.policies.set('@main', this.main);
    } else this.main.entries.push(...entries);
  }

  private define(): void {
    const hash = this.next();
    if (!this.is('define'))
      throw new ParseFail(
        `syntax error: unexpected ${describe(this.t)}, expecting \`define'`,
        this.span(this.t),
      );
    this.next();
    const name = this.ident('a constant name');
    const value = this.num().value!;
    const old = this.constants.get(name.text);
    if (old !== undefined && old !== value) {
      throw new ParseFail(
        `Redefinition of constant \`${name.text}' with different value (was: ${old} is: ${value})`,
        this.span(hash),
        'E_KAFEL_REDEFINED',
      );
    }
    this.constants.set(name.text, value);
  }

  private entries(): PolicyEntry[] {
    const out: PolicyEntry[] = [this.entry()];
    while (this.is(',')) {
      this.next();
      out.push(this.entry());
    }
    return out;
  }

  private entry(): PolicyEntry {
    if (this.is('USE')) {
      const start = this.next();
      const name = this.ident('a policy name');
      if (!this.policies.has(name.text) || name.text === '@main') {
        const near = closest(
          name.text,
          [...this.policies.keys()].filter((k) => k !== '@main'),
        );
        throw new ParseFail(
          `Undefined policy \`${name.text}'`,
          this.span(name),
          'E_KAFEL_UNDEFINED',
          near.length
            ? `did you mean \`${near[0]}'? (a policy must be defined before USE)`
            : 'define the POLICY before USE',
        );
      }
      return {
        type: 'use',
        policy: name.text,
        offset: start.offset,
        length: name.offset + name.text.length - start.offset,
      };
    }
    const action = this.action();
    this.expect('{');
    const filters: SyscallFilter[] = [];
    if (!this.is('}')) {
      filters.push(this.filter());
      while (this.is(',')) {
        this.next();
        filters.push(this.filter());
      }
    }
    const end = this.expect('}', "`,' or `}'");
    return {
      type: 'action',
      action,
      filters,
      offset: action.offset,
      length: end.offset + 1 - action.offset,
    };
  }

  private action(): Action {
    const t = this.t;
    const simple: Record<string, ActionKind> = {
      ALLOW: 'ALLOW',
      LOG: 'LOG',
      DENY: 'KILL',
      KILL: 'KILL',
      KILL_THREAD: 'KILL',
      KILL_PROCESS: 'KILL_PROCESS',
      USER_NOTIF: 'USER_NOTIF',
    };
    if (t.type === 'kw' && simple[t.text]) {
      this.next();
      return { kind: simple[t.text]!, spelled: t.text, ...this.span(t) };
    }
    if (t.type === 'kw' && (t.text === 'ERRNO' || t.text === 'TRAP' || t.text === 'TRACE')) {
      this.next();
      this.expect('(');
      const n = this.num();
      const end = this.expect(')');
      const label = t.text === 'ERRNO' ? 'Errno' : t.text === 'TRAP' ? 'Trap' : 'Trace';
      if (n.value! > 0xffffn)
        throw new ParseFail(
          `${label} value ${n.value} out of range (0-65535)`,
          this.span(n),
          'E_KAFEL_RANGE',
        );
      return {
        kind: t.text,
        spelled: t.text,
        value: Number(n.value),
        offset: t.offset,
        length: end.offset + 1 - t.offset,
      };
    }
    throw new ParseFail(
      `syntax error: unexpected ${describe(t)}, expecting an action (ALLOW, LOG, KILL, KILL_PROCESS, ERRNO(n), TRAP(n), TRACE(n), USER_NOTIF)`,
      this.span(t),
      'E_KAFEL_SYNTAX',
      t.type === 'ident'
        ? closest(t.text, [
            'ALLOW',
            'LOG',
            'KILL',
            'KILL_PROCESS',
            'ERRNO',
            'TRAP',
            'TRACE',
            'DENY',
          ]).map((c) => `did you mean ${c}?`)[0]
        : undefined,
    );
  }

  private filter(): SyscallFilter {
    const start = this.t;
    let syscall: SyscallRef;
    if (this.is('SYSCALL')) {
      this.next();
      this.expect('[');
      const n = this.num();
      const end = this.expect(']');
      syscall = {
        nr: Number(BigInt.asUintN(32, n.value!)),
        offset: start.offset,
        length: end.offset + 1 - start.offset,
      };
    } else {
      const id = this.ident('a syscall name');
      const c = this.constants.get(id.text);
      syscall =
        c !== undefined
          ? { nr: Number(BigInt.asUintN(32, c)), ...this.span(id) }
          : { name: id.text, ...this.span(id) };
    }
    if (this.is('(')) {
      this.next();
      const args: string[] = [];
      if (!this.is(')')) {
        for (;;) {
          const a = this.ident('an argument name');
          if (args.includes(a.text))
            throw new ParseFail(
              `Redefinition of argument \`${a.text}'`,
              this.span(a),
              'E_KAFEL_REDEFINED',
            );
          if (args.length === 6)
            throw new ParseFail(
              'Too many arguments defined for syscall',
              this.span(a),
              'E_KAFEL_RANGE',
              'a syscall has at most 6 arguments',
            );
          args.push(a.text);
          if (!this.is(',')) break;
          this.next();
        }
      }
      this.expect(')');
      syscall = { ...syscall, customArgs: args };
    }
    let archs: string[] | undefined;
    if (this.is('ON')) {
      this.next();
      const one = () => {
        const a = this.ident('an architecture');
        const arch = ARCH_NAMES[a.text.toLowerCase()];
        if (!arch)
          throw new ParseFail(
            `Unknown architecture \`${a.text}'`,
            this.span(a),
            'E_KAFEL_UNDEFINED',
            `known: ${Object.keys(ARCH_NAMES).join(', ')}`,
          );
        if (archs?.includes(arch))
          throw new ParseFail(
            `Duplicate architecture \`${a.text}'`,
            this.span(a),
            'E_KAFEL_REDEFINED',
          );
        archs = [...(archs ?? []), arch];
      };
      if (this.is('{')) {
        this.next();
        one();
        while (this.is(',')) {
          this.next();
          one();
        }
        this.expect('}', "`,' or `}'");
      } else one();
    }
    let expr: Expr | undefined;
    let end = this.toks[this.i - 1]!;
    if (this.is('{')) {
      this.next();
      if (!this.is('}')) expr = this.boolExpr();
      end = this.expect('}', "`,', `||', `&&' or `}'");
    }
    return {
      syscall,
      ...(archs ? { archs } : {}),
      ...(expr ? { expr } : {}),
      offset: start.offset,
      length: end.offset + end.text.length - start.offset,
    };
  }

  private bin(op: Extract<Expr, { type: 'binary' }>['op'], left: Expr, right: Expr): Expr {
    if (depth(left) >= MAX_DEPTH || depth(right) >= MAX_DEPTH)
      throw new ParseFail(`Max expression depth (${MAX_DEPTH}) exceeded`, left, 'E_KAFEL_RANGE');
    return {
      type: 'binary',
      op,
      left,
      right,
      offset: left.offset,
      length: right.offset + right.length - left.offset,
    };
  }

  private boolExpr(): Expr {
    let e = this.orExpr();
    while (this.is(',')) {
      this.next();
      e = this.bin('||', e, this.orExpr());
    }
    return e;
  }

  private orExpr(): Expr {
    let e = this.andExpr();
    while (this.is('||')) {
      this.next();
      e = this.bin('||', e, this.andExpr());
    }
    return e;
  }

  private andExpr(): Expr {
    let e = this.primary();
    while (this.is('&&')) {
      this.next();
      e = this.bin('&&', e, this.primary());
    }
    return e;
  }

  private primary(): Expr {
    const start = this.t;
    if (this.is('!')) {
      this.next();
      const operand = this.primary();
      if (depth(operand) >= MAX_DEPTH)
        throw new ParseFail(
          `Max expression depth (${MAX_DEPTH}) exceeded`,
          operand,
          'E_KAFEL_RANGE',
        );
      return {
        type: 'not',
        operand,
        offset: start.offset,
        length: operand.offset + operand.length - start.offset,
      };
    }
    if (this.is('(')) {
      // `(` opens either a boolean group or an arithmetic operand; what follows the matching
      // `)` decides: a comparison or bit operator continues arithmetic, anything else ends a group.
      let depth = 0;
      let j = this.i;
      for (; j < this.toks.length; j++) {
        const tok = this.toks[j]!;
        if (tok.type === 'op' && tok.text === '(') depth++;
        else if (tok.type === 'op' && tok.text === ')' && --depth === 0) break;
        else if (tok.type === 'eof') break;
      }
      const after = this.toks[j + 1];
      const arithmetic =
        after !== undefined &&
        after.type === 'op' &&
        (CMP.has(after.text) || after.text === '|' || after.text === '&');
      if (!arithmetic) {
        this.next();
        const inner = this.boolExpr();
        this.expect(')', "`)', `||', `&&' or `,'");
        return inner;
      }
    }
    return this.comparison();
  }

  private comparison(): Expr {
    const left = this.bitOr();
    const op = this.t;
    if (!(op.type === 'op' && CMP.has(op.text))) {
      throw new ParseFail(
        `syntax error: unexpected ${describe(op)}, expecting a comparison (==, !=, <, <=, >, >=)`,
        this.span(op),
        'E_KAFEL_SYNTAX',
        'compare an argument, e.g. `fd == 1`',
      );
    }
    this.next();
    return this.bin(op.text as '==', left, this.bitOr());
  }

  private bitOr(): Expr {
    let e = this.bitAnd();
    while (this.is('|')) {
      this.next();
      e = this.bin('|', e, this.bitAnd());
    }
    return e;
  }

  private bitAnd(): Expr {
    let e = this.operand();
    while (this.is('&')) {
      this.next();
      e = this.bin('&', e, this.operand());
    }
    return e;
  }

  private operand(): Expr {
    const t = this.t;
    if (t.type === 'num') {
      this.next();
      return { type: 'number', value: t.value!, ...this.span(t) };
    }
    if (t.type === 'ident') {
      this.next();
      const c = this.constants.get(t.text);
      return c !== undefined
        ? { type: 'number', value: c, ...this.span(t) }
        : { type: 'ident', name: t.text, ...this.span(t) };
    }
    if (this.is('(')) {
      this.next();
      const e = this.bitOr();
      this.expect(')');
      return e;
    }
    throw new ParseFail(
      `syntax error: unexpected ${describe(t)}, expecting a number, an argument name or \`('`,
      this.span(t),
    );
  }
}

function depth(e: Expr): number {
  switch (e.type) {
    case 'number':
    case 'ident':
      return 1;
    case 'not':
      return 1 + depth(e.operand);
    case 'binary':
      return 1 + Math.max(depth(e.left), depth(e.right));
  }
}

function identifiers(
  e: Expr,
  out: Extract<Expr, { type: 'ident' }>[] = [],
): Extract<Expr, { type: 'ident' }>[] {
  if (e.type === 'ident') out.push(e);
  else if (e.type === 'not') identifiers(e.operand, out);
  else if (e.type === 'binary') {
    identifiers(e.left, out);
    identifiers(e.right, out);
  }
  return out;
}

/** kafel's reference check for one architecture (what nsjail's kafel_compile runs first). */
function checkReferences(p: Parser, arch: KafelArch): void {
  for (const policy of p.policies.values()) {
    for (const entry of policy.entries) {
      if (entry.type !== 'action') continue;
      for (const f of entry.filters) {
        if (f.archs && !f.archs.includes(arch)) continue;
        let argNames: string[] = [];
        if (f.syscall.name !== undefined) {
          const info = lookupSyscall(arch, f.syscall.name);
          if (!info)
            throw new ParseFail(
              `Undefined identifier \`${f.syscall.name}'`,
              f.syscall,
              'E_KAFEL_UNDEFINED',
              `unknown syscall for ${arch}: ${suggestSyscall(arch, f.syscall.name)}`,
            );
          argNames = info.args.map((a) => a.name);
        }
        if (f.syscall.customArgs) argNames = [...f.syscall.customArgs];
        for (const id of f.expr ? identifiers(f.expr) : []) {
          if (!argNames.includes(id.name)) {
            const near = closest(id.name, argNames);
            const known = argNames.length
              ? `arguments of ${f.syscall.name ?? `SYSCALL[${f.syscall.nr}]`}: ${argNames.join(', ')}`
              : `declare them: ${f.syscall.name ?? `SYSCALL[${f.syscall.nr}]`}(a, b) { a == 1 }`;
            throw new ParseFail(
              `Undefined identifier \`${id.name}'`,
              id,
              'E_KAFEL_UNDEFINED',
              near.length ? `did you mean \`${near[0]}'? (${known})` : known,
            );
          }
        }
      }
    }
  }
}

function position(src: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < src.length; i++) {
    if (src.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: offset - start + 1 };
}

export interface ParseKafelOptions {
  /** Architecture whose syscall names are checked (nsjail uses its own: the host's). */
  arch?: KafelArch;
}

export type ParseKafelResult =
  | { ok: true; program: KafelProgram }
  | { ok: false; error: KafelError };

/** Parses a kafel policy. Never throws: every failure is a positioned KafelError. */
export function parseKafel(source: string, opts: ParseKafelOptions = {}): ParseKafelResult {
  const fail = (
    message: string,
    offset: number,
    length: number,
    code: KafelError['code'],
    hint: string | undefined,
  ): ParseKafelResult => ({
    ok: false,
    error: {
      code,
      message,
      offset,
      length,
      ...position(source, offset),
      ...(hint ? { hint } : {}),
    },
  });
  try {
    const p = new Parser(tokenize(source));
    p.program();
    checkReferences(p, opts.arch ?? hostKafelArch());
    return {
      ok: true,
      program: {
        policies: p.policies,
        main: p.main,
        defaultAction: p.defaultAction,
        constants: p.constants,
      },
    };
  } catch (e) {
    if (e instanceof ParseFail)
      return fail(e.message, e.span.offset, e.span.length, e.code, e.hint);
    if (e instanceof KafelLexError) return fail(e.message, e.offset, e.length, e.code, e.hint);
    return fail(
      `internal error: ${e instanceof Error ? e.message : String(e)}`,
      0,
      0,
      'E_KAFEL_SYNTAX',
      undefined,
    );
  }
}
