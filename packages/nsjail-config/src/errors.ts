/**
 * The one error type the library throws. Every failure to read a policy becomes a PolicyError
 * with a stable code and a position, so callers (and the fuzz test) can rely on nothing else
 * escaping.
 */

const BRAND = Symbol.for('@ktl/nsjail-config/PolicyError');

export type PolicyErrorCode =
  | 'E_IO' // the file could not be read
  | 'E_EMPTY' // the file is empty (nsjail refuses it)
  | 'E_SYNTAX' // tokenizer or grammar error
  | 'E_UNKNOWN_FIELD'
  | 'E_DUPLICATE_FIELD' // a singular field set twice
  | 'E_UNKNOWN_ENUM'
  | 'E_BAD_VALUE' // a literal of the wrong kind or out of range
  | 'E_MISSING_REQUIRED'
  | 'E_AMBIGUOUS' // parses both as text and as JSON
  | 'E_INVALID' // the policy object itself (built in code) does not match the schema
  | 'E_INTERNAL';

export interface SourcePosition {
  /** 1-based. */
  readonly line: number;
  /** 1-based, counted in characters of the decoded file. */
  readonly column: number;
  /** 0-based offset into the text. */
  readonly offset: number;
}

export interface PolicyErrorOptions {
  code: PolicyErrorCode;
  file?: string | undefined;
  position?: SourcePosition | undefined;
  hint?: string | undefined;
  cause?: unknown;
}

export class PolicyError extends Error {
  readonly code: PolicyErrorCode;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly offset: number | undefined;
  readonly hint: string | undefined;
  /** The message without location or hint. */
  readonly shortMessage: string;
  readonly [BRAND] = true;

  constructor(message: string, opts: PolicyErrorOptions) {
    super(PolicyError.render(message, opts), opts.cause === undefined ? {} : { cause: opts.cause });
    this.name = 'PolicyError';
    this.code = opts.code;
    this.file = opts.file;
    this.line = opts.position?.line;
    this.column = opts.position?.column;
    this.offset = opts.position?.offset;
    this.hint = opts.hint;
    this.shortMessage = message;
  }

  /** `FILE:LINE:COL` (as much of it as is known), the prefix of every diagnostic. */
  get location(): string {
    const file = this.file ?? '<policy>';
    if (this.line === undefined) return file;
    return `${file}:${this.line}:${this.column ?? 1}`;
  }

  static is(value: unknown): value is PolicyError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[BRAND] === true
    );
  }

  /** Turns anything thrown into a PolicyError (unexpected ones become E_INTERNAL). */
  static from(value: unknown, file?: string): PolicyError {
    if (PolicyError.is(value)) return value;
    const message = value instanceof Error ? value.message : String(value);
    return new PolicyError(`internal error: ${message}`, {
      code: 'E_INTERNAL',
      file,
      cause: value,
    });
  }

  private static render(message: string, opts: PolicyErrorOptions): string {
    const file = opts.file ?? '<policy>';
    const where = opts.position ? `${file}:${opts.position.line}:${opts.position.column}` : file;
    const hint = opts.hint ? `\n  hint: ${opts.hint}` : '';
    return `${where}: ${message}${hint}`;
  }
}
