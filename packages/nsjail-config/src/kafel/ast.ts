/** The kafel AST. Every node carries its span in the source: offset and length. */

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
  /** KILL_THREAD and DENY are spelled differently but mean KILL. */
  readonly kind: ActionKind;
  readonly spelled: string;
  /** ERRNO/TRAP/TRACE value (0..65535). */
  readonly value?: number;
}

export type Expr =
  | (Span & { readonly type: 'number'; readonly value: bigint })
  | (Span & { readonly type: 'ident'; readonly name: string })
  | (Span & { readonly type: 'not'; readonly operand: Expr })
  | (Span & {
      readonly type: 'binary';
      readonly op: '==' | '!=' | '<' | '<=' | '>' | '>=' | '&' | '|' | '&&' | '||';
      readonly left: Expr;
      readonly right: Expr;
    });

export interface SyscallRef extends Span {
  /** A name (resolved against the syscall table) or a raw number (`SYSCALL[n]` or a #define). */
  readonly name?: string;
  readonly nr?: number;
  /** Argument names declared inline: `SYSCALL[400](a, b)` or `foo(a, b)`. */
  readonly customArgs?: readonly string[];
}

export interface SyscallFilter extends Span {
  readonly syscall: SyscallRef;
  /** Architectures this filter applies to (`ON x86_64`); undefined means all. */
  readonly archs?: readonly string[];
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
  /** `@main` for the statements at top level. */
  readonly name: string;
  readonly entries: PolicyEntry[];
}

export interface KafelProgram {
  readonly policies: ReadonlyMap<string, Policy>;
  /** The policy that runs: top-level statements; undefined when there are none. */
  readonly main: Policy | undefined;
  /** Action for syscalls no rule matches; kafel's default is KILL. */
  readonly defaultAction: Action | undefined;
  readonly constants: ReadonlyMap<string, bigint>;
}

export interface KafelError {
  readonly code:
    | 'E_KAFEL_SYNTAX'
    | 'E_KAFEL_UNDEFINED'
    | 'E_KAFEL_REDEFINED'
    | 'E_KAFEL_RANGE'
    | 'E_KAFEL_INCLUDE';
  readonly message: string;
  readonly hint?: string;
  readonly offset: number;
  readonly length: number;
  readonly line: number;
  readonly column: number;
}
