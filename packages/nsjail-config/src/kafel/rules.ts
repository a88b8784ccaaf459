/**
 * Action blocks' pieces: the action, and each system call with its declared argument names,
 * `ON` architecture guard and condition — with kafel's checks at kafel's positions: action data
 * up to 65535, no argument name twice and at most six, known and distinct architectures.
 * A #define'd name used as a system call is a number, like `SYSCALL[n]`; kafel keeps only its
 * low 32 bits.
 */
import type { Action, ActionKind, Expr, SyscallFilter, SyscallRef } from './ast';
import type { Cursor } from './cursor';
import { fail } from './errors';
import { ExprParser } from './expr';
import type { Token, TokenKind } from './lexer';
import { nearest } from './nearest';

export const ARCH_NAMES: Readonly<Record<string, string>> = {
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

const SIMPLE_ACTIONS: Partial<Record<TokenKind, ActionKind>> = {
  ALLOW: 'ALLOW',
  LOG: 'LOG',
  KILL: 'KILL',
  DENY: 'KILL',
  KILL_PROCESS: 'KILL_PROCESS',
  USER_NOTIF: 'USER_NOTIF',
};
const VALUE_ACTIONS = { ERRNO: 'Errno', TRAP: 'Trap', TRACE: 'Trace' } as const;
export const ACTION_WORDS = [
  'ALLOW',
  'LOG',
  'KILL',
  'KILL_THREAD',
  'KILL_PROCESS',
  'DENY',
  'ERRNO',
  'TRAP',
  'TRACE',
  'USER_NOTIF',
];
export const STATEMENT_WORDS = ['POLICY', 'USE', 'DEFAULT', ...ACTION_WORDS];
const MAX_ARGS = 6;

export function isAction(t: Token): boolean {
  return SIMPLE_ACTIONS[t.kind] !== undefined || t.kind in VALUE_ACTIONS;
}

export function keywordHint(t: Token, words: readonly string[]): string | undefined {
  if (t.kind !== 'IDENTIFIER') return undefined;
  const upper = t.text.toUpperCase();
  if (words.includes(upper)) return `kafel keywords are upper case: \`${upper}\``;
  const near = nearest(t.text, words, 1);
  return near.length > 0 ? `did you mean ${near[0]}?` : undefined;
}
export class RuleParser {
  constructor(
    private readonly c: Cursor,
    private readonly constants: ReadonlyMap<string, bigint>,
  ) {}

  action(): Action {
    const t = this.c.peek();
    const simple = SIMPLE_ACTIONS[t.kind];
    if (simple) {
      this.c.next();
      return { kind: simple, spelled: t.text, offset: t.offset, length: t.length };
    }
    if (t.kind === 'ERRNO' || t.kind === 'TRAP' || t.kind === 'TRACE') {
      this.c.next();
      this.c.expect('(', ["`('"], `${t.text} takes a number: \`${t.text}(1)\``);
      const n = this.c.expect(
        'NUMBER',
        ['number'],
        this.c.at('IDENTIFIER')
          ? `${t.text}(...) takes a literal number; kafel does not substitute #define names here`
          : undefined,
      );
      const end = this.c.expect(')', ["`)'"]);
      if (n.value! > 0xffffn)
        fail(
          'E_KAFEL_RANGE',
          `${VALUE_ACTIONS[t.kind]} value ${n.value} out of range (0-65535)`,
          n,
          n.text.startsWith('-') ? 'kafel reads negative numbers modulo 2^64' : undefined,
        );
      return {
        kind: t.kind,
        spelled: t.text,
        value: Number(n.value),
        offset: t.offset,
        length: end.offset + 1 - t.offset,
      };
    }
    return this.c.unexpected(
      ['an action (ALLOW, LOG, KILL, KILL_PROCESS, DENY, ERRNO(n), TRAP(n), TRACE(n), USER_NOTIF)'],
      keywordHint(t, ACTION_WORDS),
    );
  }

  filter(): SyscallFilter {
    let syscall = this.syscall();
    const start = syscall.offset;
    if (this.c.at('(')) syscall = { ...syscall, customArgs: this.customArgs() };
    let archs: string[] | undefined;
    if (this.c.at('ON')) archs = this.archGuard();
    let expr: Expr | undefined;
    if (this.c.at('{')) {
      this.c.next();
      if (!this.c.at('}')) expr = new ExprParser(this.c, this.constants, '}').condition();
      this.c.expect('}', ["`&&'", "`||'", "`,'", "`}'"]);
    }
    const end = this.c.prevEnd();
    return {
      syscall,
      ...(archs ? { archs } : {}),
      ...(expr ? { expr } : {}),
      offset: start,
      length: end - start,
    };
  }

  private syscall(): SyscallRef {
    const t = this.c.peek();
    if (t.kind === 'IDENTIFIER') {
      this.c.next();
      const value = this.constants.get(t.text);
      const span = { offset: t.offset, length: t.length };
      return value !== undefined
        ? { nr: Number(BigInt.asUintN(32, value)), constant: t.text, ...span }
        : { name: t.text, ...span };
    }
    if (t.kind === 'SYSCALL') {
      this.c.next();
      this.c.expect('[', ["`['"], 'write a raw system call number as `SYSCALL[n]`');
      const n = this.c.expect(
        'NUMBER',
        ['number'],
        this.c.at('IDENTIFIER')
          ? `a #define'd name can stand for the system call by itself: write \`${this.c.peek().text}\` instead of SYSCALL[${this.c.peek().text}]`
          : undefined,
      );
      const end = this.c.expect(']', ["`]'"]);
      // kafel stores the number in an int, then a uint32: only the low 32 bits count.
      return {
        nr: Number(BigInt.asUintN(32, n.value!)),
        offset: t.offset,
        length: end.offset + 1 - t.offset,
      };
    }
    const hint = isAction(t) ? 'close the action block with `}` before the next one' : undefined;
    return this.c.unexpected(['identifier', 'SYSCALL'], hint);
  }

  private customArgs(): string[] {
    this.c.next();
    const names: string[] = [];
    if (!this.c.at(')')) {
      for (;;) {
        const a = this.c.expect('IDENTIFIER', ['identifier']);
        if (names.includes(a.text))
          fail('E_KAFEL_REDEFINED', `Redefinition of argument \`${a.text}'`, a);
        if (names.length === MAX_ARGS)
          fail(
            'E_KAFEL_TOO_MANY_ARGS',
            'Too many arguments defined for syscall',
            a,
            `a system call has at most ${MAX_ARGS} arguments`,
          );
        names.push(a.text);
        if (!this.c.at(',')) break;
        this.c.next();
      }
    }
    this.c.expect(')', ["`,'", "`)'"]);
    return names;
  }

  private archGuard(): string[] {
    this.c.next();
    const archs: string[] = [];
    const one = (): void => {
      const a = this.c.expect('IDENTIFIER', ['an architecture name']);
      const lower = a.text.toLowerCase();
      const arch = Object.hasOwn(ARCH_NAMES, lower) ? ARCH_NAMES[lower] : undefined;
      if (!arch) {
        const near = nearest(a.text, Object.keys(ARCH_NAMES), 1);
        fail(
          'E_KAFEL_UNKNOWN_ARCH',
          `Unknown architecture \`${a.text}'`,
          a,
          `${near.length ? `did you mean \`${near[0]}\`? ` : ''}kafel knows ${Object.keys(ARCH_NAMES).join(', ')}`,
        );
      }
      if (archs.includes(arch))
        fail(
          'E_KAFEL_DUPLICATE_ARCH',
          `Duplicate architecture \`${a.text}'`,
          a,
          `\`${a.text}\` is ${arch}, already listed`,
        );
      archs.push(arch);
    };
    if (this.c.at('{')) {
      this.c.next();
      one();
      while (this.c.at(',')) {
        this.c.next();
        one();
      }
      this.c.expect('}', ["`,'", "`}'"]);
    } else {
      one();
    }
    return archs;
  }
}
