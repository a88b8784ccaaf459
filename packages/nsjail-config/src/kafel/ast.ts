/**
 * The kafel AST. Every node carries its span in the source (`offset`, `length`, offsets 0-based
 * into the text given to parseKafel). Names are kept as written and resolved against the
 * syscall tables later, per architecture, as kafel does.
 */

export interface Span {
  readonly offset: number;
  readonly length: number;
}

export type ActionKind =
  | 'ALLOW'
  | 'LOG'
  | 'KILL'
  | 'KILL_PROCESS'
  | 'USER_NOTIF'
  | 'ERRNO'
  | 'TRAP'
  | 'TRACE';

export interface Action extends Span {
  /** `KILL_THREAD` and `DENY` are other spellings of `KILL` (SECCOMP_RET_KILL_THREAD). */
  readonly kind: ActionKind;
  /** The keyword as written: `KILL_THREAD`, `DENY`, ... */
  readonly spelled: string;
  /** ERRNO / TRAP / TRACE data, 0..65535. */
  readonly value?: number;
}

export type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=';
export type BitOp = '&' | '|';
export type LogicOp = '&&' | '||';

export type NumberExpr = Span & {
  readonly type: 'number';
  /** Unsigned 64-bit: kafel reads `-1` as 2^64-1, as strtoull does. */
  readonly value: bigint;
  /** The #define name this number came from, when it did. */
  readonly constant?: string;
};
export type IdentExpr = Span & { readonly type: 'ident'; readonly name: string };
export type NotExpr = Span & { readonly type: 'not'; readonly operand: Expr };
export type BinaryExpr = Span & {
  readonly type: 'binary';
  /**
   * Comparisons and `&&`/`||` are conditions; `&`/`|` are values. A comma between conditions
   * inside a syscall's braces is kafel's lowest-precedence OR and is stored as `||`.
   */
  readonly op: CompareOp | BitOp | LogicOp;
  readonly left: Expr;
  readonly right: Expr;
};
export type Expr = NumberExpr | IdentExpr | NotExpr | BinaryExpr;

export interface SyscallRef extends Span {
  /** A name, resolved against the target architecture's table (absent for numbers). */
  readonly name?: string;
  /** A raw number: `SYSCALL[n]`, or a #define used as a name. Truncated to 32 bits as kafel does. */
  readonly nr?: number;
  /** The #define that gave `nr`, when one did. */
  readonly constant?: string;
  /**
   * Argument names declared inline, `SYSCALL[400](a, b)` or `ioctl(fd, req)`: they replace the
   * table's names and kafel treats every one as 64-bit.
   */
  readonly customArgs?: readonly string[];
}

export interface SyscallFilter extends Span {
  readonly syscall: SyscallRef;
  /** `ON x86_64` / `ON { x86_64, aarch64 }`: kafel's canonical arch names; absent = every arch. */
  readonly archs?: readonly string[];
  /** The condition in braces; absent (or `{}`) = always. */
  readonly expr?: Expr;
}

export type PolicyEntry =
  | (Span & { readonly type: 'use'; readonly policy: string })
  | (Span & {
      readonly type: 'action';
      readonly action: Action;
      readonly filters: readonly SyscallFilter[];
    });

export interface Policy extends Span {
  /** `@main` holds the top-level statements (kafel's own name for it). */
  readonly name: string;
  readonly entries: PolicyEntry[];
}

export interface KafelProgram {
  /** Every policy in definition order, `@main` included once it has statements. */
  readonly policies: ReadonlyMap<string, Policy>;
  /** The policy that runs: the top-level statements; undefined when there are none. */
  readonly main: Policy | undefined;
  /** Action for calls no rule matches; undefined means kafel's default, KILL. */
  readonly defaultAction: Action | undefined;
  readonly constants: ReadonlyMap<string, bigint>;
}

export type KafelErrorCode =
  | 'E_KAFEL_CHAR'
  | 'E_KAFEL_COMMENT'
  | 'E_KAFEL_NUMBER'
  | 'E_KAFEL_INCLUDE'
  | 'E_KAFEL_NUL'
  | 'E_KAFEL_SYNTAX'
  | 'E_KAFEL_RANGE'
  | 'E_KAFEL_REDEFINED'
  | 'E_KAFEL_UNDEFINED_POLICY'
  | 'E_KAFEL_UNKNOWN_SYSCALL'
  | 'E_KAFEL_UNKNOWN_ARGUMENT'
  | 'E_KAFEL_UNKNOWN_ARCH'
  | 'E_KAFEL_DUPLICATE_ARCH'
  | 'E_KAFEL_TOO_MANY_ARGS'
  | 'E_KAFEL_DEPTH'
  | 'E_KAFEL_INTERNAL';

export interface KafelError {
  readonly code: KafelErrorCode;
  /** kafel's own wording where kafel has one (without its `line:col:` prefix). */
  readonly message: string;
  readonly hint?: string;
  /** 0-based offset into the source, and the length of the offending text (0 at end of input). */
  readonly offset: number;
  readonly length: number;
  /** 1-based. */
  readonly line: number;
  readonly column: number;
}
